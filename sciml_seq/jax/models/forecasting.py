"""Forecasting over real-valued times (mirrors :mod:`sciml_seq.torch.models.forecasting`).

Acts on one example; ``jax.vmap`` over a batch.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ...checks import check_int, check_real
from ...errors import ShapeError
from ...models import check_position_mode
from ..attention import check_padding_mask
from ..transformer import TransformerEncoder


def index_positions(valid: ArrayLike) -> Array:
    """Rank of each valid token among the valid ones; 0 at padding.  ``(length,)``."""
    valid = jnp.asarray(valid)
    rank = jnp.cumsum(valid.astype(jnp.int32)) - 1
    return jnp.where(valid, jnp.maximum(rank, 0), 0).astype(jnp.result_type(float))


class Forecaster(eqx.Module):
    """A transformer that reads observations and answers at query times.

    As :class:`sciml_seq.torch.models.Forecaster` (same arguments, parameter
    names and numbers), plus ``key``.

    Call: ``__call__(values, times, query_times, *, padding_mask=None, query_mask=None)``
    with ``values (n, channels)``, ``times (n,)``, ``query_times (m,)``; returns
    ``(m, channels)``.
    """

    embed: eqx.nn.Linear
    query: Array
    encoder: TransformerEncoder
    head: eqx.nn.Linear
    channels: int = eqx.field(static=True)
    position_mode: str = eqx.field(static=True)
    time_scale: float = eqx.field(static=True)

    def __init__(
        self,
        channels: int,
        dim: int,
        heads: int,
        *,
        position_mode: str = "time",
        time_scale: float = 1.0,
        dtype=None,
        key: Array,
        **encoder_options: Any,
    ) -> None:
        self.channels = check_int("channels", channels)
        self.position_mode = check_position_mode(position_mode)
        self.time_scale = check_real("time_scale", time_scale, gt=0.0)
        k_embed, k_query, k_enc, k_head = jax.random.split(key, 4)
        self.embed = eqx.nn.Linear(channels, dim, dtype=dtype, key=k_embed)
        self.query = 0.02 * jax.random.normal(k_query, (dim,), self.embed.weight.dtype)
        self.encoder = TransformerEncoder(dim, heads, dtype=dtype, key=k_enc, **encoder_options)
        self.head = eqx.nn.Linear(dim, channels, dtype=dtype, key=k_head)

    def __call__(
        self,
        values: Array,
        times: ArrayLike,
        query_times: ArrayLike,
        *,
        padding_mask: ArrayLike | None = None,
        query_mask: ArrayLike | None = None,
    ) -> Array:
        if jnp.ndim(values) != 2 or jnp.shape(values)[-1] != self.channels:
            raise ShapeError(
                f"values must have shape (n, channels={self.channels}), got {jnp.shape(values)}"
            )
        n = values.shape[0]
        times, query_times = jnp.asarray(times), jnp.asarray(query_times)
        if times.shape != (n,):
            raise ShapeError(
                f"times must have shape (n,) = ({n},) to match values of shape {values.shape}, "
                f"got {times.shape}"
            )
        if query_times.ndim != 1:
            raise ShapeError(f"query_times must have shape (m,), got {query_times.shape}")
        m = query_times.shape[0]
        masks = [
            jnp.ones(like.shape, dtype=bool)
            if mask is None
            else check_padding_mask(mask, like, name=name, like=like_name)
            for name, mask, like_name, like in (
                ("padding_mask", padding_mask, "times", times),
                ("query_mask", query_mask, "query_times", query_times),
            )
        ]
        tokens = jnp.concatenate(
            [jax.vmap(self.embed)(values), jnp.broadcast_to(self.query, (m, self.query.shape[0]))]
        )
        valid = jnp.concatenate(masks)
        mask = None if padding_mask is None and query_mask is None else valid
        if self.position_mode == "time":
            positions = self.time_scale * jnp.concatenate([times, query_times])
        else:
            positions = index_positions(valid)
        h = self.encoder(tokens, positions.astype(values.dtype), padding_mask=mask)
        return jax.vmap(self.head)(h[n:])


__all__ = ["Forecaster", "index_positions"]

"""Sequence classification and regression on the transformer encoder.

Mirrors :mod:`sciml_seq.torch.models.sequence`; acts on one example
(``jax.vmap`` over a batch).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ...checks import check_int
from ...errors import ShapeError
from ..transformer import TransformerEncoder


def masked_mean(h: Array, padding_mask: ArrayLike | None) -> Array:
    """Mean over the valid tokens: ``h (length, dim)`` -> ``(dim,)`` (zeros if none)."""
    if padding_mask is None:
        return h.mean(axis=0)
    weight = jnp.asarray(padding_mask).astype(h.dtype)[:, None]
    return (h * weight).sum(axis=0) / jnp.maximum(weight.sum(), 1)


class _PooledModel(eqx.Module):
    """``head(masked_mean(encoder(embed(x), positions)))``."""

    embed: eqx.nn.Linear
    encoder: TransformerEncoder
    head: eqx.nn.Linear
    in_features: int = eqx.field(static=True)

    def __init__(self, in_features, out_features, dim, heads, dtype, key, options) -> None:
        k_embed, k_enc, k_head = jax.random.split(key, 3)
        self.in_features = check_int("in_features", in_features)
        self.embed = eqx.nn.Linear(in_features, dim, dtype=dtype, key=k_embed)
        self.encoder = TransformerEncoder(dim, heads, dtype=dtype, key=k_enc, **options)
        self.head = eqx.nn.Linear(dim, out_features, dtype=dtype, key=k_head)

    def __call__(
        self, x: Array, positions: ArrayLike, *, padding_mask: ArrayLike | None = None
    ) -> Array:
        if jnp.ndim(x) != 2 or jnp.shape(x)[-1] != self.in_features:
            raise ShapeError(
                f"x must have shape (length, in_features={self.in_features}), got {jnp.shape(x)}"
            )
        h = self.encoder(jax.vmap(self.embed)(x), positions, padding_mask=padding_mask)
        return self.head(masked_mean(h, padding_mask))


class SequenceClassifier(_PooledModel):
    """Class logits of one sequence, ``x (length, in_features)`` -> ``(n_classes,)``.

    As :class:`sciml_seq.torch.models.SequenceClassifier`, plus ``key``.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        dim: int,
        heads: int,
        *,
        dtype=None,
        key: Array,
        **encoder_options: Any,
    ) -> None:
        super().__init__(in_features, n_classes, dim, heads, dtype, key, encoder_options)


class SequenceRegressor(_PooledModel):
    """``out_features`` targets of one sequence (as :class:`SequenceClassifier`)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        dim: int,
        heads: int,
        *,
        dtype=None,
        key: Array,
        **encoder_options: Any,
    ) -> None:
        super().__init__(in_features, out_features, dim, heads, dtype, key, encoder_options)


__all__ = ["SequenceClassifier", "SequenceRegressor", "masked_mean"]

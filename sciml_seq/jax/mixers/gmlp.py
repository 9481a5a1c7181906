"""gMLP spatial gating unit (Liu et al. 2021), mirrors :mod:`sciml_seq.torch.mixers.gmlp`.

``u, v = split(gelu(proj(x)))``, ``g[t] = sum_s W[h, t, s] LN(v)[s] + b[h, t]``
per head, ``y = out(u * g)`` on one example; heads, initialisation, causal and
padding behaviour as documented in :mod:`sciml_seq.torch.mixers.gmlp`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ...mixers import check_length, check_max_length, check_no_rope
from ...position import check_heads
from .common import check_call, check_no_dropout


class SpatialGatingMixer(eqx.Module):
    """gMLP's spatial gating unit between an input and an output projection.

    Same constructor arguments, parameter names and shapes (``proj``, ``norm``,
    ``spatial_weight (heads, max_length, max_length)``, ``spatial_bias (heads,
    max_length)``, ``out``) as :class:`sciml_seq.torch.mixers.gmlp.SpatialGatingMixer`,
    plus ``key``.  Call: ``__call__(x, positions=None, *, causal=False,
    padding_mask=None, key=None)`` with ``x (length, dim)``, ``length <=
    max_length``; returns ``(length, dim)``.

    ``torch.nn.functional.gelu`` and ``jax.nn.gelu(approximate=False)`` are
    the same (erf) function.
    """

    proj: eqx.nn.Linear
    norm: eqx.nn.LayerNorm
    spatial_weight: Array
    spatial_bias: Array
    out: eqx.nn.Linear
    dim: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)
    max_length: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        dropout: float = 0.0,
        rope: object | None = None,
        bias: bool = True,
        dtype=None,
        max_length: int | None = None,
        key: Array,
    ) -> None:
        self.head_dim = check_heads(dim, heads)
        self.dim, self.heads = int(dim), int(heads)
        check_no_dropout("gmlp", dropout)
        check_no_rope("gmlp", rope)
        self.max_length = check_max_length(max_length)
        if dtype is None:
            dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
        proj_key, weight_key, out_key = jax.random.split(key, 3)
        self.proj = eqx.nn.Linear(dim, 2 * dim, use_bias=bias, dtype=dtype, key=proj_key)
        self.norm = eqx.nn.LayerNorm(dim, dtype=dtype)
        n = self.max_length
        eps = 1e-3 / n
        self.spatial_weight = jax.random.uniform(
            weight_key, (self.heads, n, n), dtype, minval=-eps, maxval=eps
        )
        self.spatial_bias = jnp.ones((self.heads, n), dtype)
        self.out = eqx.nn.Linear(dim, dim, use_bias=bias, dtype=dtype, key=out_key)

    def __call__(
        self,
        x: Array,
        positions: ArrayLike | None = None,
        *,
        causal: bool = False,
        padding_mask: ArrayLike | None = None,
        key: Array | None = None,
    ) -> Array:
        _, padding_mask = check_call(x, self.dim, positions, padding_mask, None)
        length = x.shape[0]
        check_length(length, self.max_length)

        u, v = jnp.split(jax.nn.gelu(jax.vmap(self.proj)(x), approximate=False), 2, axis=-1)
        v = jax.vmap(self.norm)(v)
        if padding_mask is not None:
            v = jnp.where(padding_mask[:, None], v, 0.0)
        weight = self.spatial_weight[:, :length, :length]
        if causal:
            weight = jnp.tril(weight)
        v = v.reshape(length, self.heads, self.head_dim)
        gate = jnp.einsum("hts,shd->thd", weight, v) + self.spatial_bias[:, :length].T[:, :, None]
        return jax.vmap(self.out)(u * gate.reshape(length, self.dim))


__all__ = ["SpatialGatingMixer"]

"""Swin-V2 parts of scOT in JAX (mirrors :mod:`sciml_seq.torch.operator.swin`, one example).

The window layout comes from :func:`sciml_seq.operator.geometry.window_tables`
as numpy constants, computed once per grid and baked into the trace.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ...operator.geometry import window_tables
from .layers import Init, Linear
from .norm import make_norm

LOGIT_SCALE_MAX = math.log(100.0)


class _ReLU(eqx.Module):
    def __call__(self, x: Array) -> Array:
        return jax.nn.relu(x)


class WindowSelfAttention(eqx.Module):
    """Scaled cosine window attention with continuous relative position bias (see torch twin)."""

    logit_scale: Array
    continuous_position_bias_mlp: list
    query: Linear
    key: Linear
    value: Linear
    num_heads: int = eqx.field(static=True)

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool, init: Init) -> None:
        self.logit_scale = init.full((num_heads, 1, 1), math.log(10.0))
        self.continuous_position_bias_mlp = [
            Linear(2, 512, init=init),
            _ReLU(),
            Linear(512, num_heads, bias=False, init=init),
        ]
        self.query = Linear(dim, dim, bias=qkv_bias, init=init)
        self.key = Linear(dim, dim, bias=False, init=init)
        self.value = Linear(dim, dim, bias=qkv_bias, init=init)
        self.num_heads = num_heads

    def position_bias(self, coords_table: np.ndarray, index: np.ndarray) -> Array:
        """``(heads, N, N)`` bias ``16·sigmoid(cpb(table))[index]``."""
        table = jnp.asarray(coords_table, self.query.weight.dtype)
        for layer in self.continuous_position_bias_mlp:
            table = layer(table)
        n = index.shape[0]
        bias = table[index.reshape(-1)].reshape(n, n, self.num_heads).transpose(2, 0, 1)
        return 16.0 * jax.nn.sigmoid(bias)

    def __call__(
        self, windows: Array, coords_table: np.ndarray, index: np.ndarray, mask: np.ndarray | None
    ) -> Array:
        """``windows (num_windows, N, dim)`` → same shape; ``mask (num_windows, N, N)``."""
        num_windows, n, dim = windows.shape
        heads = self.num_heads

        def split(x: Array) -> Array:
            return x.reshape(num_windows, n, heads, dim // heads)

        def unit(x: Array) -> Array:
            # max(|x|, 1e-12) as torch's F.normalize, with the clamp under the sqrt so the
            # gradient at x = 0 is finite (zero) as in torch, not sqrt'(0) = inf.
            return x / jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-24))

        scale = jnp.exp(jnp.minimum(self.logit_scale, LOGIT_SCALE_MAX))[:, 0, 0]
        q = unit(split(self.query(windows))) * scale[:, None].astype(windows.dtype)
        k = unit(split(self.key(windows)))
        v = split(self.value(windows))
        logits = jnp.einsum("wnhd,wmhd->whnm", q, k)
        logits = logits + self.position_bias(coords_table, index).astype(logits.dtype)
        if mask is not None:
            logits = logits + jnp.asarray(mask, logits.dtype)[:, None]
        weights = jax.nn.softmax(logits, axis=-1)
        out = jnp.einsum("whnm,wmhd->wnhd", weights, v)
        return out.reshape(num_windows, n, dim)


class _Dense(eqx.Module):
    dense: Linear

    def __init__(self, d_in: int, d_out: int, *, init: Init) -> None:
        self.dense = Linear(d_in, d_out, init=init)

    def __call__(self, x: Array) -> Array:
        return self.dense(x)


class WindowAttention(eqx.Module):
    """Names ``attention.self.*`` and ``attention.output.dense``."""

    self: WindowSelfAttention
    output: _Dense

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool, init: Init) -> None:
        self.self = WindowSelfAttention(dim, num_heads, qkv_bias=qkv_bias, init=init)
        self.output = _Dense(dim, dim, init=init)

    def __call__(self, windows, coords_table, index, mask) -> Array:
        return self.output(self.self(windows, coords_table, index, mask))


class SwinBlock(eqx.Module):
    """Post-norm Swin-V2 block with time-conditioned norms (see torch twin).

    Shapes: ``x (h*w, dim)``, scalar ``time``, ``resolution = (h, w)``.
    """

    attention: WindowAttention
    layernorm_before: eqx.Module
    intermediate: _Dense
    output: _Dense
    layernorm_after: eqx.Module
    window_size: int = eqx.field(static=True)
    shifted: bool = eqx.field(static=True)
    pretrained_window_size: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        window_size: int,
        shifted: bool,
        mlp_dim: int,
        qkv_bias: bool = True,
        eps: float = 1e-5,
        conditioned: bool = True,
        pretrained_window_size: int = 0,
        init: Init,
    ) -> None:
        self.attention = WindowAttention(dim, num_heads, qkv_bias=qkv_bias, init=init)
        self.layernorm_before = make_norm(conditioned, dim, eps, init=init)
        self.intermediate = _Dense(dim, mlp_dim, init=init)
        self.output = _Dense(mlp_dim, dim, init=init)
        self.layernorm_after = make_norm(conditioned, dim, eps, init=init)
        self.window_size = window_size
        self.shifted = shifted
        self.pretrained_window_size = pretrained_window_size

    def __call__(self, x: Array, time: Array, resolution: tuple[int, int]) -> Array:
        length, dim = x.shape
        gather, scatter, coords, index, mask = window_tables(
            tuple(resolution), self.window_size, self.shifted, self.pretrained_window_size
        )
        n = index.shape[0]
        windows = x[gather].reshape(length // n, n, dim)
        attended = self.attention(windows, coords, index, mask).reshape(length, dim)[scatter]
        h = x + self.layernorm_before(attended, time)
        mlp = self.output(jax.nn.gelu(self.intermediate(h), approximate=False))
        return h + self.layernorm_after(mlp, time)


class PatchMerging(eqx.Module):
    """2x2 merge (official neighbour order), ``reduction`` 4dim→2dim, ``norm``."""

    reduction: Linear
    norm: eqx.Module

    def __init__(self, dim: int, *, conditioned: bool = True, init: Init) -> None:
        self.reduction = Linear(4 * dim, 2 * dim, bias=False, init=init)
        self.norm = make_norm(conditioned, 2 * dim, init=init)

    def __call__(self, x: Array, time: Array, resolution: tuple[int, int]) -> Array:
        dim = x.shape[-1]
        x = x.reshape(*resolution, dim)
        parts = (x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2])
        x = jnp.concatenate(parts, axis=-1).reshape(-1, 4 * dim)
        return self.norm(self.reduction(x), time)


class PatchUnmerging(eqx.Module):
    """``upsample`` dim→2dim into 2x2 sub-tokens, ``norm``, ``mixup`` (see torch twin)."""

    upsample: Linear
    mixup: Linear
    norm: eqx.Module

    def __init__(self, dim: int, *, conditioned: bool = True, init: Init) -> None:
        self.upsample = Linear(dim, 2 * dim, bias=False, init=init)
        self.mixup = Linear(dim // 2, dim // 2, bias=False, init=init)
        self.norm = make_norm(conditioned, dim // 2, init=init)

    def __call__(self, x: Array, time: Array, resolution: tuple[int, int]) -> Array:
        dim = x.shape[-1]
        h, w = resolution
        x = self.upsample(x).reshape(h, w, 2, 2, dim // 2).transpose(0, 2, 1, 3, 4)
        x = x.reshape(4 * h * w, dim // 2)
        return self.mixup(self.norm(x, time))


__all__ = [
    "PatchMerging",
    "PatchUnmerging",
    "SwinBlock",
    "WindowAttention",
    "WindowSelfAttention",
]

"""Time-conditioned layer norm ``γ(t)·norm(x) + β(t)`` (mirrors the torch ``operator.norm``)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from .layers import Init, Linear


class ConditionalLayerNorm(eqx.Module):
    """``weight(t) * (x - mean) / sqrt(var + eps) + bias(t)`` over the last axis.

    ``var = E[x²] - E[x]²``; ``weight``, ``bias`` are ``Linear(1, dim)``.  Statistics
    in float32 for float16/bfloat16 inputs.  Shapes: ``x (..., dim)``, scalar ``time``.
    """

    weight: Linear
    bias: Linear
    eps: float = eqx.field(static=True)

    def __init__(self, dim: int, eps: float = 1e-5, *, init: Init) -> None:
        self.weight = Linear(1, dim, init=init)
        self.bias = Linear(1, dim, init=init)
        self.eps = eps

    def __call__(self, x: Array, time: Array) -> Array:
        if x.dtype in (jnp.float16, jnp.bfloat16):
            x = x.astype(jnp.float32)
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(x * x, axis=-1, keepdims=True) - mean * mean
        x = (x - mean) / jnp.sqrt(var + self.eps)
        t = jnp.reshape(time, (1,)).astype(x.dtype)
        return self.weight(t) * x + self.bias(t)


class TimeFreeLayerNorm(eqx.Module):
    """Plain layer norm (``weight``, ``bias`` of shape ``(dim,)``) that ignores ``time``."""

    weight: Array
    bias: Array
    eps: float = eqx.field(static=True)

    def __init__(self, dim: int, eps: float = 1e-5, *, init: Init) -> None:
        self.weight = init.full((dim,), 1.0)
        self.bias = init.full((dim,), 0.0)
        self.eps = eps

    def __call__(self, x: Array, time: Array) -> Array:  # noqa: ARG002
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + self.eps) * self.weight + self.bias


def make_norm(conditioned: bool, dim: int, eps: float = 1e-5, *, init: Init) -> eqx.Module:
    """The norm scOT puts everywhere: time-conditioned or plain."""
    if conditioned:
        return ConditionalLayerNorm(dim, eps, init=init)
    return TimeFreeLayerNorm(dim, eps, init=init)


__all__ = ["ConditionalLayerNorm", "TimeFreeLayerNorm", "make_norm"]

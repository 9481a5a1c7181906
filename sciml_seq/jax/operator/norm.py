"""Time-conditioned layer norm ``γ(t)·norm(x) + β(t)`` (mirrors the torch ``operator.norm``)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from .layers import Init, Linear


def _standardize(x: Array, eps: float) -> Array:
    """``(x - mean) / sqrt(var + eps)`` over the last axis, ``var`` the biased
    ``E[(x - mean)²]`` (the official model writes ``E[x²] - E[x]²``, the same quantity;
    torch's ``F.layer_norm`` computes it as here)."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps)


class ConditionalLayerNorm(eqx.Module):
    """``weight(t) * (x - mean) / sqrt(var + eps) + bias(t)`` over the last axis.

    ``weight``, ``bias`` are ``Linear(1, dim)``.  Statistics in float32 for
    float16/bfloat16 inputs.  Shapes: ``x (..., dim)``, scalar ``time``.
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
        x = _standardize(x, self.eps)
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
        return _standardize(x, self.eps) * self.weight + self.bias


def make_norm(conditioned: bool, dim: int, eps: float = 1e-5, *, init: Init) -> eqx.Module:
    """The norm scOT puts everywhere: time-conditioned or plain."""
    if conditioned:
        return ConditionalLayerNorm(dim, eps, init=init)
    return TimeFreeLayerNorm(dim, eps, init=init)


__all__ = ["ConditionalLayerNorm", "TimeFreeLayerNorm", "make_norm"]

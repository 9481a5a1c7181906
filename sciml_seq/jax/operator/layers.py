"""Small equinox layers with PyTorch's parameter layout (names and shapes) for scOT.

``Linear`` (``weight (out, in)``, ``bias (out,)``) acts on the last axis of any
array; ``Conv2d`` (``weight (out, in/groups, k, k)``, ``bias (out,)``) on
``(C, H, W)``; ``PatchConv``/``PatchConvTranspose`` are the stride = kernel
convolutions of the patch embedding and recovery (``ConvTranspose2d`` weight
``(in, out, k, k)``), written as exact reshapes and contractions.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array


def normal(key: Array, shape: tuple[int, ...], std: float, dtype: jnp.dtype) -> Array:
    """``N(0, std²)`` draws."""
    return std * jax.random.normal(key, shape, dtype=dtype)


def _torch_uniform(key: Array, shape: tuple[int, ...], fan_in: int, dtype: jnp.dtype) -> Array:
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return jax.random.uniform(key, shape, dtype=dtype, minval=-bound, maxval=bound)


class Linear(eqx.Module):
    """``x @ weight.T + bias`` over the last axis; init ``N(0, std²)`` weights, zero bias."""

    weight: Array
    bias: Array | None

    def __init__(
        self, d_in: int, d_out: int, *, bias: bool = True, std: float, dtype: jnp.dtype, key: Array
    ) -> None:
        self.weight = normal(key, (d_out, d_in), std, dtype)
        self.bias = jnp.zeros((d_out,), dtype) if bias else None

    def __call__(self, x: Array) -> Array:
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias


class Conv2d(eqx.Module):
    """Same-padded stride-1 convolution on ``(C, H, W)`` (``groups`` for depthwise)."""

    weight: Array
    bias: Array | None
    groups: int = eqx.field(static=True)

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        *,
        groups: int = 1,
        bias: bool = True,
        std: float,
        dtype: jnp.dtype,
        key: Array,
    ) -> None:
        self.weight = normal(key, (c_out, c_in // groups, kernel, kernel), std, dtype)
        self.bias = jnp.zeros((c_out,), dtype) if bias else None
        self.groups = groups

    def __call__(self, x: Array) -> Array:
        pad = self.weight.shape[-1] // 2
        y = jax.lax.conv_general_dilated(
            x[None],
            self.weight,
            window_strides=(1, 1),
            padding=((pad, pad), (pad, pad)),
            feature_group_count=self.groups,
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )[0]
        return y if self.bias is None else y + self.bias[:, None, None]


class PatchConv(eqx.Module):
    """Conv2d with kernel = stride = ``p``: ``(C, H, W)`` → ``(D, H/p, W/p)``."""

    weight: Array
    bias: Array

    def __init__(self, c_in: int, c_out: int, p: int, *, std: float, dtype, key: Array) -> None:
        self.weight = normal(key, (c_out, c_in, p, p), std, dtype)
        self.bias = jnp.zeros((c_out,), dtype)

    def __call__(self, x: Array) -> Array:
        c, height, width = x.shape
        p = self.weight.shape[-1]
        patches = x.reshape(c, height // p, p, width // p, p)
        return jnp.einsum("cipjq,ocpq->oij", patches, self.weight) + self.bias[:, None, None]


class PatchConvTranspose(eqx.Module):
    """ConvTranspose2d with kernel = stride = ``p``: ``(D, h, w)`` → ``(C, h*p, w*p)``.

    Init as PyTorch's default (uniform, bound ``1/sqrt(C*p*p)``), as the official model keeps it.
    """

    weight: Array
    bias: Array

    def __init__(self, c_in: int, c_out: int, p: int, *, dtype, key: Array) -> None:
        kw, kb = jax.random.split(key)
        fan_in = c_out * p * p  # PyTorch computes the fan from weight.shape[1:]
        self.weight = _torch_uniform(kw, (c_in, c_out, p, p), fan_in, dtype)
        self.bias = _torch_uniform(kb, (c_out,), fan_in, dtype)

    def __call__(self, x: Array) -> Array:
        _, h, w = x.shape
        c_out, p = self.weight.shape[1], self.weight.shape[-1]
        y = jnp.einsum("dij,dopq->oipjq", x, self.weight).reshape(c_out, h * p, w * p)
        return y + self.bias[:, None, None]


__all__ = ["Conv2d", "Linear", "PatchConv", "PatchConvTranspose", "normal"]

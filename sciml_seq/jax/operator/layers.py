"""Small equinox layers with PyTorch's parameter layout (names and shapes) for scOT.

Initial values come from an :class:`Init`: numpy draws seeded from a JAX key
(one cheap host draw per parameter instead of one XLA compilation per
parameter shape), or, without a key, ``jax.ShapeDtypeStruct`` placeholders
(a template to load a checkpoint into or to count parameters).

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
import numpy as np
from jax import Array


class Init:
    """Initial values of one model: ``normal``/``uniform``/``full`` arrays of ``dtype``.

    ``key`` seeds a numpy generator; ``key=None`` gives ``jax.ShapeDtypeStruct``
    placeholders instead of arrays.
    """

    def __init__(self, key: Array | None, dtype, std: float = 0.02) -> None:
        self.dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
        self.std = std
        if key is None:
            self.rng = None
        else:
            seed = np.asarray(jax.random.key_data(key)).astype(np.uint64).ravel().tolist()
            self.rng = np.random.default_rng(seed)

    def _out(self, shape: tuple[int, ...], draw) -> Array:
        if self.rng is None:
            return jax.ShapeDtypeStruct(shape, self.dtype)
        return jnp.asarray(np.asarray(draw(shape), dtype=self.dtype))

    def normal(self, shape: tuple[int, ...], std: float | None = None) -> Array:
        """``N(0, std²)``, ``std`` defaulting to the model's ``initializer_range``."""
        scale = self.std if std is None else std
        return self._out(shape, lambda s: scale * self.rng.standard_normal(s))

    def uniform(self, shape: tuple[int, ...], bound: float) -> Array:
        """``U(-bound, bound)``."""
        return self._out(shape, lambda s: self.rng.uniform(-bound, bound, s))

    def full(self, shape: tuple[int, ...], value: float) -> Array:
        """Every entry ``value``."""
        return self._out(shape, lambda s: np.full(s, value))


class Linear(eqx.Module):
    """``x @ weight.T + bias`` over the last axis; init ``N(0, std²)`` weights, zero bias."""

    weight: Array
    bias: Array | None

    def __init__(self, d_in: int, d_out: int, *, bias: bool = True, init: Init) -> None:
        self.weight = init.normal((d_out, d_in))
        self.bias = init.full((d_out,), 0.0) if bias else None

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
        init: Init,
    ) -> None:
        self.weight = init.normal((c_out, c_in // groups, kernel, kernel))
        self.bias = init.full((c_out,), 0.0) if bias else None
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

    def __init__(self, c_in: int, c_out: int, p: int, *, init: Init) -> None:
        self.weight = init.normal((c_out, c_in, p, p))
        self.bias = init.full((c_out,), 0.0)

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

    def __init__(self, c_in: int, c_out: int, p: int, *, init: Init) -> None:
        bound = 1.0 / math.sqrt(c_out * p * p)  # PyTorch's fan: weight.shape[1:]
        self.weight = init.uniform((c_in, c_out, p, p), bound)
        self.bias = init.uniform((c_out,), bound)

    def __call__(self, x: Array) -> Array:
        _, h, w = x.shape
        c_out, p = self.weight.shape[1], self.weight.shape[-1]
        y = jnp.einsum("dij,dopq->oipjq", x, self.weight).reshape(c_out, h * p, w * p)
        return y + self.bias[:, None, None]


__all__ = ["Conv2d", "Init", "Linear", "PatchConv", "PatchConvTranspose"]

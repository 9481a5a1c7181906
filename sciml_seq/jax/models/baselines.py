"""Forecasting baselines (mirrors :mod:`sciml_seq.torch.models.baselines`).

Same arguments, defaults, parameter names and shapes as the torch twins, plus
``key``; every model acts on one example, a window ``x (seq_len, channels)``
-> forecast ``(pred_len, channels)`` (``jax.vmap`` over a batch).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ...checks import check_int
from ...data.timeseries.baselines import check_kernel_size, check_revin, patch_count
from ...errors import ShapeError
from ..transformer import TransformerEncoder

__all__ = ["DLinear", "ITransformer", "NLinear", "PatchTST", "RevIN", "moving_average", "patches"]


def check_window(x: Array, seq_len: int, channels: int | None = None) -> None:
    """``ShapeError`` unless ``x`` is ``(seq_len, channels)``."""
    shape = jnp.shape(x)
    ok = len(shape) == 2 and shape[0] == seq_len and (channels is None or shape[1] == channels)
    if not ok:
        want = "channels" if channels is None else str(channels)
        raise ShapeError(f"x: expected a window of shape ({seq_len}, {want}); got {shape}")


def moving_average(x: Array, kernel_size: int) -> Array:
    """DLinear's trend of ``x (L, C)`` with replicate padding (as the torch twin)."""
    half = (kernel_size - 1) // 2
    padded = jnp.concatenate([jnp.repeat(x[:1], half, 0), x, jnp.repeat(x[-1:], half, 0)], 0)
    index = jnp.arange(x.shape[0])[:, None] + jnp.arange(kernel_size)  # (L, kernel_size)
    return padded[index].mean(axis=1)


def patches(z: Array, patch_len: int, stride: int, pad_end: bool) -> Array:
    """PatchTST's patches of one series ``z (L,)``: ``(n_patches, patch_len)``."""
    if pad_end:
        z = jnp.concatenate([z, jnp.repeat(z[-1:], stride)])
    n = (z.shape[0] - patch_len) // stride + 1
    return z[jnp.arange(n)[:, None] * stride + jnp.arange(patch_len)]


class RevIN(eqx.Module):
    """Reversible instance normalisation of one window (as the torch twin).

    ``normalize(x (L, C))`` -> ``(z, mean (1, C), std (1, C))``;
    ``denormalize(y, mean, std)`` its exact inverse.
    """

    weight: Array | None
    bias: Array | None
    channels: int = eqx.field(static=True)
    affine: bool = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    def __init__(
        self, channels: int, affine: bool = True, eps: float = 1e-5, *, dtype=None, key=None
    ) -> None:
        del key  # no random parameters; accepted for a uniform constructor
        self.channels = check_int("channels", channels)
        self.affine, self.eps = bool(affine), check_revin(eps)
        dtype = jnp.result_type(float) if dtype is None else dtype
        self.weight = jnp.ones(channels, dtype) if self.affine else None
        self.bias = jnp.zeros(channels, dtype) if self.affine else None

    def normalize(self, x: Array) -> tuple[Array, Array, Array]:
        if jnp.ndim(x) != 2 or jnp.shape(x)[-1] != self.channels:
            raise ShapeError(f"x: expected (length, {self.channels}); got {jnp.shape(x)}")
        mean = x.mean(axis=0, keepdims=True)
        std = jnp.sqrt(x.var(axis=0, keepdims=True) + self.eps)
        z = (x - mean) / std
        return (z * self.weight + self.bias if self.affine else z), mean, std

    def denormalize(self, y: Array, mean: Array, std: Array) -> Array:
        if self.affine:
            y = (y - self.bias) / self.weight
        return y * std + mean

    def __call__(self, x: Array) -> tuple[Array, Array, Array]:
        return self.normalize(x)


def over_time(linear: eqx.nn.Linear, x: Array) -> Array:
    """``linear`` applied to each channel's series of ``x (L, C)``: ``(L', C)``."""
    return jax.vmap(linear, in_axes=1, out_axes=1)(x)


class NLinear(eqx.Module):
    """As :class:`sciml_seq.torch.models.baselines.NLinear`; ``x (seq_len, C)``."""

    linear: eqx.nn.Linear
    seq_len: int = eqx.field(static=True)
    pred_len: int = eqx.field(static=True)

    def __init__(self, seq_len: int, pred_len: int, *, dtype=None, key: Array) -> None:
        self.seq_len, self.pred_len = check_int("seq_len", seq_len), check_int("pred_len", pred_len)
        self.linear = eqx.nn.Linear(seq_len, pred_len, dtype=dtype, key=key)

    def __call__(self, x: Array) -> Array:
        check_window(x, self.seq_len)
        last = x[-1:]
        return over_time(self.linear, x - last) + last


class DLinear(eqx.Module):
    """As :class:`sciml_seq.torch.models.baselines.DLinear`; ``x (seq_len, C)``."""

    seasonal: eqx.nn.Linear
    trend: eqx.nn.Linear
    seq_len: int = eqx.field(static=True)
    pred_len: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)

    def __init__(
        self, seq_len: int, pred_len: int, kernel_size: int = 25, *, dtype=None, key: Array
    ) -> None:
        self.seq_len, self.pred_len = check_int("seq_len", seq_len), check_int("pred_len", pred_len)
        self.kernel_size = check_kernel_size(kernel_size)
        k1, k2 = jax.random.split(key)
        self.seasonal = eqx.nn.Linear(seq_len, pred_len, dtype=dtype, key=k1)
        self.trend = eqx.nn.Linear(seq_len, pred_len, dtype=dtype, key=k2)

    def __call__(self, x: Array) -> Array:
        check_window(x, self.seq_len)
        trend = moving_average(x, self.kernel_size)
        return over_time(self.seasonal, x - trend) + over_time(self.trend, trend)


def residual_encoder(
    d_model: int, heads: int, n_layers: int, mlp_hidden: int | None, dtype, key, **options: Any
) -> TransformerEncoder:
    """As the torch twin: ``n_layers`` untied blocks over ``[0, n_layers]``."""
    n_layers = check_int("n_layers", n_layers)
    return TransformerEncoder(
        d_model, heads, mlp_hidden=mlp_hidden, depth_mode="untied", n_layers=n_layers,
        t_end=float(n_layers), dtype=dtype, key=key, **options,
    )  # fmt: skip


class PatchTST(eqx.Module):
    """As :class:`sciml_seq.torch.models.baselines.PatchTST`; ``x (seq_len, C)``."""

    revin: RevIN | None
    embed: eqx.nn.Linear
    encoder: TransformerEncoder
    head: eqx.nn.Linear
    channels: int = eqx.field(static=True)
    seq_len: int = eqx.field(static=True)
    pred_len: int = eqx.field(static=True)
    n_patches: int = eqx.field(static=True)
    patch_len: int = eqx.field(static=True)
    stride: int = eqx.field(static=True)
    pad_end: bool = eqx.field(static=True)

    def __init__(
        self,
        channels: int,
        seq_len: int,
        pred_len: int,
        *,
        patch_len: int = 16,
        stride: int = 8,
        pad_end: bool = True,
        d_model: int = 16,
        heads: int = 4,
        n_layers: int = 3,
        mlp_hidden: int | None = 128,
        revin: bool = True,
        affine: bool = True,
        dtype=None,
        key: Array,
    ) -> None:
        self.channels = check_int("channels", channels)
        self.seq_len, self.pred_len = check_int("seq_len", seq_len), check_int("pred_len", pred_len)
        self.n_patches = patch_count(seq_len, patch_len, stride, pad_end)
        self.patch_len, self.stride, self.pad_end = patch_len, stride, bool(pad_end)
        k_embed, k_encoder, k_head = jax.random.split(key, 3)
        self.revin = RevIN(channels, affine, dtype=dtype) if revin else None
        self.embed = eqx.nn.Linear(patch_len, d_model, dtype=dtype, key=k_embed)
        self.encoder = residual_encoder(
            d_model, heads, n_layers, mlp_hidden, dtype, k_encoder,
            encoding="learned", encoding_options=dict(max_positions=self.n_patches),
        )  # fmt: skip
        self.head = eqx.nn.Linear(self.n_patches * d_model, pred_len, dtype=dtype, key=k_head)

    def series(self, z: Array) -> Array:
        """The forecast ``(pred_len,)`` of one normalised series ``z (seq_len,)``."""
        tokens = jax.vmap(self.embed)(patches(z, self.patch_len, self.stride, self.pad_end))
        positions = jnp.arange(self.n_patches, dtype=tokens.dtype)
        return self.head(self.encoder(tokens, positions).reshape(-1))

    def __call__(self, x: Array) -> Array:
        check_window(x, self.seq_len, self.channels)
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        y = jax.vmap(self.series, in_axes=1, out_axes=1)(x)  # (pred_len, C)
        return y if self.revin is None else self.revin.denormalize(y, mean, std)


class ITransformer(eqx.Module):
    """As :class:`sciml_seq.torch.models.baselines.ITransformer`; ``x (seq_len, C)``."""

    revin: RevIN | None
    embed: eqx.nn.Linear
    encoder: TransformerEncoder
    head: eqx.nn.Linear
    channels: int = eqx.field(static=True)
    seq_len: int = eqx.field(static=True)
    pred_len: int = eqx.field(static=True)

    def __init__(
        self,
        channels: int,
        seq_len: int,
        pred_len: int,
        *,
        d_model: int = 128,
        heads: int = 8,
        n_layers: int = 2,
        mlp_hidden: int | None = 128,
        revin: bool = True,
        affine: bool = False,
        dtype=None,
        key: Array,
    ) -> None:
        self.channels = check_int("channels", channels)
        self.seq_len, self.pred_len = check_int("seq_len", seq_len), check_int("pred_len", pred_len)
        k_embed, k_encoder, k_head = jax.random.split(key, 3)
        self.revin = RevIN(channels, affine, dtype=dtype) if revin else None
        self.embed = eqx.nn.Linear(seq_len, d_model, dtype=dtype, key=k_embed)
        self.encoder = residual_encoder(
            d_model, heads, n_layers, mlp_hidden, dtype, k_encoder, encoding="none"
        )
        self.head = eqx.nn.Linear(d_model, pred_len, dtype=dtype, key=k_head)

    def __call__(self, x: Array) -> Array:
        check_window(x, self.seq_len, self.channels)
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        tokens = jax.vmap(self.embed)(x.T)  # (C, d_model)
        h = self.encoder(tokens, jnp.zeros(self.channels, tokens.dtype))
        y = jax.vmap(self.head)(h).T  # (pred_len, C)
        return y if self.revin is None else self.revin.denormalize(y, mean, std)

"""Strong long-horizon forecasting baselines: RevIN, NLinear, DLinear, PatchTST, iTransformer.

Mirrors :mod:`sciml_seq.jax.models.baselines` (same arguments, defaults,
parameter names and shapes; JAX acts on one example).  Every model maps
windows ``x (batch, seq_len, channels)`` to forecasts ``(batch, pred_len,
channels)``; the closed-form linear baseline is
:func:`sciml_seq.data.timeseries.fit_linear_forecaster` (numpy).

* :class:`RevIN` (Kim et al., ICLR 2022): per-example, per-channel
  standardisation over time with an optional affine map, and its exact inverse.
* :class:`NLinear` and :class:`DLinear` (Zeng et al., AAAI 2023): one linear
  map over time shared by the channels, after subtracting the last value
  (NLinear), or applied separately to a moving-average trend (replicate padding
  of ``(kernel_size - 1) // 2`` steps at each end, as the paper's code) and the
  remainder (DLinear).
* :class:`PatchTST` (Nie et al., ICLR 2023): channel-independent; each
  channel's series (RevIN-normalised) is cut into patches of ``patch_len`` with
  ``stride`` (after ``stride`` copies of the last value with ``pad_end``), each
  patch embedded linearly, a learned position table added, a transformer
  encoder over the patches, and a flatten head ``Linear(n_patches * d_model,
  pred_len)``.
* :class:`ITransformer` (Liu et al., ICLR 2024): each channel's whole input
  series is one token (``Linear(seq_len, d_model)``), a transformer encoder
  attends across channels (no position encoding: the channels are a set), and
  ``Linear(d_model, pred_len)`` reads each token's forecast.

The transformers are :class:`~sciml_seq.torch.transformer.TransformerEncoder`
with ``depth_mode="untied"`` and ``t_end = n_layers`` (a pre-norm residual stack,
``h += f_k(h)``, final LayerNorm); unlike the papers' code there is no dropout
and PatchTST uses LayerNorm, not BatchNorm.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...checks import check_int
from ...data.timeseries.baselines import check_kernel_size, check_revin, patch_count
from ...errors import ShapeError
from ..transformer import TransformerEncoder

__all__ = ["DLinear", "ITransformer", "NLinear", "PatchTST", "RevIN", "moving_average", "patches"]


def check_windows(x: Tensor, seq_len: int, channels: int | None = None) -> None:
    """``ShapeError`` unless ``x`` is ``(batch, seq_len, channels)``."""
    ok = isinstance(x, Tensor) and x.ndim == 3 and x.shape[1] == seq_len
    if ok and channels is not None:
        ok = x.shape[2] == channels
    if not ok:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        want = "channels" if channels is None else str(channels)
        raise ShapeError(f"x: expected windows of shape (batch, {seq_len}, {want}); got {got}")


def moving_average(x: Tensor, kernel_size: int) -> Tensor:
    """DLinear's trend: the mean of ``kernel_size`` steps around each step of ``x (batch, L, C)``.

    The series is first extended by ``(kernel_size - 1) // 2`` copies of its
    first and of its last value (the paper's replicate padding); odd
    ``kernel_size`` keeps the length ``L``.
    """
    half = (kernel_size - 1) // 2
    padded = torch.cat(
        [x[:, :1].expand(-1, half, -1), x, x[:, -1:].expand(-1, half, -1)], dim=1
    )  # (batch, L + 2 half, C)
    return padded.unfold(1, kernel_size, 1).mean(dim=-1)  # (batch, L, C)


def patches(z: Tensor, patch_len: int, stride: int, pad_end: bool) -> Tensor:
    """PatchTST's patches of series ``z (n, L)``: ``(n, n_patches, patch_len)``.

    Patch ``p`` is ``z[:, p * stride : p * stride + patch_len]`` of the series
    extended by ``stride`` copies of its last value when ``pad_end``.
    """
    if pad_end:
        z = torch.cat([z, z[:, -1:].expand(-1, stride)], dim=1)
    return z.unfold(1, patch_len, stride)


class RevIN(nn.Module):
    """Reversible instance normalisation over time, per example and channel.

    ``normalize(x)``: ``(x - mean) / std * weight + bias`` with the mean and
    ``std = sqrt(var + eps)`` (population variance) of each example's channel
    over the ``seq_len`` steps; ``denormalize(y, mean, std)`` inverts it exactly
    on forecasts ``y (batch, pred_len, channels)``: ``(y - bias) / weight * std
    + mean``.  (The reference code adds ``eps**2`` to ``weight`` when dividing;
    here the inverse is exact, so a weight trained to zero is the user's to avoid.)

    Parameters
    ----------
    channels: the channels ``C``.
    affine: learn ``weight (C,)`` (ones) and ``bias (C,)`` (zeros); without,
        no parameters.
    eps: added to the variance.
    dtype: parameter dtype.
    """

    def __init__(
        self, channels: int, affine: bool = True, eps: float = 1e-5, *, dtype=None
    ) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.affine, self.eps = bool(affine), check_revin(eps)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(channels, dtype=dtype))
            self.bias = nn.Parameter(torch.zeros(channels, dtype=dtype))

    def normalize(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(z, mean, std)``: ``z`` like ``x (batch, L, C)``; ``mean, std (batch, 1, C)``."""
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[-1] != self.channels:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"x: expected (batch, length, {self.channels}); got {got}")
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps)
        z = (x - mean) / std
        return (z * self.weight + self.bias if self.affine else z), mean, std

    def denormalize(self, y: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """The inverse of :meth:`normalize` with its ``mean, std``: ``y (batch, L', C)``."""
        if self.affine:
            y = (y - self.bias) / self.weight
        return y * std + mean

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.normalize(x)


class NLinear(nn.Module):
    """``Linear(seq_len, pred_len)`` over time, shared by the channels, relative to the last value.

    ``y[:, :, c] = linear(x[:, :, c] - x[:, -1, c]) + x[:, -1, c]``.

    Parameters (names): ``linear.weight (pred_len, seq_len)``, ``linear.bias (pred_len,)``.
    """

    def __init__(self, seq_len: int, pred_len: int, *, dtype=None) -> None:
        super().__init__()
        self.seq_len, self.pred_len = check_int("seq_len", seq_len), check_int("pred_len", pred_len)
        self.linear = nn.Linear(seq_len, pred_len, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        check_windows(x, self.seq_len)
        last = x[:, -1:]
        return self.linear((x - last).transpose(1, 2)).transpose(1, 2) + last


class DLinear(nn.Module):
    """Trend + remainder, each through its own ``Linear(seq_len, pred_len)`` over time.

    ``trend = moving_average(x, kernel_size)``; ``y = trend_linear(trend) +
    seasonal_linear(x - trend)`` (over time, shared by the channels).

    Parameters (names): ``seasonal.weight``, ``trend.weight`` ``(pred_len,
    seq_len)`` and their biases ``(pred_len,)``.
    """

    def __init__(self, seq_len: int, pred_len: int, kernel_size: int = 25, *, dtype=None) -> None:
        super().__init__()
        self.seq_len, self.pred_len = check_int("seq_len", seq_len), check_int("pred_len", pred_len)
        self.kernel_size = check_kernel_size(kernel_size)
        self.seasonal = nn.Linear(seq_len, pred_len, dtype=dtype)
        self.trend = nn.Linear(seq_len, pred_len, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        check_windows(x, self.seq_len)
        trend = moving_average(x, self.kernel_size)
        out = self.seasonal((x - trend).transpose(1, 2)) + self.trend(trend.transpose(1, 2))
        return out.transpose(1, 2)


def residual_encoder(
    d_model: int, heads: int, n_layers: int, mlp_hidden: int | None, dtype, **options: Any
) -> TransformerEncoder:
    """A pre-norm stack of ``n_layers`` untied transformer blocks, ``h += f_k(h)``."""
    n_layers = check_int("n_layers", n_layers)
    return TransformerEncoder(
        d_model, heads, mlp_hidden=mlp_hidden, depth_mode="untied", n_layers=n_layers,
        t_end=float(n_layers), dtype=dtype, **options,
    )  # fmt: skip


class PatchTST(nn.Module):
    """A channel-independent transformer over patches of each channel's series.

    Parameters
    ----------
    channels: the channels ``C`` (RevIN's affine parameters are per channel).
    seq_len, pred_len: input and forecast lengths.
    patch_len, stride: patching (the paper's 16 and 8).
    pad_end: append ``stride`` copies of the last value before patching.
    d_model, heads, n_layers, mlp_hidden: the encoder (defaults: the paper's
        ETTh settings, 16, 4, 3, 128; ``mlp_hidden=None`` is ``2 d_model``).
    revin, affine: RevIN on each channel (with its affine parameters).
    dtype: parameter dtype.

    Parameters (names): ``revin.weight``, ``revin.bias`` ``(C,)`` (with
    ``revin`` and ``affine``), ``embed`` ``Linear(patch_len, d_model)``,
    ``encoder.*`` (learned position table ``encoder.encoding.table (n_patches,
    d_model)``), ``head`` ``Linear(n_patches * d_model, pred_len)``.
    """

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
    ) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.seq_len, self.pred_len = check_int("seq_len", seq_len), check_int("pred_len", pred_len)
        self.n_patches = patch_count(seq_len, patch_len, stride, pad_end)
        self.patch_len, self.stride, self.pad_end = patch_len, stride, bool(pad_end)
        self.revin = RevIN(channels, affine, dtype=dtype) if revin else None
        self.embed = nn.Linear(patch_len, d_model, dtype=dtype)
        self.encoder = residual_encoder(
            d_model, heads, n_layers, mlp_hidden, dtype,
            encoding="learned", encoding_options=dict(max_positions=self.n_patches),
        )  # fmt: skip
        self.head = nn.Linear(self.n_patches * d_model, pred_len, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        check_windows(x, self.seq_len, self.channels)
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        batch = x.shape[0]
        z = x.transpose(1, 2).reshape(batch * self.channels, self.seq_len)
        tokens = self.embed(patches(z, self.patch_len, self.stride, self.pad_end))
        positions = torch.arange(self.n_patches, dtype=tokens.dtype, device=tokens.device)
        h = self.encoder(tokens, positions.expand(len(tokens), -1))  # (B C, n_patches, d_model)
        y = self.head(h.flatten(1)).reshape(batch, self.channels, self.pred_len).transpose(1, 2)
        return y if self.revin is None else self.revin.denormalize(y, mean, std)


class ITransformer(nn.Module):
    """An inverted transformer: each channel's input series is one token.

    Parameters
    ----------
    channels, seq_len, pred_len: as :class:`PatchTST`.
    d_model, heads, n_layers, mlp_hidden: the encoder (``mlp_hidden=None`` is
        ``2 d_model``).
    revin, affine: RevIN (the paper normalises without affine parameters).
    dtype: parameter dtype.

    Parameters (names): ``revin.*`` (with ``affine``), ``embed``
    ``Linear(seq_len, d_model)``, ``encoder.*``, ``head`` ``Linear(d_model, pred_len)``.
    """

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
    ) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.seq_len, self.pred_len = check_int("seq_len", seq_len), check_int("pred_len", pred_len)
        self.revin = RevIN(channels, affine, dtype=dtype) if revin else None
        self.embed = nn.Linear(seq_len, d_model, dtype=dtype)
        self.encoder = residual_encoder(
            d_model, heads, n_layers, mlp_hidden, dtype, encoding="none"
        )
        self.head = nn.Linear(d_model, pred_len, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        check_windows(x, self.seq_len, self.channels)
        if self.revin is not None:
            x, mean, std = self.revin.normalize(x)
        tokens = self.embed(x.transpose(1, 2))  # (batch, C, d_model)
        positions = torch.zeros(tokens.shape[:2], dtype=tokens.dtype, device=tokens.device)
        y = self.head(self.encoder(tokens, positions)).transpose(1, 2)  # (batch, pred_len, C)
        return y if self.revin is None else self.revin.denormalize(y, mean, std)

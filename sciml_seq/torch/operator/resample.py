"""Spectral resampling of square fields, as the official scOT does for off-size inputs."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import ShapeError
from ...operator.geometry import kept_frequencies
from ..cache import cacheable_tensor


@functools.lru_cache(maxsize=32)
def _kept_index(n: int, size: int, device: torch.device) -> Tensor:
    """:func:`kept_frequencies` as a tensor on ``device``, built (and copied there) once."""
    return cacheable_tensor(kept_frequencies(n, size), device=device)


def fft_resample(x: Tensor, size: int) -> Tensor:
    """Resample ``(..., n, n)`` real fields to ``(..., size, size)`` in Fourier space.

    Downsampling keeps the integer frequencies ``k`` with ``-size/2 <= k <= size/2 - 1``
    on both axes; upsampling zero-pads the centred spectrum by ``(size - n) // 2``
    on each side.  ``norm="forward"`` transforms, so values (not sums) are kept.
    As Poseidon's ``ScOT._downsample`` / ``_upsample``.
    """
    n = x.shape[-1]
    if x.shape[-2] != n:
        raise ShapeError(f"x: FFT resampling needs square fields, got {tuple(x.shape[-2:])}")
    if size == n:
        return x
    spectrum = torch.fft.fft2(x, norm="forward")
    if size < n:
        keep = _kept_index(n, size, x.device)
        spectrum = spectrum.index_select(-2, keep).index_select(-1, keep)
    else:
        pad = (size - n) // 2
        centred = torch.fft.fftshift(spectrum, dim=(-2, -1))
        real = F.pad(centred.real, (pad, pad, pad, pad))
        imag = F.pad(centred.imag, (pad, pad, pad, pad))
        spectrum = torch.fft.ifftshift(torch.complex(real, imag), dim=(-2, -1))
    return torch.fft.ifft2(spectrum, norm="forward").real


__all__ = ["fft_resample"]

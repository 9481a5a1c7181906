"""Spectral resampling of square fields in JAX (mirrors the torch ``operator.resample``)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from ...errors import ShapeError
from ...operator.geometry import kept_frequencies


def fft_resample(x: Array, size: int) -> Array:
    """Resample ``(..., n, n)`` real fields to ``(..., size, size)`` in Fourier space.

    See :func:`sciml_seq.torch.operator.resample.fft_resample` (Poseidon's rule).
    """
    n = x.shape[-1]
    if x.shape[-2] != n:
        raise ShapeError(f"x: FFT resampling needs square fields, got {tuple(x.shape[-2:])}")
    if size == n:
        return x
    spectrum = jnp.fft.fft2(x, norm="forward")
    if size < n:
        keep = kept_frequencies(n, size)
        spectrum = spectrum[..., keep, :][..., keep]
    else:
        pad = (size - n) // 2
        centred = jnp.fft.fftshift(spectrum, axes=(-2, -1))
        widths = [(0, 0)] * (x.ndim - 2) + [(pad, pad), (pad, pad)]
        spectrum = jnp.fft.ifftshift(jnp.pad(centred, widths), axes=(-2, -1))
    return jnp.real(jnp.fft.ifft2(spectrum, norm="forward"))


__all__ = ["fft_resample"]

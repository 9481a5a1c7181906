"""Random initial conditions on periodic grids (numpy only).

A field is a random trigonometric polynomial on ``[0, L)^d``,

.. math::

    f(x) = \\operatorname{Re} \\sum_{0 < \\|m\\|_\\infty \\le K} c_m
           \\exp(2\\pi i\\, m \\cdot x / L),
    \\qquad c_m \\sim \\mathcal{CN}(0, 1) \\text{ i.i.d.},

rescaled to a given standard deviation over the domain.  Because ``f`` is a
function of ``x`` (not of the grid), the same random stream gives the same
field sampled at every resolution ``N > 2K``: the ``N = 64`` grid holds the
``N = 32`` grid at its even points.  The mean is zero.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ...checks import check_int
from ...errors import OptionError

__all__ = ["grid", "random_fourier_field"]


def grid(ndim: int, resolution: int, domain_extent: float) -> NDArray[np.float64]:
    """Coordinates of the periodic grid ``x_j = j L / N``, ``j = 0, ..., N - 1``.

    Returns an array of shape ``(ndim, N, ..., N)`` (``ij`` indexing), so that
    ``grid(2, N, L)[0]`` is ``x`` varying along the first grid axis.
    """
    axis = np.arange(resolution) * (domain_extent / resolution)
    return np.stack(np.meshgrid(*([axis] * ndim), indexing="ij"))


def random_fourier_field(
    rng: np.random.Generator,
    ndim: int,
    resolution: int,
    *,
    cutoff: int,
    std: float = 1.0,
) -> NDArray[np.float64]:
    """A zero-mean random trigonometric polynomial of degree ``cutoff`` per axis.

    Parameters
    ----------
    rng: the random stream (consumes ``2 (2 cutoff + 1)^ndim`` normal draws).
    ndim: number of spatial dimensions (1 or 2).
    resolution: grid points per axis ``N``; must exceed ``2 * cutoff``.
    cutoff: the largest wavenumber index ``K`` (``|m_i| <= K``), at least 1.
    std: standard deviation of the field over the domain.

    Returns
    -------
    Array of shape ``(N,) * ndim``, float64, with mean zero and standard
    deviation ``std`` (exactly, on the grid).
    """
    cutoff = check_int("cutoff", cutoff)
    if check_int("resolution", resolution) <= 2 * cutoff:
        raise OptionError(
            f"resolution: expected an integer > 2 * cutoff = {2 * cutoff} (to resolve the "
            f"initial condition); got {resolution!r}"
        )
    width = 2 * cutoff + 1
    coeffs = rng.standard_normal((width,) * ndim) + 1j * rng.standard_normal((width,) * ndim)
    coeffs[(cutoff,) * ndim] = 0.0  # zero mean
    spectrum = np.zeros((resolution,) * ndim, dtype=np.complex128)
    index = np.ix_(*([np.arange(-cutoff, cutoff + 1) % resolution] * ndim))
    spectrum[index] = coeffs
    field = np.fft.ifftn(spectrum).real
    return field * (std / field.std())

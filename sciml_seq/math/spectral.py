"""Fourier pseudo-spectral time stepping on periodic grids (numpy only).

:class:`ETDRK4` is the fourth-order exponential time-differencing Runge--Kutta
scheme of Cox & Matthews (2002) with the contour-integral evaluation of its
coefficients from Kassam & Trefethen (2005), for ``u_hat' = L u_hat +
N(u_hat)`` with a diagonal (Fourier-space) ``L``.  Unlike the real-``L``
shortcut (take the real part of the contour mean), the coefficients here are
the complex contour means, so dispersive operators (``L`` imaginary, e.g.
``u_xxx``) keep their fourth order.

:func:`kdv_1d` builds the stepper of the (hyper-viscous) Korteweg--de Vries
equation in exponax's form,

.. math::

    u_t + \\tfrac{b}{2} (u^2)_x + a\\, u_{xxx} = -\\zeta\\, u_{xxxx},

on ``[0, L)`` with the 2/3 dealiasing rule.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["ETDRK4", "dealias_mask", "kdv_1d", "rfft_wavenumbers"]

ComplexArray = NDArray[np.complex128]


def rfft_wavenumbers(resolution: int, domain_extent: float) -> NDArray[np.float64]:
    """Angular wavenumbers ``2 pi m / L`` of ``numpy.fft.rfft`` output, ``(N // 2 + 1,)``."""
    return 2 * np.pi * np.fft.rfftfreq(resolution, domain_extent / resolution)


def dealias_mask(resolution: int, fraction: float = 2 / 3) -> NDArray[np.bool_]:
    """True for the rfft modes ``m`` with ``m <= fraction * N / 2`` (Orszag's 2/3 rule)."""
    return np.arange(resolution // 2 + 1) <= fraction * (resolution // 2)


class ETDRK4:
    """Fourth-order ETD Runge--Kutta step for ``u_hat' = linear * u_hat + nonlinear(u_hat)``.

    Parameters
    ----------
    linear: the diagonal linear operator in Fourier space (any shape that
        broadcasts against the states; complex allowed).
    dt: the step.
    nonlinear: ``u_hat -> N(u_hat)`` in Fourier space (handles its own dealiasing).
    n_contour: points on the contour of radius ``radius`` around each ``dt * linear``.
    """

    def __init__(
        self,
        linear: NDArray[np.complexfloating] | NDArray[np.floating],
        dt: float,
        nonlinear: Callable[[ComplexArray], ComplexArray],
        *,
        n_contour: int = 32,
        radius: float = 1.0,
    ) -> None:
        z0 = np.asarray(linear, dtype=np.complex128) * dt
        roots = radius * np.exp(2j * np.pi * (np.arange(n_contour) + 0.5) / n_contour)
        z = z0[..., None] + roots
        ez = np.exp(z)

        def mean(values: ComplexArray) -> ComplexArray:
            return values.mean(axis=-1)

        self.dt = dt
        self.nonlinear = nonlinear
        self.e = np.exp(z0)
        self.e2 = np.exp(z0 / 2)
        self.q = dt * mean((np.exp(z / 2) - 1) / z)
        self.f1 = dt * mean((-4 - z + ez * (4 - 3 * z + z**2)) / z**3)
        self.f2 = dt * mean((2 + z + ez * (z - 2)) / z**3)
        self.f3 = dt * mean((-4 - 3 * z - z**2 + ez * (4 - z)) / z**3)

    def step(self, u_hat: ComplexArray) -> ComplexArray:
        """One step of size ``dt`` (Cox & Matthews 2002, eq. 26-29)."""
        n_u = self.nonlinear(u_hat)
        a = self.e2 * u_hat + self.q * n_u
        n_a = self.nonlinear(a)
        b = self.e2 * u_hat + self.q * n_a
        n_b = self.nonlinear(b)
        c = self.e2 * a + self.q * (2 * n_b - n_u)
        n_c = self.nonlinear(c)
        return self.e * u_hat + self.f1 * n_u + 2 * self.f2 * (n_a + n_b) + self.f3 * n_c


def kdv_1d(
    domain_extent: float,
    resolution: int,
    dt: float,
    *,
    convection_scale: float = -6.0,
    dispersivity: float = 1.0,
    hyper_diffusivity: float = 0.0,
) -> ETDRK4:
    """ETDRK4 stepper of ``u_t + b/2 (u^2)_x + a u_xxx = -zeta u_xxxx`` on rfft coefficients.

    The state is ``numpy.fft.rfft(u, axis=-1)`` of real ``u`` with shape
    ``(..., resolution)``; ``b = convection_scale``, ``a = dispersivity``,
    ``zeta = hyper_diffusivity``.  With ``b = -6, a = 1`` the soliton
    ``-c/2 sech^2(sqrt(c)/2 (x - c t))`` travels right at speed ``c``.
    """
    k = rfft_wavenumbers(resolution, domain_extent)
    mask = dealias_mask(resolution)
    derivative = np.where(mask, 1j * k, 0)  # also zeroes the Nyquist mode's derivative
    linear = -dispersivity * (1j * k) ** 3 - hyper_diffusivity * k**4

    def nonlinear(u_hat: ComplexArray) -> ComplexArray:
        u = np.fft.irfft(u_hat * mask, n=resolution, axis=-1)
        return -0.5 * convection_scale * derivative * np.fft.rfft(u * u, axis=-1)

    return ETDRK4(linear, dt, nonlinear)

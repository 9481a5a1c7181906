"""ETDRK4 with complex contour coefficients, and the KdV stepper's operators."""

from __future__ import annotations

import numpy as np
import pytest

from sciml_seq.math.spectral import ETDRK4, dealias_mask, kdv_1d, rfft_wavenumbers


def riccati(lam: complex, u0: complex, t: float) -> complex:
    """Exact solution of u' = lam u - u^2."""
    e = np.exp(lam * t)
    return lam * u0 * e / (lam + u0 * (e - 1))


def etdrk4_error(lam: complex, n_steps: int, u0: complex = 0.5, t: float = 1.0) -> float:
    stepper = ETDRK4(np.array([lam]), t / n_steps, lambda u: -(u**2))
    u = np.array([u0], dtype=complex)
    for _ in range(n_steps):
        u = stepper.step(u)
    return abs(u[0] - riccati(lam, u0, t))


@pytest.mark.parametrize("lam", [-3.0, 0.3 + 4.0j, 5.0j])
def test_etdrk4_is_fourth_order_for_real_and_complex_linear_parts(lam):
    # taking the real part of the contour means (the shortcut for real L) would
    # drop to first order for the imaginary cases
    coarse, fine = etdrk4_error(lam, 20), etdrk4_error(lam, 40)
    assert fine < 1e-6
    assert 2**3.7 < coarse / fine < 2**4.4


def test_etdrk4_is_exact_for_the_linear_part():
    lam = np.array([-50.0, 2.0j, 0.0, 1e-9])
    stepper = ETDRK4(lam, 0.7, lambda u: np.zeros_like(u))
    u = np.ones(4, dtype=complex)
    np.testing.assert_allclose(stepper.step(u), np.exp(lam * 0.7), rtol=1e-14)


def test_etdrk4_constant_forcing_matches_the_variation_of_constants_formula():
    # u' = lam u + 1: u(h) = e^{lam h} u0 + (e^{lam h} - 1) / lam (phi_1 evaluated by the contour)
    lam, h = np.array([-1e-8, -2.0, 30.0j, -400.0]), 0.1
    stepper = ETDRK4(lam, h, lambda u: np.ones_like(u))
    expected = np.exp(lam * h) * 2.0 + np.expm1(lam * h) / lam
    np.testing.assert_allclose(stepper.step(np.full(4, 2.0 + 0j)), expected, rtol=1e-12)


def test_wavenumbers_and_dealias_mask():
    np.testing.assert_allclose(rfft_wavenumbers(8, 4 * np.pi), [0, 0.5, 1.0, 1.5, 2.0])
    assert dealias_mask(12).tolist() == [True] * 5 + [False] * 2


def test_kdv_linear_dispersion_relation():
    # small amplitude: u_t + u_xxx = 0, so cos(kx) -> cos(k x + k^3 t)
    length, n, t = 2 * np.pi, 32, 0.3
    x = np.arange(n) * length / n
    stepper = kdv_1d(length, n, t / 10, convection_scale=0.0)
    u_hat = np.fft.rfft(np.cos(3 * x))
    for _ in range(10):
        u_hat = stepper.step(u_hat)
    np.testing.assert_allclose(np.fft.irfft(u_hat, n), np.cos(3 * x + 27 * t), atol=1e-12)

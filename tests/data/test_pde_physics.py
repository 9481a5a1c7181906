"""Each registered PDE against a closed-form solution, a conserved quantity or a
float64 reference (scipy's stiff/nonstiff integrators on a plain numpy
pseudo-spectral right-hand side written from the documented equation).

The solves run in exponax's float32 (or float64 when another test module turned
on ``jax_enable_x64``); tolerances hold for float32.  One small rollout per test:
JAX compilation dominates the time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from sciml_seq.data.pde import (
    get_equation,
    grid,
    random_fourier_field,
    simulate,
)

pytest.importorskip("exponax")


def wavenumbers(n: int, length: float) -> np.ndarray:
    """Angular wavenumbers of numpy's FFT ordering."""
    return 2 * np.pi * np.fft.fftfreq(n, length / n)


def spectral_dx(u: np.ndarray, length: float, axis: int = -1) -> np.ndarray:
    shape = [1] * u.ndim
    shape[axis] = u.shape[axis]
    ik = 1j * wavenumbers(u.shape[axis], length).reshape(shape)
    return np.fft.ifft(ik * np.fft.fft(u, axis=axis), axis=axis).real


# ----------------------------------------------------------------------------- Burgers


def test_burgers_matches_the_cole_hopf_solution():
    # phi = a0 + a1 exp(-nu t) cos x solves phi_t = nu phi_xx, so
    # u = -2 nu phi_x / phi solves u_t + u u_x = nu u_xx (Cole-Hopf)
    nu, a0, a1, n = 0.1, 1.0, 0.6, 64
    x = grid(1, n, 2 * np.pi)[0]

    def exact(t):
        decay = a1 * np.exp(-nu * t)
        return 2 * nu * decay * np.sin(x) / (a0 + decay * np.cos(x))

    traj = simulate(
        "burgers_1d",
        exact(0.0)[None, None],
        n_times=11,
        dt=0.2,
        substeps=20,
        domain_extent=2 * np.pi,
        params={"diffusivity": nu},
    )
    expected = np.stack([exact(t) for t in traj.t])
    scale = np.abs(expected).max()
    assert np.abs(traj.u[0, :, 0] - expected).max() < 1e-5 * scale
    # the mean (mass) is conserved
    assert np.abs(traj.u[0, :, 0].mean(-1)).max() < 1e-6 * scale


# ----------------------------------------------------------------------------- KdV


def test_kdv_soliton_keeps_its_shape_and_speed():
    # u_t - 6 u u_x + u_xxx = 0: u = -c/2 sech^2(sqrt(c)/2 (x - c t - x0)); the soliton
    # stays 20 length units from the periodic boundary (tails below 1e-8)
    c, length, n, x0 = 1.0, 50.0, 128, 20.0
    x = grid(1, n, length)[0]

    def exact(t):
        return -c / 2 / np.cosh(np.sqrt(c) / 2 * (x - c * t - x0)) ** 2

    traj = simulate(
        "kdv_1d",
        exact(0.0)[None, None],
        n_times=6,
        dt=1.0,
        substeps=40,
        domain_extent=length,
        params={"hyper_diffusivity": 0.0},
    )
    expected = np.stack([exact(t) for t in traj.t])
    assert np.abs(traj.u[0, :, 0] - expected).max() < 1e-6
    peak = x[np.argmin(traj.u[0, -1, 0])]
    assert peak == pytest.approx(x0 + c * traj.t[-1], abs=length / n)


# ----------------------------------------------------------------------------- KS


def test_ks_small_modes_grow_and_decay_at_the_linear_rates():
    # linearised u_t = -u_xx - u_xxxx: mode k grows like exp((k^2 - k^4) t)
    length, n, amplitude, duration = 16 * np.pi, 64, 1e-4, 2.0
    x = grid(1, n, length)[0]
    modes = (4, 12)  # k = 0.5 (rate 0.1875) and k = 1.5 (rate -2.8125)
    u0 = amplitude * sum(np.cos(2 * np.pi * m * x / length) for m in modes)
    traj = simulate(
        "ks_1d", u0[None, None], n_times=2, dt=duration, substeps=40, domain_extent=length
    )
    spectrum = np.fft.rfft(traj.u[0, :, 0].astype(np.float64), axis=-1)
    for m in modes:
        k = 2 * np.pi * m / length
        rate = np.log(np.abs(spectrum[1, m]) / np.abs(spectrum[0, m])) / duration
        assert rate == pytest.approx(k**2 - k**4, abs=1e-5), m


def test_ks_matches_a_float64_reference_and_conserves_the_mean():
    length, n, duration = 22.0, 64, 4.0
    k = wavenumbers(n, length)
    x = grid(1, n, length)[0]
    u0 = (np.cos(2 * np.pi * x / length) + 0.5 * np.sin(4 * np.pi * x / length + 1.0))[None]

    def rhs(_t, u):
        u_hat = np.fft.fft(u)
        return np.fft.ifft(-0.5j * k * np.fft.fft(u * u) + (k**2 - k**4) * u_hat).real

    ts = np.linspace(0, duration, 5)
    reference = solve_ivp(
        rhs, (0, duration), u0[0], method="BDF", t_eval=ts, rtol=1e-10, atol=1e-12
    )
    traj = simulate("ks_1d", u0[None], n_times=5, dt=1.0, substeps=100, domain_extent=length)
    expected = reference.y.T
    assert np.abs(expected[-1] - u0[0]).max() > 0.3  # the nonlinear dynamics did something
    assert np.abs(traj.u[0, :, 0] - expected).max() < 1e-4 * np.abs(expected).max()
    assert np.abs(traj.u[0, :, 0].mean(-1)).max() < 1e-6


# ----------------------------------------------------------------------------- Navier-Stokes


NS = {"n": 32, "length": 2 * np.pi, "nu": 0.01, "dt": 0.5, "n_times": 3}


@pytest.fixture(scope="module")
def navier_stokes():
    """One batched solve: a Taylor-Green vortex and a smooth multi-mode field."""
    x, y = grid(2, NS["n"], NS["length"])
    taylor_green = np.cos(2 * x) * np.cos(2 * y)
    mixed = np.sin(x) * np.cos(2 * y) + 0.8 * np.cos(2 * x + 0.3) + 0.6 * np.sin(x + y)
    traj = simulate(
        "navier_stokes_2d",
        np.stack([taylor_green, mixed])[:, None],
        n_times=NS["n_times"],
        dt=NS["dt"],
        substeps=50,
        domain_extent=NS["length"],
        params={"diffusivity": NS["nu"]},
    )
    return traj, taylor_green, mixed


def test_navier_stokes_taylor_green_vortex_decays_exactly(navier_stokes):
    # w = cos(kx) cos(ky) is steady for Euler; viscosity damps it by exp(-2 nu k^2 t)
    traj, w0, _ = navier_stokes
    expected = np.exp(-2 * NS["nu"] * 2**2 * traj.t)[:, None, None] * w0
    assert np.abs(traj.u[0, :, 0] - expected).max() < 1e-5  # float32 over 100 steps


def test_navier_stokes_matches_a_float64_reference(navier_stokes):
    # w_t + (u . grad) w = nu lap w with lap psi = -w, u = (psi_y, -psi_x): curl u = w
    traj, _, w0 = navier_stokes
    n, nu = NS["n"], NS["nu"]
    kx, ky = np.meshgrid(wavenumbers(n, NS["length"]), wavenumbers(n, NS["length"]), indexing="ij")
    k2 = kx**2 + ky**2
    inv_minus_lap = np.where(k2 == 0, 0.0, 1 / np.where(k2 == 0, 1, k2))

    def rhs(_t, w_flat):
        w_hat = np.fft.fft2(w_flat.reshape(n, n))
        psi_hat = inv_minus_lap * w_hat
        u = np.fft.ifft2(1j * ky * psi_hat).real
        v = np.fft.ifft2(-1j * kx * psi_hat).real
        wx = np.fft.ifft2(1j * kx * w_hat).real
        wy = np.fft.ifft2(1j * ky * w_hat).real
        return (-(u * wx + v * wy) + np.fft.ifft2(-nu * k2 * w_hat).real).ravel()

    duration = traj.t[-1]
    reference = solve_ivp(
        rhs, (0, duration), w0.ravel(), t_eval=traj.t, method="DOP853", rtol=1e-10
    )
    expected = reference.y.T.reshape(-1, n, n)
    assert np.abs(expected[-1] - w0 * np.exp(-nu * duration)).max() > 0.1  # nonlinear
    assert np.abs(traj.u[1, :, 0] - expected).max() < 5e-4 * np.abs(expected).max()


# ----------------------------------------------------------------------------- Allen-Cahn

AC = {"n": 128, "length": 2.0, "nu": 2e-3}


@pytest.fixture(scope="module")
def allen_cahn():
    """One batched solve: tanh interfaces of the right and a wrong width, and a random field."""
    width = math.sqrt(2 * AC["nu"])
    x = grid(2, AC["n"], AC["length"])[0]

    def interfaces(w):
        return -np.tanh((x - AC["length"] / 4) / w) * np.tanh((x - 3 * AC["length"] / 4) / w)

    rng = np.random.default_rng(5)
    random = random_fourier_field(rng, 2, AC["n"], cutoff=6, std=0.5)
    u0 = np.stack([interfaces(width), interfaces(2 * width), random])[:, None]
    traj = simulate(
        "allen_cahn_2d",
        u0,
        n_times=9,
        dt=0.25,
        substeps=5,
        domain_extent=AC["length"],
        params={"diffusivity": AC["nu"]},
    )
    return traj, u0


def test_allen_cahn_tanh_interfaces_are_stationary(allen_cahn):
    # nu u'' + u - u^3 = 0 is solved by tanh(x / sqrt(2 nu)); two far-apart
    # interfaces on the periodic domain are stationary up to exp(-distance / width)
    traj, u0 = allen_cahn
    assert np.abs(traj.u[0, :, 0] - u0[0, 0]).max() < 1e-4
    # a profile of the wrong width is not stationary (the check can fail)
    assert np.abs(traj.u[1, -1, 0] - u0[1, 0]).max() > 1e-2


def test_allen_cahn_free_energy_decreases(allen_cahn):
    traj, _ = allen_cahn
    u = traj.u[2, :, 0].astype(np.float64)
    length = AC["length"]
    grad2 = spectral_dx(u, length, axis=-1) ** 2 + spectral_dx(u, length, axis=-2) ** 2
    energy = (0.5 * AC["nu"] * grad2 - 0.5 * u**2 + 0.25 * u**4).mean(axis=(-1, -2))
    assert np.all(np.diff(energy) < 0)
    assert energy[-1] < energy[0] - 0.05


# ----------------------------------------------------------------------------- wave


def test_wave_matches_the_exact_fourier_solution_and_conserves_energy():
    c, n, length = 1.3, 16, 2 * np.pi
    equation = get_equation("wave_2d").with_overrides(resolution=n, domain_extent=length)
    rng = np.random.default_rng(0)
    h0 = random_fourier_field(rng, 2, n, cutoff=4)
    v0 = random_fourier_field(rng, 2, n, cutoff=4, std=2.0)
    traj = simulate(
        "wave_2d",
        np.stack([h0, v0])[None],
        n_times=6,
        dt=0.37,
        domain_extent=length,
        params={"speed_of_sound": c},
    )
    assert equation.substeps == 1
    kx, ky = np.meshgrid(wavenumbers(n, length), wavenumbers(n, length), indexing="ij")
    omega = c * np.sqrt(kx**2 + ky**2)
    h_hat, v_hat = np.fft.fft2(h0), np.fft.fft2(v0)
    safe = np.where(omega == 0, 1.0, omega)
    for i, t in enumerate(traj.t):
        sin_over = np.where(omega == 0, t, np.sin(omega * t) / safe)
        h = np.fft.ifft2(h_hat * np.cos(omega * t) + v_hat * sin_over).real
        v = np.fft.ifft2(-omega * np.sin(omega * t) * h_hat + v_hat * np.cos(omega * t)).real
        np.testing.assert_allclose(traj.u[0, i, 0], h, atol=1e-6 * np.abs(h).max())
        np.testing.assert_allclose(traj.u[0, i, 1], v, atol=1e-6 * np.abs(v).max())
    h, v = traj.u[0, :, 0].astype(np.float64), traj.u[0, :, 1].astype(np.float64)
    grad2 = spectral_dx(h, length, axis=-1) ** 2 + spectral_dx(h, length, axis=-2) ** 2
    energy = (0.5 * v**2 + 0.5 * c**2 * grad2).mean(axis=(-1, -2))
    np.testing.assert_allclose(energy, energy[0], rtol=1e-6)

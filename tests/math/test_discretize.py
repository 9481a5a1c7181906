"""Discretisations against scipy, against each other, and against the official S4 numbers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from scipy.signal import cont2discrete

from sciml_seq.errors import NonFiniteError, OptionError, ShapeError
from sciml_seq.math.discretize import (
    DISCRETIZATIONS,
    bilinear,
    bilinear_diag,
    discretize,
    vandermonde_kernel,
    zoh,
    zoh_diag,
)
from sciml_seq.math.hippo import dplr_matrix

from . import load_s4

SCIPY_NAMES = {
    "zoh": "zoh",
    "bilinear": "bilinear",
    "forward_euler": "euler",
    "backward_euler": "backward_diff",
}
METHODS = tuple(DISCRETIZATIONS)


def stable_system(seed: int, N: int = 5, M: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((N, N))
    A -= (np.max(np.linalg.eigvals(A).real) + 0.5) * np.eye(N)  # spectrum in Re < -0.5
    return A, rng.standard_normal((N, M))


# ------------------------------------------------------------------------------ scipy
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dt", [1e-3, 0.1, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_dense_matches_scipy_cont2discrete(method: str, dt: float, seed: int) -> None:
    A, B = stable_system(seed)
    C, D = np.eye(A.shape[0]), np.zeros((A.shape[0], B.shape[1]))
    Ad, Bd, *_ = cont2discrete((A, B, C, D), dt, method=SCIPY_NAMES[method])
    dA, dB = discretize(method, A, B, dt)
    np.testing.assert_allclose(dA, Ad, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dB, Bd, rtol=0, atol=1e-12)
    dA1, dB1 = discretize(method, A, B[:, 0], dt)  # vector B
    np.testing.assert_allclose(dA1, dA, rtol=0, atol=1e-14)
    np.testing.assert_allclose(dB1, dB[:, 0], rtol=0, atol=1e-14)


def test_zoh_matches_expm_and_integral() -> None:
    # dA = expm(dt A); dB = A^{-1}(dA - I) B for invertible A.
    A, B = stable_system(3)
    dt = 0.37
    dA, dB = zoh(A, B, dt)
    np.testing.assert_allclose(dA, scipy.linalg.expm(dt * A), rtol=0, atol=1e-13)
    np.testing.assert_allclose(dB, np.linalg.solve(A, (dA - np.eye(5)) @ B), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_dense_batches_and_broadcasts_dt(method: str) -> None:
    systems = [stable_system(s) for s in range(3)]
    A = np.stack([a for a, _ in systems])
    B = np.stack([b for _, b in systems])
    dt = np.array([0.01, 0.1, 0.5])
    dA, dB = discretize(method, A, B, dt)
    assert dA.shape == (3, 5, 5) and dB.shape == (3, 5, 2)
    for i in range(3):
        a, b = discretize(method, A[i], B[i], dt[i])
        np.testing.assert_allclose(dA[i], a, rtol=0, atol=1e-14)
        np.testing.assert_allclose(dB[i], b, rtol=0, atol=1e-14)
    dA2, _ = discretize(method, A[0], B[0], dt)  # one system, three steps
    assert dA2.shape == (3, 5, 5)
    np.testing.assert_allclose(dA2[2], discretize(method, A[0], B[0], 0.5)[0], atol=1e-14)


# --------------------------------------------------------------------- diagonal = dense
@pytest.mark.parametrize("method", METHODS)
def test_diagonal_equals_dense_on_complex_diagonal_systems(method: str) -> None:
    rng = np.random.default_rng(7)
    H, N = 3, 6
    lam = -np.exp(rng.standard_normal((H, N))) - 1j * rng.uniform(0, 20, (H, N))
    B = rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), (H, 1)))
    dA, dB = discretize(method, lam, B, dt, diagonal=True)
    assert dA.shape == dB.shape == (H, N)
    dense_A, dense_B = discretize(method, np.stack([np.diag(x) for x in lam]), B, dt[:, 0])
    np.testing.assert_allclose(dA, np.diagonal(dense_A, axis1=-2, axis2=-1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dense_A - np.stack([np.diag(x) for x in dA]), 0, atol=1e-12)
    np.testing.assert_allclose(dB, dense_B, rtol=0, atol=1e-12)


def test_diagonal_zoh_limit_at_zero_eigenvalue() -> None:
    B = np.array([1.0, 2.0 - 1j, 3.0])
    lam = np.array([0.0, 0.0, 1e-13])
    dA, dB = zoh_diag(lam, B, 0.25)
    np.testing.assert_allclose(dA, np.exp(0.25 * lam), rtol=0, atol=1e-15)
    np.testing.assert_allclose(dB, 0.25 * B, rtol=1e-12, atol=0)
    assert np.all(np.isfinite(dB))
    _, dense_B = zoh(np.diag(lam), B, 0.25)
    np.testing.assert_allclose(dB, dense_B, rtol=0, atol=1e-15)


def test_diagonal_real_eigenvalues() -> None:
    lam = -np.arange(1.0, 5.0)
    dA, dB = zoh_diag(lam, np.ones(4), 0.1)
    np.testing.assert_allclose(dA, np.exp(-0.1 * np.arange(1.0, 5.0)), rtol=1e-15)
    np.testing.assert_allclose(dB, (1 - np.exp(-0.1 * np.arange(1.0, 5.0))) / np.arange(1.0, 5.0))


# ------------------------------------------------------------------ official fixtures
@pytest.mark.parametrize(
    ("fixture", "method"),
    [
        ("a_s4d_lin_zoh", "zoh"),
        ("b_s4d_inv_zoh", "zoh"),
        ("c_s4d_lin_bilinear", "bilinear"),
        ("x3_s4d_legs_zoh", "zoh"),
        ("x2_s4d_lin_zoh_channels2", "zoh"),
    ],
)
def test_s4d_kernel_matches_official(fixture: str, method: str) -> None:
    ref = load_s4(fixture)
    dt, lam, B, C = (ref[f"derived/{k}"] for k in ("dt", "A", "B", "C"))
    dA, dB = discretize(method, lam, B[0], dt, diagonal=True)  # (H, N2)
    K = vandermonde_kernel(dA, dB, C, ref["K"].shape[-1])  # C (C, H, N2) broadcasts
    assert K.shape == ref["K"].shape
    np.testing.assert_allclose(K, ref["K"], rtol=0, atol=1e-12)
    if "K_rate2" in ref:  # rate 2: the same formulas with 2 dt
        dA2, dB2 = discretize(method, lam, B[0], 2 * dt, diagonal=True)
        K2 = vandermonde_kernel(dA2, dB2, C, ref["K_rate2"].shape[-1])
        np.testing.assert_allclose(K2, ref["K_rate2"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("fixture", ["f_step_s4d_lin_zoh", "x3_s4d_legs_zoh"])
def test_diagonal_zoh_matches_official_step_matrices(fixture: str) -> None:
    ref = load_s4(fixture)
    dA, dB = zoh_diag(ref["derived/A"], ref["derived/B"][0], ref["derived/dt"])
    np.testing.assert_allclose(dA, ref["step/dA"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(dB, ref["step/dB"], rtol=0, atol=1e-12)


def test_dense_bilinear_matches_official_dplr_step_matrices() -> None:
    # S4 (DPLR) step mode: bilinear on A_f = diag(Λ_f) - P_f P_f^* (H, N, N), one dt per H.
    ref = load_s4("f_step_s4_legs_dplr")
    A = dplr_matrix(ref["derived/A"], ref["derived/P"])
    B = ref["derived/B"][0]
    Bf = np.concatenate([B, B.conj()], axis=-1)
    dA, dB = bilinear(A, Bf, ref["derived/dt"][:, 0])
    np.testing.assert_allclose(dA, ref["step/dA"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(dB, ref["step/dB"], rtol=0, atol=1e-12)


def test_dplr_power_series_kernel_matches_official() -> None:
    # K[l] = Re(C_f dA^l dB) with the plain C (param_init) reproduces the official S4 kernel.
    ref = load_s4("d_s4_legs_dplr")
    A = dplr_matrix(ref["derived/A"], ref["derived/P"])
    B = ref["derived/B"][0]
    dA, dB = bilinear(A, np.concatenate([B, B.conj()], -1), ref["derived/dt"][:, 0])
    C = ref["param_init/layer.kernel.C"][..., 0] + 1j * ref["param_init/layer.kernel.C"][..., 1]
    Cf = np.concatenate([C, C.conj()], axis=-1)  # (1, H, N)
    x, K = dB, []
    for _ in range(ref["K"].shape[-1]):
        K.append(np.einsum("chn,hn->ch", Cf, x).real)
        x = np.einsum("hij,hj->hi", dA, x)
    np.testing.assert_allclose(np.stack(K, -1), ref["K"], rtol=0, atol=1e-11)


# ------------------------------------------------------------------ vandermonde kernel
def test_vandermonde_kernel_equals_impulse_response_of_the_recurrence() -> None:
    rng = np.random.default_rng(1)
    dA = 0.95 * np.exp(1j * rng.uniform(0, np.pi, 6))
    dB, C = rng.standard_normal((2, 6)) + 1j * rng.standard_normal((2, 6))
    x, y = np.zeros(6, complex), []
    for t in range(20):  # x_t = dA x_{t-1} + dB u_t with u = δ_0, y_t = 2 Re(C x_t)
        x = dA * x + dB * (t == 0)
        y.append(2 * np.real(C @ x))
    np.testing.assert_allclose(vandermonde_kernel(dA, dB, C, 20), y, rtol=0, atol=1e-14)


# ------------------------------------------------------------------------------ errors
def test_unknown_method() -> None:
    A, B = stable_system(0)
    msg = r"method: expected one of 'zoh', 'bilinear', 'forward_euler', 'backward_euler'; got 'rk4'"
    with pytest.raises(OptionError, match=msg):
        discretize("rk4", A, B, 0.1)


@pytest.mark.parametrize("L", [0, 4.0, True])
def test_kernel_length_must_be_a_positive_integer(L) -> None:
    with pytest.raises(
        OptionError, match=r"^L \(the kernel length\): expected an integer >= 1; got"
    ):
        vandermonde_kernel(np.ones(2), np.ones(2), np.ones(2), L)


@pytest.mark.parametrize("dt", [0.0, -0.1, np.array([0.1, -1.0]), np.nan, np.inf, "0.1", 1j])
def test_dt_must_be_positive_and_finite(dt) -> None:
    A, B = stable_system(0)
    with pytest.raises(OptionError, match=r"^dt: expected"):
        discretize("zoh", A, B, dt)
    with pytest.raises(OptionError, match=r"^dt: expected"):
        discretize("zoh", np.diag(A), np.ones(5), dt, diagonal=True)


def test_shape_and_value_errors() -> None:
    A, B = stable_system(0)
    with pytest.raises(ShapeError, match=r"A: expected shape \(\.\.\., N, N\); got \(5, 4\)"):
        zoh(A[:, :4], B, 0.1)
    with pytest.raises(ShapeError, match=r"B: expected shape \(\.\.\., 5, M\)"):
        bilinear(A, B[:4], 0.1)
    with pytest.raises(ShapeError, match="dt: expected a shape broadcasting"):
        zoh(np.stack([A] * 3), np.stack([B] * 3), np.ones(2))
    with pytest.raises(ShapeError, match="broadcasting with the diagonal A"):
        bilinear_diag(np.ones(4), np.ones(3), 0.1)
    with pytest.raises(NonFiniteError, match="A: expected finite values"):
        zoh(A * np.nan, B, 0.1)

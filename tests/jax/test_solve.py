"""sciml_seq.jax.solve against closed forms, measured evaluation counts, torch and its errors.

Compiling diffrax solves dominates the run time, so every solve goes through a
few cached ``jit(vmap(solve))`` functions that take the field as an argument:
tests with the same method and options share one compilation, whatever the
field's parameters or the batch of initial states.
"""

from __future__ import annotations

import functools

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from sciml_seq.errors import DTypeError, NonFiniteError, OptionError, ShapeError, SolverError
from sciml_seq.jax import Solution, available_methods, solve
from sciml_seq.methods import METHODS
from sciml_seq.stats import SolveStats

A = np.array([[0.0, 1.0], [-4.0, -0.3]])  # damped oscillator
TS = jnp.array([0.0, 0.3, 1.1, 2.0])
Y0 = jnp.array([0.8, -0.4])
Y0S = jnp.asarray(np.random.default_rng(0).normal(size=(4, 2)))  # a batch
W_OUT = jnp.asarray(np.random.default_rng(1).normal(size=(4, 2)))  # loss weights
N_STEPS = 7  # per output interval: 21 steps over TS
TIGHT = dict(rtol=1e-10, atol=1e-12, max_steps=5000)

ADAPTIVE = [m for m in available_methods() if METHODS[m].adaptive]
FIXED = [m for m in available_methods() if not METHODS[m].adaptive]

_EVALUATIONS = [0]


def _tick() -> None:
    _EVALUATIONS[0] += 1


class Affine(eqx.Module):
    """f(t, y) = a y + t b; counts its evaluations on the host (once per batched call)."""

    a: jax.Array
    b: jax.Array

    def __call__(self, t: jax.Array, y: jax.Array) -> jax.Array:
        jax.debug.callback(_tick)
        return self.a @ y + t * self.b


def linear(a: np.ndarray = A) -> Affine:
    return Affine(jnp.asarray(a), jnp.zeros(a.shape[0]))


LINEAR = linear()


def exact(y0: jax.Array) -> np.ndarray:
    """expm(A t) y0 at every t in TS, shape (*batch, n_times, 2)."""
    props = np.stack([scipy.linalg.expm(A * t) for t in np.asarray(TS)])
    return np.einsum("tij,...j->...ti", props, np.asarray(y0))


def options(method: str, n_steps: int = N_STEPS) -> dict:
    return TIGHT if METHODS[method].adaptive else dict(n_steps=n_steps)


@functools.cache
def batched(method: str, n_steps: int = N_STEPS):
    """jit(vmap(solve)) over a batch of initial states: (field, y0s) -> Solution."""
    opts = options(method, n_steps)
    return jax.jit(jax.vmap(lambda f, y: solve(f, y, TS, method=method, **opts), in_axes=(None, 0)))


def run(method: str, field: Affine = LINEAR, y0s: jax.Array = Y0S, n_steps: int = N_STEPS):
    """(Solution, evaluations measured on the host) of a batched solve."""
    _EVALUATIONS[0] = 0
    sol = batched(method, n_steps)(field, y0s)
    jax.block_until_ready(sol.ys)
    jax.effects_barrier()
    return sol, _EVALUATIONS[0]


@functools.cache
def linear_run(method: str, n_steps: int = N_STEPS) -> tuple[Solution, int]:
    return run(method, n_steps=n_steps)


def test_available_methods_cover_the_shared_table():
    assert available_methods() == tuple(METHODS)


# --- accuracy -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ADAPTIVE)
def test_adaptive_matches_matrix_exponential(method):
    sol, _ = linear_run(method)
    assert sol.ys.shape == (4, 4, 2)
    assert sol.ys.dtype == jnp.float64
    np.testing.assert_allclose(sol.ys, exact(Y0S), rtol=1e-8, atol=1e-8)
    assert np.all(np.asarray(sol.t_reached) == float(TS[-1]))
    assert bool(jnp.all(sol.result == diffrax.RESULTS.successful))


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_fixed_step_convergence_order(method):
    errors = [
        float(jnp.max(jnp.abs(linear_run(method, n)[0].ys - exact(Y0S))))
        for n in (N_STEPS, 2 * N_STEPS)
    ]
    observed = np.log2(errors[0] / errors[1])
    assert abs(observed - METHODS[method].order) < 0.3


@pytest.mark.parametrize("method", FIXED)
def test_fixed_step_outputs_start_at_y0_exactly(method):
    np.testing.assert_array_equal(linear_run(method)[0].ys[:, 0], Y0S)


# --- evaluation counts --------------------------------------------------------------

# (initial, per step attempt), read off diffrax 0.7.2's source: FSAL solvers
# evaluate f(t0, y0) once (in init) and reuse the last stage afterwards;
# PIDController(dt0=None) evaluates nothing (its first step is a fixed 0.01).
NFE = {
    "euler": (0, 1),
    "midpoint": (0, 2),
    "heun": (0, 2),
    "rk4": (0, 4),
    "bosh3": (1, 3),
    "dopri5": (1, 6),
    "tsit5": (1, 6),
    "dopri8": (1, 13),
}


@pytest.mark.parametrize("method", available_methods())
def test_nfe_formula_matches_measured_evaluations(method):
    sol, measured = linear_run(method)
    initial, per_attempt = NFE[method]
    stats = sol.stats
    assert isinstance(stats, SolveStats)
    assert stats.nfe_backward is None
    np.testing.assert_array_equal(stats.n_accepted + stats.n_rejected, stats.n_steps)
    np.testing.assert_array_equal(stats.nfe_forward, initial + per_attempt * stats.n_steps)
    # Under vmap the field runs once per batched evaluation, until the slowest
    # sample is done: the measured count is that sample's count.
    assert measured == int(jnp.max(stats.nfe_forward))
    if not METHODS[method].adaptive:
        np.testing.assert_array_equal(stats.n_steps, 3 * N_STEPS)
        np.testing.assert_array_equal(stats.n_rejected, 0)


def test_rk4_uses_exactly_four_evaluations_per_step():
    sol, measured = linear_run("rk4", 2 * N_STEPS)
    n = 3 * 2 * N_STEPS  # three output intervals
    np.testing.assert_array_equal(sol.stats.n_steps, n)
    assert measured == 4 * n
    np.testing.assert_array_equal(sol.stats.nfe_forward, 4 * n)


def test_dopri5_counts_six_evaluations_per_attempt_plus_one_initial():
    sol, measured = linear_run("dopri5")
    assert bool(jnp.all(sol.stats.n_rejected > 0))  # the formula holds through rejections
    np.testing.assert_array_equal(sol.stats.nfe_forward, 1 + 6 * sol.stats.n_steps)
    assert measured == 1 + 6 * int(jnp.max(sol.stats.n_steps))


# --- parity with torch --------------------------------------------------------------


@pytest.mark.parametrize("method", [*FIXED, "dopri5"])
def test_matches_torch_solve(method):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchdiffeq")
    from sciml_seq.torch import solve as torch_solve

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 2)), rng.normal(size=2)

    class TorchAffine(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = (torch.nn.Parameter(torch.tensor(x)) for x in (a, b))

        def forward(self, t, y):
            return y @ self.a.T + t[:, None] * self.b

    sol, _ = run(method, Affine(jnp.asarray(a), jnp.asarray(b)))
    with torch.no_grad():
        torch_sol = torch_solve(
            TorchAffine(),
            torch.tensor(np.asarray(Y0S)),
            torch.tensor(np.asarray(TS)),
            method=method,
            **{k: v for k, v in options(method).items() if k != "max_steps"},
        )
    ys_t = torch_sol.ys.numpy()
    assert sol.ys.shape == ys_t.shape == (4, 4, 2)
    # fixed grids: the same arithmetic; adaptive: both within tolerance of the truth
    np.testing.assert_allclose(sol.ys, ys_t, rtol=0, atol=1e-12 if method in FIXED else 1e-8)


# --- gradients ----------------------------------------------------------------------


def _loss(field: Affine, y0: jax.Array, method: str, adjoint: str) -> jax.Array:
    ys = solve(field, y0, TS, method=method, adjoint=adjoint, **options(method)).ys
    return jnp.sum(W_OUT * ys)


@functools.cache
def gradients(method: str, adjoint: str) -> tuple[np.ndarray, np.ndarray]:
    """(dL/da, dL/dy0) through the solve of the linear field from Y0."""
    grad = jax.jit(jax.grad(functools.partial(_loss, method=method, adjoint=adjoint), (0, 1)))
    d_field, d_y0 = grad(LINEAR, Y0)
    return np.asarray(d_field.a), np.asarray(d_y0)


def exact_gradients() -> tuple[np.ndarray, np.ndarray]:
    """dL/dA (Frechet derivative of expm) and dL/dy0 of L = sum_k w_k . expm(A t_k) y0."""
    w, y0, ts = np.asarray(W_OUT), np.asarray(Y0), np.asarray(TS)
    d_y0 = sum(scipy.linalg.expm(A * t).T @ w_k for t, w_k in zip(ts, w, strict=True))
    d_a = np.zeros((2, 2))
    for i, j in np.ndindex(2, 2):
        e = np.zeros((2, 2))
        e[i, j] = 1.0
        d_a[i, j] = sum(
            w_k @ scipy.linalg.expm_frechet(A * t, e * t, compute_expm=False) @ y0
            for t, w_k in zip(ts, w, strict=True)
        )
    return d_a, d_y0


def finite_difference_gradients(h: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of the discrete rk4 solve (the batched forward, compiled once)."""

    def losses(a: np.ndarray, y0s: np.ndarray) -> np.ndarray:
        ys = run("rk4", linear(a), jnp.asarray(y0s))[0].ys
        return np.sum(np.asarray(W_OUT) * np.asarray(ys), axis=(1, 2))

    steps = h * np.eye(2)
    y0 = np.asarray(Y0)
    # batch of four: y0 +- h e_0, y0 +- h e_1
    up_down = losses(A, np.stack([y0 + steps[0], y0 - steps[0], y0 + steps[1], y0 - steps[1]]))
    d_y0 = (up_down[0::2] - up_down[1::2]) / (2 * h)
    d_a = np.zeros((2, 2))
    for i, j in np.ndindex(2, 2):
        e = np.zeros((2, 2))
        e[i, j] = h
        d_a[i, j] = (
            losses(A + e, y0s=np.tile(y0, (4, 1)))[0] - losses(A - e, np.tile(y0, (4, 1)))[0]
        ) / (2 * h)
    return d_a, d_y0


@pytest.mark.parametrize("adjoint", ["direct", "checkpoint"])
def test_discrete_gradient_matches_finite_differences(adjoint):
    d_a, d_y0 = gradients("rk4", adjoint)
    fd_a, fd_y0 = finite_difference_gradients()
    np.testing.assert_allclose(d_y0, fd_y0, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(d_a, fd_a, rtol=1e-7, atol=1e-8)
    # and near the continuous gradient (rk4, 7 steps per interval)
    exact_a, exact_y0 = exact_gradients()
    np.testing.assert_allclose(d_y0, exact_y0, rtol=0, atol=1e-3)
    np.testing.assert_allclose(d_a, exact_a, rtol=0, atol=1e-3)


def test_direct_and_checkpoint_gradients_agree():
    for direct, checkpoint in zip(
        gradients("rk4", "direct"), gradients("rk4", "checkpoint"), strict=True
    ):
        np.testing.assert_allclose(direct, checkpoint, rtol=1e-12, atol=1e-13)


def test_backsolve_gradient_matches_closed_form():
    d_a, d_y0 = gradients("dopri5", "backsolve")  # rtol=1e-10 both ways
    exact_a, exact_y0 = exact_gradients()
    np.testing.assert_allclose(d_y0, exact_y0, rtol=0, atol=1e-8)
    np.testing.assert_allclose(d_a, exact_a, rtol=0, atol=1e-8)


def test_backsolve_on_fixed_grid_steps_the_forward_grid_backwards():
    back_a, back_y0 = gradients("rk4", "backsolve")
    disc_a, disc_y0 = gradients("rk4", "checkpoint")
    # For y' = A y, rk4 on the adjoint y' = -A^T a over the same steps is the
    # transpose of the forward map: the y0-gradient is the discrete one exactly.
    np.testing.assert_allclose(back_y0, disc_y0, rtol=1e-12, atol=1e-12)
    # The parameter gradient integrates the adjoint: close, not equal.
    np.testing.assert_allclose(back_a, disc_a, rtol=0, atol=2e-4)


# --- errors -------------------------------------------------------------------------


def test_unknown_method_lists_valid_names():
    with pytest.raises(OptionError, match=r"^method: expected .*'dopri5'.*'tsit5'.*; got 'rk45'$"):
        solve(LINEAR, Y0, TS, method="rk45")


def test_adaptive_method_rejects_step_size():
    with pytest.raises(OptionError, match="adaptive"):
        solve(LINEAR, Y0, TS, method="dopri5", step_size=0.1)


def test_fixed_method_needs_a_step_size():
    with pytest.raises(OptionError, match="exactly one of step_size or n_steps"):
        solve(LINEAR, Y0, TS, method="rk4")


def test_step_size_needs_concrete_times_under_jit():
    with pytest.raises(OptionError, match="pass n_steps"):
        jax.jit(lambda ts: solve(LINEAR, Y0, ts, method="rk4", step_size=0.1).ys)(TS)


def test_unknown_adjoint():
    with pytest.raises(OptionError, match=r"^adjoint: expected .*'backsolve'; got 'adjoint'$"):
        solve(LINEAR, Y0, TS, adjoint="adjoint")


def test_times_must_increase():
    with pytest.raises(OptionError, match="strictly increasing"):
        solve(LINEAR, Y0, jnp.array([0.0, 1.0, 1.0]))


def test_nan_in_times():
    with pytest.raises(NonFiniteError, match="ts must be finite"):
        solve(LINEAR, Y0, jnp.array([0.0, jnp.nan, 1.0]))


def test_nan_in_initial_state():
    with pytest.raises(NonFiniteError, match="y0 contains NaN"):
        solve(LINEAR, jnp.array([1.0, jnp.nan]), TS)


def test_integer_initial_state():
    with pytest.raises(DTypeError, match="y0 must be a floating-point"):
        solve(LINEAR, jnp.array([1, 2]), TS)


def test_float32_times_with_float64_state():
    with pytest.raises(DTypeError, match="ts is float32 but y0 is float64"):
        solve(LINEAR, Y0, TS.astype(jnp.float32))


def test_field_with_wrong_output_shape():
    with pytest.raises(ShapeError, match=r"shape of y \(2,\), got \(3,\)"):
        solve(lambda t, y: jnp.zeros(3), Y0, TS)


def test_field_with_wrong_output_dtype():
    with pytest.raises(DTypeError, match="returned dtype float32 for a state of dtype float64"):
        solve(lambda t, y: y.astype(jnp.float32), Y0, TS)


def test_max_steps_raises_solver_error_with_time_reached():
    fast = linear(np.array([[0.0, 200.0], [-200.0, 0.0]]))
    with pytest.raises(SolverError, match="max_steps=5") as info:
        solve(fast, Y0, TS, max_steps=5)
    assert float(TS[0]) < info.value.t_reached < float(TS[-1])
    assert info.value.n_steps == 5
    sol = solve(fast, Y0, TS, max_steps=5, throw=False)  # the failure as a value
    assert sol.result == diffrax.RESULTS.max_steps_reached
    assert float(sol.t_reached) == info.value.t_reached
    assert bool(jnp.all(jnp.isinf(sol.ys[1:])))  # times not reached


# --- jit and vmap -------------------------------------------------------------------


def test_jit_vmap_solution_and_per_sample_stats():
    sol, _ = linear_run("tsit5")  # jax.jit(jax.vmap(solve)), shared with the tests above
    assert isinstance(sol, Solution)
    assert sol.ys.shape == (4, 4, 2)
    for count in sol.stats.as_dict().values():
        assert count is None or count.shape == (4,)
    assert len(set(np.asarray(sol.stats.n_steps).tolist())) > 1  # each sample steps on its own

    # Failures inside jit are runtime errors raised by the compiled function.
    runtime_error = (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError)
    with pytest.raises(runtime_error, match="y0 contains NaN"):
        jax.block_until_ready(batched("rk4")(LINEAR, Y0S.at[1, 0].set(jnp.nan)).ys)
    stiff = linear(np.array([[-1e6, 0.0], [0.0, -1.0]]))
    with pytest.raises(runtime_error, match="max_steps=5000"):
        jax.block_until_ready(batched("tsit5")(stiff, Y0S).ys)

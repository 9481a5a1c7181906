"""sciml_seq.jax.solve: the native and diffrax engines against closed forms, measured
evaluation counts, each other and diffrax itself, and its errors.

(Parity with the torch engine, number for number: ``tests/test_solve_parity.py``.)
Compiling dominates the run time, so solves go through a few cached
``jit(vmap(solve))`` functions that take the field as an argument: tests with the
same method and options share one compilation, whatever the field's arrays or
the batch of initial states.
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

from sciml_seq.engines import NATIVE_METHODS
from sciml_seq.errors import (
    DTypeError,
    NonFiniteError,
    OptionError,
    ShapeError,
    SolverError,
    UnavailableError,
)
from sciml_seq.jax import Solution, SolveOptions, available_methods, solve
from sciml_seq.methods import METHODS
from sciml_seq.stats import RESULTS, SolveStats, result_name

#: float64 parity with torch / numpy references to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64

A = np.array([[0.0, 1.0], [-4.0, -0.3]])  # damped oscillator
with jax.enable_x64(True):  # float64 whatever the precision at import
    TS = jnp.array([0.0, 0.3, 1.1, 2.0])
    Y0 = jnp.array([0.8, -0.4])
    Y0S = jnp.asarray(np.random.default_rng(0).normal(size=(4, 2)))  # a batch
    W_OUT = jnp.asarray(np.random.default_rng(1).normal(size=(4, 2)))  # loss weights
N_STEPS = 7  # per output interval: 21 steps over TS
TIGHT = dict(rtol=1e-10, atol=1e-12, max_steps=2000)
BOSH3 = dict(rtol=1e-8, atol=1e-8, max_steps=2000)  # third order: fewer steps than TIGHT
RUNTIME_ERRORS = (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError)

ADAPTIVE = [m for m in NATIVE_METHODS if METHODS[m].adaptive]
FIXED = [m for m in NATIVE_METHODS if not METHODS[m].adaptive]

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


def exact(y0: jax.Array, ts=TS) -> np.ndarray:
    """expm(A t) y0 at every t in ts, shape (*batch, n_times, 2)."""
    props = np.stack([scipy.linalg.expm(A * t) for t in np.asarray(ts)])
    return np.einsum("tij,...j->...ti", props, np.asarray(y0))


def options(method: str, n_steps: int = N_STEPS) -> dict:
    if method == "bosh3":
        return BOSH3
    return TIGHT if METHODS[method].adaptive else dict(n_steps=n_steps)


@functools.cache
def batched(method: str, engine: str = "native", n_steps: int = N_STEPS):
    """jit(vmap(solve)) over a batch of initial states: (field, y0s) -> Solution."""
    opts = options(method, n_steps)
    return jax.jit(
        jax.vmap(lambda f, y: solve(f, y, TS, method=method, engine=engine, **opts),
                 in_axes=(None, 0))
    )


def run(method: str, engine="native", field: Affine = LINEAR, y0s=Y0S, n_steps=N_STEPS):
    """(Solution, evaluations measured on the host) of a batched solve."""
    _EVALUATIONS[0] = 0
    sol = batched(method, engine, n_steps)(field, y0s)
    jax.block_until_ready(sol.ys)
    jax.effects_barrier()
    return sol, _EVALUATIONS[0]


@functools.cache
def linear_run(method: str, engine: str = "native", n_steps: int = N_STEPS):
    return run(method, engine, n_steps=n_steps)


def test_available_methods():
    assert available_methods() == NATIVE_METHODS
    assert available_methods("diffrax") == tuple(METHODS)


# --- accuracy -----------------------------------------------------------------------

ACCURACY = [*[("native", m) for m in ADAPTIVE], ("diffrax", "dopri5")]


@pytest.mark.parametrize(("engine", "method"), ACCURACY)
def test_adaptive_matches_matrix_exponential(engine, method):
    sol, _ = linear_run(method, engine)
    assert sol.ys.shape == (4, 4, 2)
    assert sol.ys.dtype == jnp.float64
    allowed = 1e-6 if method == "bosh3" else 1e-8
    np.testing.assert_allclose(sol.ys, exact(Y0S), rtol=0, atol=allowed)
    np.testing.assert_array_equal(sol.t_reached, float(TS[-1]))
    np.testing.assert_array_equal(sol.result, RESULTS.index("successful"))
    assert sol.result.dtype == jnp.int32


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_fixed_step_convergence_order(method):
    errors = [
        float(jnp.max(jnp.abs(linear_run(method, n_steps=n)[0].ys - exact(Y0S))))
        for n in (N_STEPS, 2 * N_STEPS)
    ]
    observed = np.log2(errors[0] / errors[1])
    assert abs(observed - METHODS[method].order) < 0.3


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_fixed_step_outputs_start_at_y0_exactly(method):
    np.testing.assert_array_equal(linear_run(method)[0].ys[:, 0], Y0S)


def test_step_size_grid_hits_every_output_time():
    sol = solve(LINEAR, Y0, TS, method="rk4", step_size=0.05)
    assert int(sol.stats.n_steps) == 40  # intervals 0.3, 0.8, 0.9 -> 6 + 16 + 18 steps
    np.testing.assert_allclose(sol.ys, exact(Y0), rtol=0, atol=1e-5)


# --- evaluation counts --------------------------------------------------------------

# (initial, per attempt): f(t0, y0) and Hairer's first-step probe before the first
# attempt of an adaptive method; the FSAL pairs reuse their last stage.
NFE = {"euler": (0, 1), "midpoint": (0, 2), "heun": (0, 2), "rk4": (0, 4), "bosh3": (2, 3),
       "dopri5": (2, 6), "tsit5": (2, 6)}
COUNTED = [*[("native", m) for m in NATIVE_METHODS], ("diffrax", "dopri5"), ("diffrax", "rk4")]


@pytest.mark.parametrize(("engine", "method"), COUNTED)
def test_nfe_formula_matches_measured_evaluations(engine, method):
    sol, measured = linear_run(method, engine)
    initial, per_attempt = NFE[method]
    stats = sol.stats
    assert isinstance(stats, SolveStats)
    assert stats.nfe_backward is None and stats.nfe_batch is None
    np.testing.assert_array_equal(stats.n_accepted + stats.n_rejected, stats.n_steps)
    np.testing.assert_array_equal(stats.nfe_forward, initial + per_attempt * stats.n_steps)
    # Under vmap the field runs once per batched evaluation, until the slowest
    # sample is done: the measured count is that sample's count.
    assert measured == int(jnp.max(stats.nfe_forward)) == stats.batch_evaluations()
    if not METHODS[method].adaptive:
        np.testing.assert_array_equal(stats.n_steps, 3 * N_STEPS)
        np.testing.assert_array_equal(stats.n_rejected, 0)
    else:
        assert len(set(np.asarray(stats.n_steps).tolist())) > 1  # each example steps alone


def test_rejected_attempts_are_counted():
    fast = linear(np.array([[0.0, 1.0], [-400.0, -1.0]]))  # a large first step is rejected
    sol, measured = run("dopri5", field=fast)
    assert bool(jnp.all(sol.stats.n_rejected > 0))
    np.testing.assert_array_equal(sol.stats.nfe_forward, 2 + 6 * sol.stats.n_steps)
    assert measured == 2 + 6 * int(jnp.max(sol.stats.n_steps))


def test_diffrax_engine_takes_the_native_engines_steps():
    """Same first step (the native heuristic), same controller: same counts, same numbers."""
    native, diffrax_sol = linear_run("dopri5"), linear_run("dopri5", "diffrax")
    for name in ("nfe_forward", "n_steps", "n_accepted", "n_rejected"):
        np.testing.assert_array_equal(
            getattr(native[0].stats, name), getattr(diffrax_sol[0].stats, name)
        )
    np.testing.assert_allclose(native[0].ys, diffrax_sol[0].ys, rtol=0, atol=1e-12)


@pytest.mark.slow  # one more diffrax compile
def test_diffrax_engine_honours_every_controller_setting_as_the_native_engine():
    controller = dict(rtol=1e-6, atol=1e-8, pcoeff=0.2, icoeff=0.4, dt0=0.05, dtmin=1e-3,
                      dtmax=0.1, factormin=0.3, factormax=4.0, safety=0.8)
    out = {
        engine: jax.jit(jax.vmap(lambda y, engine=engine: solve(
            LINEAR, y, TS, engine=engine, **controller)))(Y0S)
        for engine in ("native", "diffrax")
    }
    for name in ("nfe_forward", "n_steps", "n_accepted", "n_rejected"):
        np.testing.assert_array_equal(getattr(out["native"].stats, name),
                                      getattr(out["diffrax"].stats, name))
    np.testing.assert_array_equal(out["native"].stats.nfe_forward,
                                  1 + 6 * out["native"].stats.n_steps)  # dt0: no probe
    assert int(jnp.min(out["native"].stats.n_steps)) >= 20  # dtmax = 0.1 over [0, 2]
    np.testing.assert_allclose(out["native"].ys, out["diffrax"].ys, rtol=0, atol=1e-12)


class Pendulum(eqx.Module):
    """A damped pendulum; each example has its own damping (and takes its own steps)."""

    damping: jax.Array

    def __call__(self, t, y):
        return jnp.stack([y[1], -jnp.sin(y[0]) - self.damping * y[1]])


@pytest.mark.slow  # a diffrax compile per method (the diffrax engine's fast check is above)
@pytest.mark.parametrize("method", ["dopri5", "tsit5"])
def test_native_and_diffrax_take_the_same_steps(method):
    """The native engine against diffrax itself, per example: the same attempts, accepted
    step times and outputs to 1e-10 in float64 with integral control at rtol = atol =
    1e-3.  A step-size controller feeds rounding back: the embedded error estimate is a
    difference of two solutions that agree to about the tolerance, so in float64 it is
    only accurate to ~eps * |k| / |err| (about 1e-6 relative at tight tolerances) and any
    two correct implementations that sum the stages in a different order (diffrax and
    ours do) drift apart, ~1e-8 in the step times at tight tolerances.  (At rtol=1e-3,
    atol=1e-5 tsit5's step times already differ by up to ~4e-10, the outputs by 1e-11.)
    diffrax 0.7.2 skips its initial-step heuristic for the terms it wraps: it gets the
    first step the native engine chose."""
    ts = jnp.array([0.0, 0.37, 1.1, 2.0, 3.0])
    damping = jnp.array([0.1, 0.5, 2.0])
    y0s = jnp.array([[2.0, 0.0], [1.0, 0.5], [-2.5, 1.0]])
    tol = dict(rtol=1e-3, atol=1e-3)
    native = eqx.filter_jit(jax.vmap(
        lambda c, y: solve(Pendulum(c), y, ts, method=method, max_steps=64, record_steps=True,
                           **tol)
    ))(damping, y0s)
    cls = {"dopri5": diffrax.Dopri5, "tsit5": diffrax.Tsit5}[method]

    @jax.jit
    def reference(c, y0, dt0):
        saveat = diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(steps=True)])
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, c: Pendulum(c)(t, y)), cls(), t0=ts[0], t1=ts[-1],
            dt0=dt0, y0=y0, args=c, saveat=saveat,
            stepsize_controller=diffrax.PIDController(**tol), max_steps=64,
        )
        return sol.ys[0], sol.ts[1], sol.stats["num_steps"]

    for b in range(3):
        rec = jax.tree.map(lambda x, b=b: np.asarray(x[b]), native.steps)
        ys, step_ends, attempts = reference(damping[b], y0s[b], rec.dt[0])
        ends = (rec.t + rec.dt)[rec.accepted]
        step_ends = np.asarray(step_ends)[np.isfinite(step_ends)]
        assert int(attempts) == int(native.stats.n_steps[b]) == int(rec.attempted.sum())
        np.testing.assert_allclose(ends, step_ends, rtol=0, atol=1e-10)
        np.testing.assert_allclose(native.ys[b], ys, rtol=0, atol=1e-10)


# --- records -------------------------------------------------------------------------


def test_step_records_are_buffers_of_attempts():
    sol = jax.jit(jax.vmap(
        lambda f, y: solve(f, y, TS, rtol=1e-3, atol=1e-5, max_steps=64, record_steps=True),
        in_axes=(None, 0),
    ))(LINEAR, Y0S)
    rec, stats = sol.steps, sol.stats
    assert rec.t.shape == rec.dt.shape == rec.error_ratio.shape == rec.stiffness.shape == (4, 64)
    np.testing.assert_array_equal(rec.attempted.sum(1), stats.n_steps)
    np.testing.assert_array_equal(rec.accepted.sum(1), stats.n_accepted)
    np.testing.assert_array_equal(rec.accepted, (rec.error_ratio < 1) & rec.attempted)
    for b in range(4):
        n = int(stats.n_steps[b])
        assert np.all(rec.attempted[b, :n]) and not np.any(rec.attempted[b, n:])
        for field in (rec.t, rec.dt, rec.error_ratio, rec.stiffness):
            assert not np.any(field[b, n:])  # zeros where nothing was attempted
        acc = np.asarray(rec.accepted[b])
        starts, ends = np.asarray(rec.t[b])[acc], np.asarray(rec.t[b] + rec.dt[b])[acc]
        assert starts[0] == 0.0 and ends[-1] == 2.0
        # an attempt starts where the last accepted one ended (t + dt rounds: 1 ulp)
        np.testing.assert_allclose(starts[1:], ends[:-1], rtol=3e-16, atol=0)


def test_stiffness_of_a_linear_decay_is_its_rate():
    """For y' = -lambda y every stage derivative is -lambda times its input."""
    rates = jnp.array([0.5, 7.0, 300.0])
    ones = jnp.ones((3, 4))

    def one(rate, y0):
        return solve(lambda t, y: -rate * y, y0, jnp.array([0.0, 1.0]), method="tsit5",
                     record_steps=True, max_steps=256).steps

    rec = jax.jit(jax.vmap(one))(rates, ones)
    for b in range(3):
        seen = np.asarray(rec.attempted[b])
        np.testing.assert_allclose(rec.stiffness[b][seen], float(rates[b]), rtol=1e-9)


class Decay(eqx.Module):
    """y' = -rate y + sin(t)."""

    rate: jax.Array

    def __call__(self, t, y):
        return -self.rate * y + jnp.sin(t)


@jax.jit
def first_ratio(rate: jax.Array) -> jax.Array:
    # the first attempts only: a short loop compiles fast (the unfinished solve is fine)
    rec = solve(Decay(rate), Y0, TS, method="dopri5", rtol=1e-5, atol=1e-7, dt0=0.05,
                record_steps=True, max_steps=4, adjoint="direct", throw=False).steps
    return rec.error_ratio[0]


def test_records_carry_the_gradient_of_the_solve():
    """With dt0 given, the first attempt depends on the rate only through its stages: the
    gradient of its error ratio matches central finite differences."""
    rate = jnp.asarray(3.0)
    grad = jax.jit(jax.grad(first_ratio))(rate)
    fd = (first_ratio(rate + 1e-3) - first_ratio(rate - 1e-3)) / 2e-3
    assert float(grad) != 0.0
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_fixed_step_records_are_the_grid():
    sol = solve(LINEAR, Y0, TS, method="heun", n_steps=2, record_steps=True)
    rec = sol.steps
    np.testing.assert_allclose(rec.t, [0.0, 0.15, 0.3, 0.7, 1.1, 1.55], rtol=1e-15)
    np.testing.assert_allclose(rec.dt, [0.15, 0.15, 0.4, 0.4, 0.45, 0.45], rtol=1e-14)
    assert rec.error_ratio is None and rec.stiffness is None
    assert np.all(rec.accepted) and np.all(rec.attempted)


# --- directions and shortcuts ----------------------------------------------------------


@functools.cache
def by_times(method: str):
    """jit(vmap(solve)) with the times an argument: the direction is read at run time."""
    return jax.jit(jax.vmap(
        lambda f, y, ts: solve(f, y, ts, method=method, record_steps=True, **options(method)),
        in_axes=(None, 0, None),
    ))


@pytest.mark.parametrize(("method", "allowed"), [("rk4", 1e-3), ("dopri5", 1e-7)])
def test_decreasing_times_integrate_backwards_under_jit(method, allowed):
    forward = exact(Y0S)
    back = by_times(method)(LINEAR, jnp.asarray(forward[:, -1]), TS[::-1])
    np.testing.assert_allclose(back.ys, forward[:, ::-1], rtol=0, atol=allowed)
    np.testing.assert_allclose(back.t_reached, 0.0, atol=1e-15)
    attempted = np.asarray(back.steps.attempted)
    assert np.all(np.asarray(back.steps.dt)[attempted] < 0)  # records in the user's time
    assert np.all(np.asarray(back.steps.t)[attempted] > 0)
    ahead = by_times(method)(LINEAR, Y0S, TS)  # the same compiled solve, forwards
    np.testing.assert_allclose(ahead.ys, forward, rtol=0, atol=allowed)


def test_a_single_output_time_returns_the_initial_state():
    _EVALUATIONS[0] = 0
    sol = solve(LINEAR, Y0, jnp.array([0.7]))
    jax.effects_barrier()
    np.testing.assert_array_equal(sol.ys, Y0[None])
    assert int(sol.stats.nfe_forward) == int(sol.stats.n_steps) == 0
    assert _EVALUATIONS[0] == 0


def test_solver_value_and_keywords_build_the_same_options():
    opts = SolveOptions(method="rk4", n_steps=3)
    np.testing.assert_array_equal(solve(LINEAR, Y0, TS, solver=opts).ys,
                                  solve(LINEAR, Y0, TS, method="rk4", n_steps=3).ys)
    with pytest.raises(OptionError, match="^solver: got solver=SolveOptions"):
        solve(LINEAR, Y0, TS, solver=opts, rtol=1e-3)
    with pytest.raises(OptionError, match="^rtoll: not a solver option"):
        solve(LINEAR, Y0, TS, rtoll=1e-3)


# --- gradients ----------------------------------------------------------------------


def _loss(field: Affine, y0: jax.Array, method: str, adjoint: str, engine: str) -> jax.Array:
    ys = solve(field, y0, TS, method=method, adjoint=adjoint, engine=engine,
               **options(method)).ys
    return jnp.sum(W_OUT * ys)


@functools.cache
def gradients(method: str, adjoint: str, engine: str = "native") -> tuple[np.ndarray, ...]:
    """(dL/da, dL/dy0) through the solve of the linear field from Y0."""
    loss = functools.partial(_loss, method=method, adjoint=adjoint, engine=engine)
    d_field, d_y0 = jax.jit(jax.grad(loss, (0, 1)))(LINEAR, Y0)
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
        ys = run("rk4", field=linear(a), y0s=jnp.asarray(y0s))[0].ys
        return np.sum(np.asarray(W_OUT) * np.asarray(ys), axis=(1, 2))

    steps = h * np.eye(2)
    y0 = np.asarray(Y0)
    up_down = losses(A, np.stack([y0 + steps[0], y0 - steps[0], y0 + steps[1], y0 - steps[1]]))
    d_y0 = (up_down[0::2] - up_down[1::2]) / (2 * h)
    d_a = np.zeros((2, 2))
    for i, j in np.ndindex(2, 2):
        e = np.zeros((2, 2))
        e[i, j] = h
        d_a[i, j] = (
            losses(A + e, np.tile(y0, (4, 1)))[0] - losses(A - e, np.tile(y0, (4, 1)))[0]
        ) / (2 * h)
    return d_a, d_y0


@pytest.mark.parametrize("adjoint", ["direct", "checkpoint"])
def test_discrete_gradient_matches_finite_differences(adjoint):
    d_a, d_y0 = gradients("rk4", adjoint)
    fd_a, fd_y0 = finite_difference_gradients()
    np.testing.assert_allclose(d_y0, fd_y0, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(d_a, fd_a, rtol=1e-7, atol=1e-8)
    exact_a, exact_y0 = exact_gradients()  # and near the continuous gradient
    np.testing.assert_allclose(d_y0, exact_y0, rtol=0, atol=1e-3)
    np.testing.assert_allclose(d_a, exact_a, rtol=0, atol=1e-3)


@pytest.mark.slow  # two adaptive gradient compiles
def test_adaptive_direct_and_checkpoint_gradients_agree_and_are_exact():
    exact_a, exact_y0 = exact_gradients()
    direct, checkpoint = gradients("dopri5", "direct"), gradients("dopri5", "checkpoint")
    for d, c in zip(direct, checkpoint, strict=True):
        np.testing.assert_allclose(d, c, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(direct[0], exact_a, rtol=0, atol=1e-8)
    np.testing.assert_allclose(direct[1], exact_y0, rtol=0, atol=1e-8)


@pytest.mark.slow  # an adaptive gradient compile
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


@pytest.mark.slow  # three diffrax gradient compiles
@pytest.mark.parametrize("adjoint", ["checkpoint", "direct", "backsolve"])
def test_diffrax_engine_gradients_equal_the_native_ones(adjoint):
    tol = 1e-7 if adjoint == "backsolve" else 1e-12
    for native, theirs in zip(gradients("dopri5", adjoint),
                              gradients("dopri5", adjoint, "diffrax"), strict=True):
        np.testing.assert_allclose(theirs, native, rtol=0, atol=tol)


# --- failures -----------------------------------------------------------------------

FAST = linear(np.array([[0.0, 200.0], [-200.0, 0.0]]))


def test_max_steps_raises_solver_error_with_time_reached():
    with pytest.raises(SolverError, match="max_steps=5") as info:
        solve(FAST, Y0, TS, max_steps=5)
    assert float(TS[0]) < info.value.t_reached < float(TS[-1])
    assert info.value.n_steps == 5
    sol = solve(FAST, Y0, TS, max_steps=5, throw=False)  # the failure as a value
    assert result_name(sol.result) == "max_steps_reached"
    assert float(sol.t_reached) == info.value.t_reached
    assert bool(jnp.all(jnp.isinf(sol.ys[1:])))  # times not reached
    np.testing.assert_array_equal(sol.ys[0], Y0)


def test_finite_time_blow_up_stops_with_dt_min_reached():
    """y' = y^2 blows up at t = 1: the step cannot shrink below the spacing of t."""
    sol = solve(lambda t, y: y**2, jnp.ones(1), jnp.array([0.0, 2.0]), max_steps=100_000,
                throw=False)
    assert result_name(sol.result) in ("dt_min_reached", "nonfinite")
    assert int(sol.stats.n_steps) < 2000
    assert float(sol.t_reached) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(SolverError, match="underflow|NaN"):
        solve(lambda t, y: y**2, jnp.ones(1), jnp.array([0.0, 2.0]), max_steps=100_000)


def test_fixed_step_blow_up_names_the_step():
    blow_up = functools.partial(solve, lambda t, y: y**2, jnp.ones(1), jnp.array([0.0, 2.0]),
                                method="rk4", n_steps=20)
    with pytest.raises(SolverError, match=r"^step \d+ of 20 \(from t=.* to t=.*\) .*NaN or inf"):
        blow_up()
    sol = blow_up(throw=False)
    assert result_name(sol.result) == "nonfinite"
    assert 0.9 < float(sol.t_reached) <= 1.3


def test_failures_inside_jit_are_runtime_errors():
    with pytest.raises(RUNTIME_ERRORS, match="y0: expected finite values"):
        jax.block_until_ready(batched("rk4")(LINEAR, Y0S.at[1, 0].set(jnp.nan)).ys)
    stiff = linear(np.array([[-1e6, 0.0], [0.0, -1.0]]))
    with pytest.raises(RUNTIME_ERRORS, match="max_steps=2000"):
        jax.block_until_ready(batched("tsit5")(stiff, Y0S).ys)
    with pytest.raises(RUNTIME_ERRORS, match="a step produced NaN or inf"):
        jax.block_until_ready(
            jax.jit(lambda y: solve(lambda t, y: y**2, y, jnp.array([0.0, 2.0]), method="rk4",
                                    n_steps=20).ys)(jnp.ones(1))
        )


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "error", "match"),
    [
        ([0.0, 1.0, 1.0], OptionError, "strictly increasing or strictly decreasing"),
        ([0.0, 2.0, 1.0], OptionError, "strictly increasing or strictly decreasing"),
        ([0.0, float("nan")], NonFiniteError, "^ts: expected finite"),
        ([0.0, float("inf")], NonFiniteError, "^ts: expected finite"),
        ([], ShapeError, "at least 1"),
    ],
)
def test_bad_time_points(ts, error, match):
    with pytest.raises(error, match=match):
        solve(LINEAR, Y0, jnp.array(ts, dtype=jnp.float64))


def test_bad_time_points_under_jit_are_runtime_errors():
    with pytest.raises(RUNTIME_ERRORS, match="ts: expected finite, strictly increasing or"):
        jax.block_until_ready(by_times("rk4")(LINEAR, Y0S, jnp.array([0.0, 2.0, 1.0, 3.0])).ys)


def test_step_size_needs_concrete_times_under_jit():
    with pytest.raises(OptionError, match="pass n_steps"):
        jax.jit(lambda ts: solve(LINEAR, Y0, ts, method="rk4", step_size=0.1).ys)(TS)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_initial_state(bad):
    with pytest.raises(NonFiniteError, match="^y0: expected finite values"):
        solve(LINEAR, Y0.at[1].set(bad), TS)


def test_bad_initial_state():
    with pytest.raises(DTypeError, match="^y0: expected a floating-point array; got dtype int"):
        solve(LINEAR, jnp.array([1, 2]), TS)
    with pytest.raises(ShapeError, match=r"^y0: expected an array of shape \(\*state\)"):
        solve(lambda t, y: -y, jnp.asarray(1.0), TS)
    with pytest.raises(ShapeError, match=r"one entry; got shape \(0,\)$"):
        solve(lambda t, y: -y, jnp.zeros(0), TS)


def test_float32_times_with_float64_state():
    with pytest.raises(DTypeError, match="ts is float32 but y0 is float64"):
        solve(LINEAR, Y0, TS.astype(jnp.float32))


def test_field_with_wrong_output_shape_or_dtype():
    with pytest.raises(ShapeError, match=r"^field\(t, y\): expected .* of y \(2,\); got \(3,"):
        solve(lambda t, y: jnp.zeros(3), Y0, TS)
    with pytest.raises(DTypeError, match="returned dtype float32 for a state of dtype float64"):
        solve(lambda t, y: y.astype(jnp.float32), Y0, TS)


def test_unknown_engine_and_engine_support():
    with pytest.raises(OptionError, match=r"^engine: expected one of .* in JAX; got 'torchode'"):
        solve(LINEAR, Y0, TS, engine="torchode")
    with pytest.raises(OptionError, match=r"^record_steps: engine='diffrax' reports no step"):
        solve(LINEAR, Y0, TS, engine="diffrax", record_steps=True)
    with pytest.raises(OptionError, match=r"^adjoint: expected one of .*; got 'adjoint'$"):
        solve(LINEAR, Y0, TS, adjoint="adjoint")


def test_engine_that_is_not_installed_says_how_to_get_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "diffrax" else real(name)
    )
    with pytest.raises(UnavailableError, match="pip install diffrax"):
        solve(LINEAR, Y0, TS, engine="diffrax")


def test_solution_is_a_pytree_with_integer_outcome():
    sol = linear_run("rk4")[0]
    assert isinstance(sol, Solution)
    leaves = jax.tree.leaves(sol)
    assert all(isinstance(x, jax.Array) for x in leaves)
    assert sol.result.shape == (4,) and jnp.issubdtype(sol.result.dtype, jnp.integer)

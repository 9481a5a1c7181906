"""The SciPy host engine on numpy fields (no framework): SolveOptions reach SciPy exactly as
solve_ivp's arguments do, the continuous adjoint against closed forms on a field without a
Jacobian (explicit and implicit methods), honest counts, step times, failures and input
errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg

from sciml_seq.errors import NonFiniteError, OptionError, ShapeError, SolverError
from sciml_seq.host import HostField, MLPFieldSpec, get_backend
from sciml_seq.host.scipy_backend import ScipyBackend
from sciml_seq.solver import SolveOptions

TS = np.array([0.0, 0.4, 1.0])
TIGHT = dict(rtol=1e-11, atol=1e-13)


class LinearField:
    """``f(t, y) = y A^T`` with ``p = A.ravel()``; no Jacobian (as a callback field); counts."""

    jacobian = None

    def __init__(self, features: int) -> None:
        self.features, self.n_params = features, features * features
        self.evaluations = self.vjps = 0

    def f(self, t, y, p):
        self.evaluations += 1
        return y @ p.reshape(self.features, self.features).T

    def vjp(self, t, y, p, a):
        self.vjps += 1
        matrix = p.reshape(self.features, self.features)
        return y @ matrix.T, a @ matrix, (a.T @ y).reshape(-1)


def matrix(stiff: bool = False) -> np.ndarray:
    if stiff:  # eigenvalues -1e3 and -1
        return np.array([[-1e3, 1.0], [0.0, -1.0]])
    return np.array([[-0.5, 1.2], [-0.9, -0.3]])


def closed_form(a: np.ndarray, y0: np.ndarray, ts: np.ndarray, w: np.ndarray):
    """``ys``, and the gradients of ``sum(w * ys)`` w.r.t. ``y0`` and ``A`` (expm, Frechet)."""
    ys = np.stack([y0 @ scipy.linalg.expm(a * t).T for t in ts], axis=1)
    grad_y0 = sum(w[:, k] @ scipy.linalg.expm(a * t) for k, t in enumerate(ts))
    grad_a = np.zeros_like(a)
    for i, j in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[i, j] = 1.0
        for k, t in enumerate(ts):
            d = scipy.linalg.expm_frechet(a * t, e * t, compute_expm=False)
            grad_a[i, j] += np.sum(w[:, k] * (y0 @ d.T))
    return ys, grad_y0, grad_a


def options(method: str = "DOP853", **kw) -> SolveOptions:
    return SolveOptions(engine="scipy", method=method, **{**TIGHT, **kw})


Y0 = np.array([[0.3, -0.2], [0.1, 0.5], [-0.4, 0.2]])
W = np.random.default_rng(1).normal(size=(3, 3, 2))


@pytest.mark.parametrize(
    ("method", "adjoint", "stiff"),
    [
        ("DOP853", "interpolating", False),
        ("dopri5", "backsolve", False),
        ("Radau", "interpolating", True),
        ("BDF", "interpolating", True),
        ("LSODA", "backsolve", False),  # backsolve re-solves the state backwards: not stiff
    ],
)
def test_a_field_without_jacobian_against_the_closed_form(method, adjoint, stiff) -> None:
    a = matrix(stiff)
    field = LinearField(2)
    assert isinstance(field, HostField)
    backend = get_backend("scipy")
    tol = dict(rtol=1e-10, atol=1e-12) if stiff else TIGHT
    opts = SolveOptions(engine="scipy", method=method, adjoint=adjoint, **tol)
    sol = backend.forward(field, Y0, a.ravel(), TS, opts)
    ys, grad_y0, grad_a = closed_form(a, Y0, TS, W)
    np.testing.assert_allclose(sol.ys, ys, rtol=0, atol=1e-8)
    # Honest counts: every evaluation of the field (a VJP evaluates it too) is counted.
    assert sol.stats.nfe_forward == field.evaluations + field.vjps > 0
    assert (field.vjps > 0) == (method in ("Radau", "BDF"))  # Jacobians from VJPs
    # (LSODA starts non-stiff and stays so here: no Jacobian.)
    vjps_before = field.vjps
    g_y0, g_p, back = backend.backward(sol.handle, W)
    assert back.nfe_backward == field.vjps - vjps_before > 0
    np.testing.assert_allclose(g_y0, grad_y0, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g_p.reshape(2, 2), grad_a, rtol=1e-6, atol=1e-8)


def _solve_ivp_reference(spec: MLPFieldSpec, p: np.ndarray, **kw) -> scipy.integrate.OdeResult:
    """scipy.integrate.solve_ivp on the same stacked system, called directly."""
    batch, features = Y0.shape

    def fun(t: float, y: np.ndarray) -> np.ndarray:
        return spec.f(t, y.reshape(batch, features), p).reshape(-1)

    return scipy.integrate.solve_ivp(fun, (TS[0], TS[-1]), Y0.reshape(-1), dense_output=True, **kw)


@pytest.mark.parametrize(
    ("method", "ours", "theirs"),
    [
        ("RK45", {"dtmax": 0.01}, {"max_step": 0.01}),
        ("dopri8", {"dt0": 1e-4}, {"first_step": 1e-4}),
        ("LSODA", {"dtmax": 0.02}, {"max_step": 0.02}),
        ("bosh3", {}, {}),
    ],
)
def test_options_reach_scipy_as_solve_ivp_arguments(method, ours, theirs) -> None:
    """dt0/dtmax change the solve exactly as first_step/max_step change solve_ivp's."""
    spec = MLPFieldSpec(2, 3, 1, time_conditioning="concat+film")
    p = np.random.default_rng(0).normal(size=spec.n_params)
    tol = dict(rtol=1e-6, atol=1e-8)
    sol = get_backend("scipy").forward(spec, Y0, p, TS, options(method, **tol, **ours))
    scipy_name = {"dopri8": "DOP853", "bosh3": "RK23"}.get(method, method)
    ref = _solve_ivp_reference(spec, p, method=scipy_name, **theirs, **tol)
    assert (sol.stats.nfe_forward, sol.stats.n_accepted) == (ref.nfev, len(ref.t) - 1)
    np.testing.assert_array_equal(sol.step_times, ref.t)
    if theirs:  # the option mattered
        default = _solve_ivp_reference(spec, p, method=scipy_name, **tol)
        assert (ref.nfev, len(ref.t)) != (default.nfev, len(default.t))
    expected = ref.sol(TS).T.reshape(len(TS), 3, 2).transpose(1, 0, 2)
    expected[:, 0] = Y0
    np.testing.assert_allclose(sol.ys, expected, rtol=0, atol=1e-12)


def test_dtmax_reaches_the_adjoint_solves_and_dt0_fits_short_intervals() -> None:
    a, field, backend = matrix(), LinearField(2), get_backend("scipy")
    ts = np.array([0.0, 0.05, 1.0])  # the first interval is shorter than dt0
    results = []
    for extra in ({}, {"dtmax": 0.01}, {"dt0": 0.1}):
        sol = backend.forward(field, Y0, a.ravel(), ts, options(**extra))
        results.append((sol, *backend.backward(sol.handle, W)))
    (ref, ry, rp, rs), (capped, cy, cp, cs), (started, sy, sp, _) = results
    # Every backward step is at most 0.01 long: >= 100 steps of DOP853.
    assert cs.n_accepted >= 100 > rs.n_accepted
    assert capped.stats.n_accepted >= 100 > ref.stats.n_accepted
    # dt0 is the forward solve's first step; the adjoint over [0.05, 0] cut it to fit
    # (SciPy refuses a first step longer than the interval).
    assert started.step_times[1] - started.step_times[0] == pytest.approx(0.1)
    for got in (cy, sy):
        np.testing.assert_allclose(got, ry, rtol=1e-8, atol=1e-10)
    for got in (cp, sp):
        np.testing.assert_allclose(got, rp, rtol=1e-8, atol=1e-10)


def test_step_times_follow_the_direction_of_ts() -> None:
    spec = MLPFieldSpec(2, 3, 1)
    p = np.random.default_rng(0).normal(size=spec.n_params)
    backend = get_backend("scipy")
    forward = backend.forward(spec, Y0, p, TS, options("RK45", rtol=1e-6, atol=1e-8))
    backward = backend.forward(spec, Y0, p, TS[::-1], options("RK45", rtol=1e-6, atol=1e-8))
    for sol, ts in ((forward, TS), (backward, TS[::-1])):
        times = sol.step_times
        assert times.shape == (sol.stats.n_accepted + 1,)
        assert times[0] == ts[0] and times[-1] == ts[-1]
        assert np.all(np.sign(np.diff(times)) == np.sign(ts[-1] - ts[0]))
    # Integrating back from the forward end state returns to the start.
    there = backend.forward(spec, Y0, p, TS, options())
    back_again = backend.forward(spec, there.ys[:, -1], p, TS[::-1], options())
    np.testing.assert_allclose(back_again.ys[:, -1], Y0, rtol=0, atol=1e-9)


def test_max_steps_and_failures_raise_solver_error() -> None:
    field, a = LinearField(2), matrix(stiff=True)
    with pytest.raises(SolverError, match="max_steps=20") as info:
        get_backend("scipy").forward(
            field, Y0, a.ravel(), np.array([0.0, 1.0]), options("RK45", max_steps=20)
        )
    assert info.value.n_steps == 20 and 0 < info.value.t_reached < 1.0
    assert info.value.reason == "max_steps"


def test_input_and_option_errors() -> None:
    field, p, backend = LinearField(2), matrix().ravel(), ScipyBackend()
    with pytest.raises(OptionError, match=r"^options: expected .*engine='scipy'; got 'native'$"):
        backend.forward(field, Y0, p, TS, SolveOptions())
    with pytest.raises(OptionError, match=r"^options: expected .*engine='scipy'; got 'julia'$"):
        ScipyBackend.check_field(field, SolveOptions(engine="julia", method="tsit5"))
    with pytest.raises(ShapeError, match=r"^y0: expected shape \(batch, 2\); got \(3, 3\)$"):
        backend.forward(field, np.zeros((3, 3)), p, TS, options())
    with pytest.raises(ShapeError, match=r"^p: expected shape \(4,\); got \(3,\)$"):
        backend.forward(field, Y0, p[:3], TS, options())
    with pytest.raises(ShapeError, match=r"^ts: expected at least 2 times"):
        backend.forward(field, Y0, p, TS[:1], options())
    with pytest.raises(NonFiniteError, match=r"^y0, p: expected finite values"):
        backend.forward(field, Y0 * np.nan, p, TS, options())
    with pytest.raises(OptionError, match=r"^ts: expected strictly increasing or"):
        backend.forward(field, Y0, p, np.array([0.0, 1.0, 0.5]), options())
    sol = backend.forward(field, Y0, p, TS, options(), differentiable=False)
    assert sol.handle is None
    with pytest.raises(ShapeError, match=r"^grad_ys: expected shape \(3, 3, 2\); got"):
        backend.backward(backend.forward(field, Y0, p, TS, options()).handle, W[:2])
    with pytest.raises(OptionError, match=r"^engine: expected one of 'scipy', 'julia'; got"):
        get_backend("native")

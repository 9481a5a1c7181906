"""sciml_seq.torch.solve over every engine: closed forms, orders, honest counts, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from sciml_seq.errors import (
    DTypeError,
    NonFiniteError,
    OptionError,
    ShapeError,
    SolverError,
    UnavailableError,
)
from sciml_seq.methods import METHODS
from sciml_seq.solver import SolveOptions
from sciml_seq.stats import RESULTS
from sciml_seq.torch import available_methods, solve

pytestmark = pytest.mark.usefixtures("one_torch_thread")

A = np.array([[0.0, 1.0], [-4.0, -0.3]])  # damped oscillator


class Linear(nn.Module):
    """f(t, y) = y A^T, with A a parameter; counts its calls."""

    def __init__(self, a: np.ndarray = A) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))
        self.calls = 0

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return y @ self.a.T


def exact(y0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """expm(A t) y0 for every t, shape (batch, n_times, 2)."""
    sols = [y0.numpy() @ scipy.linalg.expm(A * float(t)).T for t in ts]
    return torch.tensor(np.stack(sols, axis=1))


@pytest.fixture
def problem():
    gen = torch.Generator().manual_seed(0)
    y0 = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.3, 1.1, 2.0], dtype=torch.float64)
    return Linear(), y0, ts


ENGINE_METHODS = [
    (engine, method)
    for engine in ("native", "torchdiffeq", "torchode")
    for method in available_methods(engine)
]


@pytest.mark.parametrize(
    ("engine", "method"), [p for p in ENGINE_METHODS if METHODS[p[1]].adaptive]
)
def test_adaptive_matches_matrix_exponential(problem, engine, method):
    field, y0, ts = problem
    # bosh3 is third order: a looser tolerance keeps its step count small
    tol, allowed = (1e-8, 1e-6) if method == "bosh3" else (1e-10, 1e-7)
    if engine == "torchdiffeq" and method in ("bosh3", "dopri8"):
        allowed *= 100  # ~50-100x less accurate than the same tolerances elsewhere (upstream)
    sol = solve(field, y0, ts, method=method, rtol=tol, atol=tol, engine=engine,
                max_steps=100_000)
    assert sol.ys.shape == (3, 4, 2)
    torch.testing.assert_close(sol.ys, exact(y0, ts), rtol=0, atol=allowed)
    assert sol.result.tolist() == [0, 0, 0]


def test_native_bosh3_is_more_accurate_than_torchdiffeqs(problem):
    """Same tolerances, about the same steps, 50x smaller error (the dense output differs)."""
    field, y0, ts = problem
    errors = {
        engine: float((solve(field, y0, ts, method="bosh3", rtol=1e-6, atol=1e-6,
                             engine=engine).ys.detach() - exact(y0, ts)).abs().max())
        for engine in ("native", "torchdiffeq")
    }
    assert errors["native"] * 10 < errors["torchdiffeq"]


@pytest.mark.parametrize("method", ["bosh3", "dopri5", "tsit5"])
def test_native_adaptive_error_follows_the_tolerance(problem, method):
    """Ten times tighter tolerances give a smaller error (the controller works)."""
    field, y0, ts = problem
    errors = [
        float((solve(field, y0, ts, method=method, rtol=tol, atol=tol).ys.detach() - exact(y0, ts))
              .abs().max())
        for tol in (1e-4, 1e-6, 1e-8)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-6


@pytest.mark.parametrize(("engine", "method"),
                         [p for p in ENGINE_METHODS if not METHODS[p[1]].adaptive])
def test_fixed_step_convergence_order(problem, engine, method):
    field, y0, ts = problem
    errors = [
        (solve(field, y0, ts, method=method, n_steps=n, engine=engine).ys - exact(y0, ts))
        .abs().max().item()
        for n in (40, 80)
    ]
    observed = np.log2(errors[0] / errors[1])
    assert abs(observed - METHODS[method].order) < 0.1


@pytest.mark.parametrize("engine", ["native", "torchdiffeq"])
def test_step_size_grid_hits_every_output_time(problem, engine):
    field, y0, ts = problem
    by_size = solve(field, y0, ts, method="rk4", step_size=0.05, engine=engine)
    # intervals of length 0.3, 0.8, 0.9 -> 6 + 16 + 18 steps
    assert by_size.stats.n_steps.tolist() == [40] * 3
    torch.testing.assert_close(by_size.ys, exact(y0, ts), rtol=0, atol=1e-5)


@pytest.mark.parametrize("engine", ["native", "torchdiffeq"])
def test_fixed_counts_are_exact_and_per_sample(problem, engine):
    field, y0, _ = problem
    for n in (1, 7):
        field.calls = 0
        sol = solve(field, y0, torch.tensor([0.0, 1.5], dtype=torch.float64), method="rk4",
                    n_steps=n, engine=engine)
        stats = sol.stats
        assert stats.nfe_batch == field.calls == 4 * n
        assert stats.nfe_forward.tolist() == [4 * n] * 3
        assert stats.n_steps.tolist() == stats.n_accepted.tolist() == [n] * 3
        assert stats.n_rejected.tolist() == [0] * 3
        assert stats.nfe_backward == 0


@pytest.mark.parametrize("engine", ["native", "torchdiffeq", "torchode"])
def test_nfe_equals_a_call_counter(engine):
    """nfe_batch counts the field's calls; per-sample nfe follows from the sample's attempts."""
    field = Linear(np.array([[0.0, 1.0], [-400.0, -1.0]]))  # a large first step gets rejected
    y0 = torch.tensor([[1.0, 1.0], [0.01, 0.0], [1.0, -3.0]], dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    stats = solve(field, y0, ts, method="dopri5", rtol=1e-6, atol=1e-9, engine=engine).stats
    assert stats.nfe_batch == field.calls
    assert (stats.n_accepted + stats.n_rejected).tolist() == stats.n_steps.tolist()
    assert int(stats.n_rejected.max()) > 0
    # two evaluations before the first attempt (f(t0) and the first-step probe), six per
    # attempt; a batch runs until its slowest sample is done
    assert stats.nfe_forward.tolist() == (2 + 6 * stats.n_steps).tolist()
    assert field.calls == 2 + 6 * int(stats.n_steps.max())


def test_native_accepted_steps_match_independent_count(problem):
    """Count accepted dopri5 steps from the evaluation times alone.

    Every dopri5 attempt from t0 with step h evaluates the field last at t0 + h;
    an accepted attempt is followed by one starting at that time.
    """
    field, y0, ts = problem
    times: list[float] = []

    def recording(t, y):
        times.append(float(t[0].detach()))
        return field(t, y)

    stats = solve(recording, y0[:1], ts[[0, -1]], method="dopri5", rtol=1e-8, atol=1e-10).stats
    attempts = np.array(times[2:]).reshape(-1, 6)  # skip f(t0) and the initial-step probe
    h = (attempts[:, 5] - attempts[:, 0]) / (1 - 1 / 5)
    starts = attempts[:, 5] - h
    accepted = (
        sum(np.isclose(starts[k + 1], attempts[k, 5], rtol=1e-12) for k in range(len(starts) - 1))
        + 1
    )
    assert int(stats.n_steps[0]) == len(attempts)
    assert int(stats.n_accepted[0]) == accepted


@pytest.mark.parametrize("engine", ["native", "torchdiffeq"])
def test_float32_state_with_float64_times(problem, engine):
    _, y0, ts = problem
    net = lambda t, y: y @ torch.tensor(A, dtype=torch.float32).T  # noqa: E731
    sol = solve(net, y0.float(), ts, method="dopri5", engine=engine)
    assert sol.ys.dtype == torch.float32
    torch.testing.assert_close(sol.ys.double(), exact(y0, ts), rtol=0, atol=1e-4)


@pytest.mark.parametrize("engine", ["native", "torchdiffeq", "torchode"])
def test_decreasing_times_integrate_backwards(problem, engine):
    field, y0, ts = problem
    forward = exact(y0, ts)
    y_end = forward[:, -1]
    back = solve(field, y_end, ts.flip(0), method="dopri5", rtol=1e-10, atol=1e-12,
                 engine=engine)
    torch.testing.assert_close(back.ys, forward.flip(1), rtol=0, atol=1e-7)
    assert back.t_reached.tolist() == pytest.approx([0.0] * 3)


@pytest.mark.parametrize("engine", ["native", "torchdiffeq", "torchode"])
def test_a_single_output_time_returns_the_initial_state(problem, engine):
    field, y0, _ = problem
    sol = solve(field, y0, torch.tensor([0.7], dtype=torch.float64), engine=engine)
    assert torch.equal(sol.ys, y0[:, None])
    assert sol.stats.nfe_forward.tolist() == [0, 0, 0]
    assert field.calls == 0


def test_solver_value_and_keywords_build_the_same_options(problem):
    field, y0, ts = problem
    options = SolveOptions(method="tsit5", rtol=1e-5, atol=1e-7)
    by_value = solve(field, y0, ts, solver=options)
    by_keywords = solve(field, y0, ts, method="tsit5", rtol=1e-5, atol=1e-7)
    assert torch.equal(by_value.ys, by_keywords.ys)
    with pytest.raises(OptionError, match="^solver: got solver=SolveOptions"):
        solve(field, y0, ts, solver=options, rtol=1e-3)
    with pytest.raises(OptionError, match="^rtoll: not a solver option"):
        solve(field, y0, ts, rtoll=1e-3)


# --- failures -------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["native", "torchdiffeq", "torchode"])
def test_max_steps_exceeded(problem, engine):
    field, y0, ts = problem
    with pytest.raises(SolverError, match="max_steps=5") as err:
        solve(field, y0, ts, method="dopri5", rtol=1e-12, atol=1e-14, max_steps=5, engine=engine)
    assert err.value.n_steps == 5
    assert 0.0 <= err.value.t_reached < 2.0


def test_failures_as_values(problem):
    field, y0, ts = problem
    sol = solve(field, y0, ts, method="dopri5", rtol=1e-12, atol=1e-14, max_steps=5, throw=False)
    assert sol.result.tolist() == [RESULTS.index("max_steps_reached")] * 3
    assert bool((sol.t_reached > 0).all()) and bool((sol.t_reached < 2).all())
    assert bool(torch.isinf(sol.ys[:, -1]).all())  # not reached
    assert torch.equal(sol.ys[:, 0], y0)


@pytest.mark.parametrize("engine", ["native", "torchdiffeq"])
def test_step_size_underflow_on_finite_time_blow_up(engine):
    y0 = torch.ones(1, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 2.0], dtype=torch.float64)
    with pytest.raises(SolverError, match="underflow|NaN") as err:  # y' = y^2 blows up at t = 1
        solve(lambda t, y: y**2, y0, ts, method="dopri5", max_steps=100_000, engine=engine)
    assert 0.9 < err.value.t_reached < 1.01


@pytest.mark.parametrize("engine", ["native", "torchdiffeq"])
def test_fixed_step_blow_up_names_the_step(engine):
    """rk4 through y' = y^2 (blow-up at t = 1) must not return NaN silently."""
    y0 = torch.ones(2, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 2.0], dtype=torch.float64)
    with pytest.raises(SolverError, match=r"^step \d+ of 20 .*NaN or inf"):
        solve(lambda t, y: y**2, y0, ts, method="rk4", n_steps=20, engine=engine)
    sol = solve(lambda t, y: y**2, y0, ts, method="rk4", n_steps=20, engine=engine, throw=False)
    assert sol.result.tolist() == [RESULTS.index("nonfinite")] * 2


# --- bad input: one test per case -----------------------------------------------


def test_unknown_method_lists_valid_ones(problem):
    with pytest.raises(OptionError, match=r"^method: expected one of .*'dopri5'.*; got 'rk45'$"):
        solve(*problem, method="rk45")


def test_method_missing_from_engine(problem):
    with pytest.raises(
        OptionError, match=r"^method: expected one of .* with engine='torchdiffeq' .*'tsit5'$"
    ):
        solve(*problem, method="tsit5", engine="torchdiffeq")


def test_adaptive_method_rejects_step_size(problem):
    with pytest.raises(OptionError, match="adaptive"):
        solve(*problem, method="dopri5", step_size=0.1)


def test_fixed_method_needs_step_size(problem):
    with pytest.raises(OptionError, match="step_size or n_steps"):
        solve(*problem, method="rk4")


@pytest.mark.parametrize(
    ("ts", "error", "match"),
    [
        ([0.0, 1.0, 1.0], OptionError, "strictly increasing or strictly decreasing"),
        ([0.0, 2.0, 1.0], OptionError, "strictly increasing or strictly decreasing"),
        ([0.0, float("nan")], NonFiniteError, "finite"),
        ([0.0, float("inf")], NonFiniteError, "finite"),
        ([], ShapeError, "at least 1"),
    ],
)
def test_bad_time_points(problem, ts, error, match):
    field, y0, _ = problem
    with pytest.raises(error, match=match):
        solve(field, y0, torch.tensor(ts, dtype=torch.float64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_initial_state(problem, bad):
    field, y0, ts = problem
    y0 = y0.clone()
    y0[1, 0] = bad
    with pytest.raises(NonFiniteError, match="^y0"):
        solve(field, y0, ts)


def test_empty_batch_is_refused(problem):
    field, _, ts = problem
    with pytest.raises(ShapeError, match=r"^y0: expected .* batch >= 1 .*; got \(0, 2\)"):
        solve(field, torch.zeros(0, 2, dtype=torch.float64), ts)
    with pytest.raises(ShapeError, match=r"^y0: expected .* non-empty state; got \(3, 0\)"):
        solve(lambda t, y: y, torch.zeros(3, 0, dtype=torch.float64), ts)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(rtol=float("nan")), r"^rtol: expected a finite real number >= 0.0; got nan$"),
        (dict(rtol=-1.0), r"^rtol: expected a finite real number >= 0.0; got -1.0$"),
        (dict(rtol=0.0, atol=0.0), r"^rtol, atol: expected tolerances >= 0, not both 0"),
        (dict(method="dopri"), r"^method: expected one of .*; got 'dopri'$"),
        (dict(max_steps=0), r"^max_steps: expected an integer >= 1; got 0$"),
    ],
)
def test_bad_options_are_refused_as_options(problem, options, match):
    """Refused before solving, not reported later as 'step size underflowed'."""
    field, y0, ts = problem
    with pytest.raises(OptionError, match=match):
        solve(field, y0, ts, **options)
    assert field.calls == 0


def test_field_output_shape_mismatch(problem):
    _, y0, ts = problem
    with pytest.raises(ShapeError, match=r"shape of y \(3, 2\); got \(3, 1\)"):
        solve(lambda t, y: y[:, :1], y0, ts)


def test_float32_field_with_float64_state(problem):
    _, y0, ts = problem
    with pytest.raises(DTypeError, match="float32"):
        solve(nn.Linear(2, 2), y0, ts)  # float32 parameters


def test_field_returning_other_dtype(problem):
    _, y0, ts = problem
    with pytest.raises(DTypeError, match="float32"):
        solve(lambda t, y: y.float(), y0, ts)


def test_float32_times_with_float64_state(problem):
    field, y0, ts = problem
    with pytest.raises(DTypeError, match="ts is torch.float32"):
        solve(field, y0, ts.float())


def test_unknown_adjoint_and_engine_support(problem):
    with pytest.raises(OptionError, match=r"^adjoint: expected one of .*; got 'adjoint'$"):
        solve(*problem, adjoint="adjoint")
    with pytest.raises(
        OptionError, match=r"^adjoint: expected None or one of 'direct' with engine='torchode'"
    ):
        solve(*problem, adjoint="backsolve", engine="torchode")
    with pytest.raises(OptionError, match=r"^engine: expected one of .* in PyTorch; got 'diffrax'"):
        solve(*problem, engine="diffrax")
    with pytest.raises(OptionError, match=r"^engine: expected one of .*; got 'scipyy'$"):
        solve(*problem, engine="scipyy")


def test_engine_that_is_not_installed_says_how_to_get_it(problem, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torchode" else real(name)
    )
    with pytest.raises(UnavailableError, match="pip install torchode"):
        solve(*problem, engine="torchode")


def test_torchdiffeq_records_what_its_hooks_show(problem):
    """torchdiffeq reports each attempt's start, size and acceptance through its hooks; it
    keeps the error ratio and any stiffness estimate to itself (None)."""
    field, y0, ts = problem
    sol = solve(field, y0, ts, method="dopri5", rtol=1e-6, atol=1e-8, engine="torchdiffeq",
                record_steps=True)
    rec = sol.steps
    assert rec.error_ratio is None and rec.stiffness is None
    assert rec.t.shape == (3, int(sol.stats.n_steps[0]))
    assert rec.accepted.sum(1).tolist() == sol.stats.n_accepted.tolist()
    accepted = rec.accepted[0]
    ends = (rec.t[0] + rec.dt[0])[accepted]
    torch.testing.assert_close(rec.t[0][accepted][1:], ends[:-1], rtol=0, atol=1e-15)
    assert float(ends[-1]) >= 2.0  # torchdiffeq steps past the end and interpolates back

"""sciml_seq.torch.solve against closed forms, pinned evaluation counts and its errors."""

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
from sciml_seq.torch import available_methods, solve

A = np.array([[0.0, 1.0], [-4.0, -0.3]])  # damped oscillator


class Linear(nn.Module):
    """f(t, y) = y A^T, with A a parameter."""

    def __init__(self, a: np.ndarray = A) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
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


ADAPTIVE = [m for m in available_methods() if METHODS[m].adaptive]
FIXED = [m for m in available_methods() if not METHODS[m].adaptive]


@pytest.mark.parametrize("method", ADAPTIVE)
def test_adaptive_matches_matrix_exponential(problem, method):
    field, y0, ts = problem
    sol = solve(field, y0, ts, method=method, rtol=1e-10, atol=1e-12, max_steps=100_000)
    assert sol.ys.shape == (3, 4, 2)
    torch.testing.assert_close(sol.ys, exact(y0, ts), rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["dopri5", "tsit5"])
def test_torchode_matches_matrix_exponential_per_sample_stats(problem, method):
    field, y0, ts = problem
    sol = solve(field, y0, ts, method=method, rtol=1e-10, atol=1e-12, backend="torchode")
    torch.testing.assert_close(sol.ys, exact(y0, ts), rtol=0, atol=1e-7)
    stats = sol.stats
    assert stats.n_steps.shape == (3,)
    assert torch.equal(stats.n_accepted + stats.n_rejected, stats.n_steps)
    # torchode evaluates the whole batch until the slowest sample is done
    assert stats.nfe_forward == 2 + 6 * int(stats.n_steps.max())


@pytest.mark.parametrize("method", FIXED)
def test_fixed_step_convergence_order(problem, method):
    field, y0, ts = problem
    errors = [
        (solve(field, y0, ts, method=method, n_steps=n).ys - exact(y0, ts)).abs().max().item()
        for n in (40, 80)
    ]
    observed = np.log2(errors[0] / errors[1])
    assert abs(observed - METHODS[method].order) < 0.3


def test_step_size_grid_hits_every_output_time(problem):
    field, y0, ts = problem
    by_size = solve(field, y0, ts, method="rk4", step_size=0.05)
    # intervals of length 0.3, 0.8, 0.9 -> 6 + 16 + 18 steps
    assert by_size.stats.n_steps == 40
    torch.testing.assert_close(by_size.ys, exact(y0, ts), rtol=0, atol=1e-5)


def test_rk4_uses_exactly_four_evaluations_per_step(problem):
    field, y0, _ = problem
    for n in (1, 7, 25):
        sol = solve(
            field, y0, torch.tensor([0.0, 1.5], dtype=torch.float64), method="rk4", n_steps=n
        )
        assert sol.stats.as_dict() == {
            "nfe_forward": 4 * n,
            "nfe_backward": 0,
            "n_steps": n,
            "n_accepted": n,
            "n_rejected": 0,
        }


def test_dopri5_counts_six_evaluations_per_attempt_plus_two_initial():
    # A large first step on a fast field forces rejections.
    field = Linear(np.array([[0.0, 1.0], [-400.0, -1.0]]))
    y0 = torch.ones(2, 2, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    stats = solve(field, y0, ts, method="dopri5", rtol=1e-6, atol=1e-9).stats
    assert stats.n_rejected > 0
    assert stats.n_accepted + stats.n_rejected == stats.n_steps
    assert stats.nfe_forward == 2 + 6 * stats.n_steps


def test_accepted_steps_match_independent_count(problem):
    """Count accepted dopri5 steps from the evaluation times alone.

    Every dopri5 attempt from t0 with step h evaluates the field last at t0 + h;
    an accepted attempt is followed by one starting at that time, so the
    accepted count is the number of distinct attempt-end times reached by
    the next attempt's first stage at t0 + h/5, plus the final attempt.
    """
    field, y0, ts = problem
    times: list[float] = []

    def recording(t, y):
        times.append(float(t[0].detach()))
        return field(t, y)

    stats = solve(recording, y0, ts[[0, -1]], method="dopri5", rtol=1e-8, atol=1e-10).stats
    attempts = np.array(times[2:]).reshape(-1, 6)  # skip f(t0) and the initial-step probe
    h = (attempts[:, 5] - attempts[:, 0]) / (1 - 1 / 5)
    starts = attempts[:, 5] - h
    accepted = (
        sum(np.isclose(starts[k + 1], attempts[k, 5], rtol=1e-12) for k in range(len(starts) - 1))
        + 1
    )
    assert stats.n_steps == len(attempts)
    assert stats.n_accepted == accepted


@pytest.mark.parametrize("adjoint", ["direct", "backsolve"])
@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_gradcheck(method, adjoint):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    field = lambda t, y: net(y)  # noqa: E731
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    y0 = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    opts = dict(n_steps=5) if method == "rk4" else dict(rtol=1e-10, atol=1e-12)
    if adjoint == "backsolve":  # parameter gradients need the field as a Module
        field = _ModuleField(net)
    params = tuple(net.parameters())

    def run(y, *ps):
        return solve(field, y, ts, method=method, adjoint=adjoint, **opts).ys

    # backsolve differentiates the continuous problem: equal to the discrete
    # gradient only up to solver error, so it gets a looser tolerance
    atol = 1e-6 if adjoint == "backsolve" else 1e-8
    assert torch.autograd.gradcheck(run, (y0, *params), atol=atol, rtol=1e-5)


class _ModuleField(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t, y):
        return self.net(y)


@pytest.mark.parametrize("adjoint", ["direct", "backsolve"])
def test_nfe_backward_counts_vector_jacobian_products(problem, adjoint):
    field, y0, ts = problem
    sol = solve(field, y0.requires_grad_(), ts, method="rk4", n_steps=3, adjoint=adjoint)
    assert sol.stats.nfe_backward == 0
    sol.ys.sum().backward()
    if adjoint == "direct":  # one VJP per recorded evaluation
        assert sol.stats.nfe_backward == sol.stats.nfe_forward == 36
    else:  # rk4 backwards over the same grid: 4 adjoint evaluations per step
        assert sol.stats.nfe_backward == 36
    assert field.a.grad is not None


def test_float32_state_with_float64_times(problem):
    field, y0, ts = problem
    net = lambda t, y: y @ torch.tensor(A, dtype=torch.float32).T  # noqa: E731
    sol = solve(net, y0.float(), ts, method="dopri5")
    assert sol.ys.dtype == torch.float32
    torch.testing.assert_close(sol.ys.double(), exact(y0, ts), rtol=0, atol=1e-4)


# --- errors: one test per case -------------------------------------------------


def test_unknown_method_lists_valid_ones(problem):
    with pytest.raises(OptionError, match=r"^method: expected one of .*'dopri5'.*; got 'rk45'$"):
        solve(*problem, method="rk45")


def test_method_missing_from_backend(problem):
    with pytest.raises(
        UnavailableError, match=r"^method: expected .*'torchdiffeq'.*; got 'tsit5'$"
    ):
        solve(*problem, method="tsit5")


def test_adaptive_method_rejects_step_size(problem):
    with pytest.raises(OptionError, match="adaptive"):
        solve(*problem, method="dopri5", step_size=0.1)


def test_fixed_method_needs_step_size(problem):
    with pytest.raises(OptionError, match="step_size or n_steps"):
        solve(*problem, method="rk4")


@pytest.mark.parametrize(
    ("ts", "error", "match"),
    [
        ([0.0, 1.0, 1.0], OptionError, "strictly increasing"),
        ([0.0, 2.0, 1.0], OptionError, "strictly increasing"),
        ([0.0, float("nan")], NonFiniteError, "finite"),
        ([0.0, float("inf")], NonFiniteError, "finite"),
        ([0.0], ShapeError, "at least 2"),
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
    with pytest.raises(NonFiniteError, match="y0"):
        solve(field, y0, ts)


def test_field_output_shape_mismatch(problem):
    _, y0, ts = problem
    with pytest.raises(ShapeError, match=r"shape of y \(3, 2\), got \(3, 1\)"):
        solve(lambda t, y: y[:, :1], y0, ts)


def test_max_steps_exceeded(problem):
    field, y0, ts = problem
    with pytest.raises(SolverError, match="max_steps=5") as err:
        solve(field, y0, ts, method="dopri5", rtol=1e-12, atol=1e-14, max_steps=5)
    assert err.value.n_steps == 5
    assert 0.0 < err.value.t_reached < 2.0


def test_step_size_underflow_on_finite_time_blow_up():
    y0 = torch.ones(1, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 2.0], dtype=torch.float64)
    with pytest.raises(SolverError) as err:  # y' = y^2 blows up at t = 1
        solve(lambda t, y: y**2, y0, ts, method="dopri5", max_steps=100_000)
    assert 0.9 < err.value.t_reached < 1.01


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
    with pytest.raises(DTypeError, match="ts is float32"):
        solve(field, y0, ts.float())


def test_unknown_adjoint_and_backend_support(problem):
    with pytest.raises(
        OptionError, match=r"^adjoint: expected one of .*'backsolve'; got 'adjoint'$"
    ):
        solve(*problem, adjoint="adjoint")
    with pytest.raises(
        OptionError, match=r"^adjoint: expected one of 'direct' with backend='torchode'; got"
    ):
        solve(*problem, adjoint="backsolve", backend="torchode")
    with pytest.raises(OptionError, match=r"^backend: expected one of .*; got 'diffrax'$"):
        solve(*problem, backend="diffrax")
    with pytest.raises(OptionError, match="backend"):
        solve(*problem, backend="scipy")

"""The test problems of torchdiffeq (``tests/problems.py``), on every PyTorch engine.

- the *constant* problem ``y' = a + (y - (a t + b))^5`` with ``y(0) = b``: the exact
  solution ``y = a t + b`` is linear in t, so every Runge--Kutta method reproduces it
  to rounding, and the exact gradients are ``dy(t)/da = t``, ``dy(t)/db = 1``;
- the *sine* problem ``y' = 2 y / t + t^4 sin(2t) - t^2 + 4 t^3`` on ``[1, 8]`` with a
  closed-form solution: accuracy at a tolerance and the convergence order of the fixed
  methods (the order the issue quotes from the peers' tests: euler 0.92-1.00, midpoint
  and heun 1.95-2.08, rk4 3.95-4.05);
- the *linear* problem ``y' = A y`` (``A = U - U^T``-like, random) against ``expm``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from sciml_seq.torch import available_methods, solve

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = dict(dtype=torch.float64)
ENGINES = ("native", "torchdiffeq", "torchode")
PAIRS = [(e, m) for e in ENGINES for m in available_methods(e)]
ORDER_RANGES = {
    "euler": (0.92, 1.00), "midpoint": (1.95, 2.08), "heun": (1.95, 2.08), "rk4": (3.95, 4.05)
}


class Constant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.2, **F64))
        self.b = nn.Parameter(torch.tensor(3.0, **F64))

    def forward(self, t, y):
        return self.a + (y - (self.a * t[:, None] + self.b)) ** 5


def sine_exact(t):
    return (-0.5 * t**4 * torch.cos(2 * t) + 0.5 * t**3 * torch.sin(2 * t)
            + 0.25 * t**2 * torch.cos(2 * t) - t**3 + 2 * t**4 + (math.pi - 0.25) * t**2)


def sine(t, y):
    t = t[:, None]
    return 2 * y / t + t**4 * torch.sin(2 * t) - t**2 + 4 * t**3


def _steps(method: str) -> dict:
    adaptive = method in ("bosh3", "dopri5", "tsit5", "dopri8")
    return dict(rtol=1e-8, atol=1e-8) if adaptive else dict(n_steps=10)


@pytest.mark.parametrize(("engine", "method"), PAIRS)
def test_constant_problem_is_exact_with_exact_gradients(engine, method):
    field = Constant()
    ts = torch.linspace(0.0, 4.0, 5, **F64)
    y0 = field.b.expand(2, 1)  # y(0) = b: the solution depends on b through y0 only
    sol = solve(field, y0, ts, method=method, engine=engine, **_steps(method))
    exact = (0.2 * ts + 3.0).expand(2, -1)[..., None]
    torch.testing.assert_close(sol.ys, exact, rtol=0, atol=1e-12)
    grad_a, grad_b = torch.autograd.grad(sol.ys[:, -1].sum(), [field.a, field.b])
    assert float(grad_a) == pytest.approx(2 * 4.0, abs=1e-9)
    assert float(grad_b) == pytest.approx(2 * 1.0, abs=1e-9)


@pytest.mark.parametrize(("engine", "method"), [p for p in PAIRS if p[1] not in ORDER_RANGES])
def test_sine_problem_adaptive_accuracy(engine, method):
    ts = torch.linspace(1.0, 8.0, 10, **F64)
    y0 = sine_exact(ts[:1]).expand(3, 1).contiguous()
    tol = 1e-7 if method == "bosh3" else 1e-9  # third order: fewer steps at a looser tolerance
    sol = solve(sine, y0, ts, method=method, rtol=tol, atol=tol, engine=engine,
                max_steps=20_000)
    error = float((sol.ys[..., 0] - sine_exact(ts)).abs().max() / sine_exact(ts).abs().max())
    # relative to |y| ~ 9e3
    # torchdiffeq's bosh3 and dopri8: 250-500x the native error here (upstream)
    allowed = 1000 * tol if engine == "torchdiffeq" and method in ("bosh3", "dopri8") else 30 * tol
    assert error < allowed
    per_attempt = {"bosh3": 3, "dopri8": 13}.get(method, 6)  # dopri8: 13 stages, no FSAL
    assert sol.stats.nfe_batch == 2 + per_attempt * int(sol.stats.n_steps.max())


@pytest.mark.parametrize(("engine", "method"), [p for p in PAIRS if p[1] in ORDER_RANGES])
def test_sine_problem_convergence_order(engine, method):
    ts = torch.tensor([1.0, 8.0], **F64)
    y0 = sine_exact(ts[:1])[None]
    steps = (200, 400)
    errors = [
        abs(float(solve(sine, y0, ts, method=method, n_steps=n, engine=engine).ys[0, -1, 0])
            - float(sine_exact(ts[1:])))
        for n in steps
    ]
    low, high = ORDER_RANGES[method]
    assert low <= math.log2(errors[0] / errors[1]) <= high


@pytest.mark.parametrize(("engine", "method"), PAIRS)
def test_linear_problem_matches_the_matrix_exponential(engine, method):
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(6, 6, generator=gen, **F64) * 0.1
    a = 2 * u - (u + u.T)
    y0 = torch.ones(2, 6, **F64)
    ts = torch.linspace(0.0, 5.0, 6, **F64)
    options = _steps(method) if method not in ORDER_RANGES else dict(n_steps=200)
    sol = solve(lambda t, y: y @ a.T, y0, ts, method=method, engine=engine, **options)
    exact = np.stack([y0.numpy() @ scipy.linalg.expm(a.numpy() * float(t)).T for t in ts], 1)
    allowed = {"euler": 1e-2, "midpoint": 1e-5, "heun": 1e-5}.get(method, 1e-6)
    if engine == "torchdiffeq" and method in ("bosh3", "dopri8"):
        allowed *= 100  # upstream's accuracy at these tolerances
    np.testing.assert_allclose(sol.ys.numpy(), exact, rtol=0, atol=allowed)

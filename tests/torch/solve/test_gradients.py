"""Gradients with respect to y0, ts and the field's parameters: every engine, method, adjoint.

The discrete gradients (``direct``, ``checkpoint``) are the exact derivative of the
solve: ``gradcheck`` against finite differences (at tight tolerances, where the
step sizes' own dependence on the inputs is below the check's tolerance).
``backsolve`` solves the continuous adjoint: it equals the discrete gradient up to
solver error.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sciml_seq.torch import available_methods, solve

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = dict(dtype=torch.float64)
ADAPTIVE = ("bosh3", "dopri5", "tsit5")


class Field(nn.Module):
    """A small non-autonomous field: tanh(W y + b) * (1 + t / 2)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(2, 2, **F64)

    def forward(self, t, y):
        return torch.tanh(self.lin(y)) * (1 + 0.5 * t)[:, None]


def inputs():
    y0 = torch.tensor([[0.5, -0.3], [1.0, 0.2]], **F64, requires_grad=True)
    ts = torch.tensor([0.0, 0.4, 1.0], **F64, requires_grad=True)
    return y0, ts


def steps(method: str) -> dict:
    """Tolerances tight enough that the step sizes' dependence on the inputs (which the
    gradient leaves out, as diffrax and torchdiffeq do) is below gradcheck's tolerance."""
    if method == "bosh3":
        return dict(rtol=1e-8, atol=1e-8)
    return dict(rtol=1e-10, atol=1e-10) if method in ADAPTIVE else dict(n_steps=3)


def gradcheck(engine: str, method: str, adjoint: str) -> None:
    field = Field()
    y0, ts = inputs()

    def run(y0, ts, weight, bias):
        field.lin.weight, field.lin.bias = weight, bias  # plain tensors for gradcheck
        return solve(field, y0, ts, method=method, adjoint=adjoint, engine=engine,
                     **steps(method)).ys

    weight = field.lin.weight.detach().clone().requires_grad_(True)
    bias = field.lin.bias.detach().clone().requires_grad_(True)
    del field.lin.weight, field.lin.bias
    assert torch.autograd.gradcheck(
        run, (y0, ts, weight, bias), atol=1e-6, rtol=1e-5, fast_mode=True
    )


@pytest.mark.parametrize(
    "method",
    ["euler", "midpoint", "heun", "rk4", "dopri5", "tsit5",
     pytest.param("bosh3", marks=pytest.mark.slow)],  # ~4 s: many third-order steps
)
def test_native_direct_gradients_are_exact(method):
    gradcheck("native", method, "direct")


@pytest.mark.parametrize(
    ("engine", "method"),
    [("torchdiffeq", m) for m in ("euler", "rk4", "dopri5")]
    + [("torchode", m) for m in available_methods("torchode")],
)
def test_library_engine_direct_gradients_are_exact(engine, method):
    """torchdiffeq's fixed grids used to drop the gradient with respect to ts.

    (Not torchdiffeq's bosh3: one step size for the batch couples the samples through
    the controller, and its dense output's error is large enough to show there.)"""
    gradcheck(engine, method, "direct")


def gradients(engine: str, method: str, adjoint: str, **extra):
    field = Field()
    y0, ts = inputs()
    sol = solve(field, y0, ts, method=method, adjoint=adjoint, engine=engine,
                **{**steps(method), **extra})
    loss = (sol.ys * torch.linspace(-1, 1, 12, **F64).reshape(2, 3, 2)).sum()
    return torch.autograd.grad(loss, [y0, ts, *field.parameters()]), sol


@pytest.mark.parametrize("method", ["euler", "rk4", *ADAPTIVE])
def test_checkpoint_gives_the_direct_gradient(method):
    exact, _ = gradients("native", method, "direct")
    checkpointed, _ = gradients("native", method, "checkpoint", engine_options={"segment": 2})
    for g, g_exact in zip(checkpointed, exact, strict=True):
        torch.testing.assert_close(g, g_exact, rtol=0, atol=1e-13)


@pytest.mark.parametrize(
    ("engine", "method"),
    [("native", m) for m in ("euler", "rk4", *ADAPTIVE)]
    + [("torchdiffeq", m) for m in ("rk4", "dopri5")],
)
def test_backsolve_approaches_the_discrete_gradient(engine, method):
    exact, _ = gradients("native", method, "direct")
    approx, sol = gradients(engine, method, "backsolve")
    # fixed steps: the adjoint's own discretisation error (O(h^p)); adaptive: the tolerance
    atol = {"euler": 0.2, "rk4": 1e-3}.get(method, 1e-6)
    for g, g_exact in zip(approx, exact, strict=True):
        torch.testing.assert_close(g, g_exact, rtol=0, atol=atol)
    assert sol.stats.nfe_backward > 0


def test_backsolve_gradient_with_respect_to_times_has_its_closed_form():
    """y' = -y: dL/dt_i = g_i . f(t_i, y_i) for later times, -a(t_0) . f(t_0, y0) at t_0."""
    y0 = torch.tensor([[2.0]], **F64, requires_grad=True)
    ts = torch.tensor([0.0, 1.0, 2.5], **F64, requires_grad=True)
    sol = solve(lambda t, y: -y, y0, ts, method="dopri5", rtol=1e-10, atol=1e-12,
                adjoint="backsolve")
    (grad_ts,) = torch.autograd.grad(sol.ys[0, 1:, 0].sum(), ts)
    # L = 2 e^{-(t1 - t0)} + 2 e^{-(t2 - t0)}
    e1, e2 = torch.exp(-(ts[1] - ts[0])), torch.exp(-(ts[2] - ts[0]))
    expected = torch.stack([2 * e1 + 2 * e2, -2 * e1, -2 * e2]).detach()
    torch.testing.assert_close(grad_ts, expected, rtol=1e-8, atol=0)

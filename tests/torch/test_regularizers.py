"""sciml_seq.torch.regularizers through ODEBlock: R_E and R_S (Pal et al. 2021), the local
regularisers (Pal et al. 2023) and TayNODE (Kelly et al. 2020), each value against a float64
computation written from the definitions (tests/regularizer_reference.py), gradients by
finite differences, and the construction refusals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from sciml_seq.errors import OptionError
from sciml_seq.torch import ODEBlock, TimeMLP
from sciml_seq.torch.regularizers import local_regularization, total_derivative
from sciml_seq.torch.solve import solve
from tests.regularizer_reference import local_values, replay, symmetric_matrix, taylor_exact

pytestmark = pytest.mark.usefixtures("one_torch_thread")

T = 1.2
LOOSE = dict(rtol=1e-5, atol=1e-7)
TIGHT = dict(method="dopri5", rtol=1e-11, atol=1e-13, max_steps=100_000)


class Linear(nn.Module):
    """f(t, h) = A h + sin(t) b per sample."""

    def __init__(self, a: np.ndarray, b: np.ndarray | None = None) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(np.zeros(a.shape[0]) if b is None else b))

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return h @ self.a.T + torch.sin(t)[:, None] * self.b


def mlp() -> TimeMLP:
    """A TimeMLP whose weights (std 1) make the adaptive solves reject some attempts."""
    torch.manual_seed(0)
    field = TimeMLP(3, 8, 2, time_conditioning="concat+film", dtype=torch.float64)
    for film in field.film:
        nn.init.normal_(film.weight, std=0.3)
    for layer in field.layers:
        nn.init.normal_(layer.weight, std=1.0)
    return field


def numpy_field(field: nn.Module):
    """The torch field as f(t, y) on one float64 numpy vector (the reference's black box)."""

    def f(t: float, y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = field(torch.tensor([t], dtype=torch.float64), torch.tensor(y)[None])
        return out.numpy()[0]

    return f


@pytest.fixture(scope="module")
def h0() -> torch.Tensor:
    return torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


# --- R_E and R_S over the accepted steps ----------------------------------------------


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "bosh3"])
def test_step_regularisers_replayed_in_float64(method, h0):
    """Every attempt of the record re-run from the tableau in numpy: the same error ratios and
    stiffness estimates, the same final state, and R_E, R_S as the sums over accepted steps."""
    field = mlp()
    names = ("error", "stiffness") if method != "bosh3" else ("error",)
    block = ODEBlock(field, t_end=T, method=method, regularizers=names, **LOOSE)
    assert block.solver.record_steps
    out = block.solve(h0)
    steps = out.solution.steps
    assert bool((~steps.accepted & steps.attempted).any())  # rejected attempts count nothing
    for i in range(h0.shape[0]):
        ref = replay(
            numpy_field(field),
            method,
            h0[i].numpy(),
            *(getattr(steps, k)[i].detach().numpy() for k in ("t", "dt", "accepted", "attempted")),
            **LOOSE,
        )
        attempted = steps.attempted[i].numpy()
        # an error estimate is a difference of stages: compare to rounding of the stages
        np.testing.assert_allclose(
            steps.error_ratio[i].detach().numpy()[attempted],
            ref.error_ratios,
            rtol=1e-7,
            atol=1e-10,
        )
        if "stiffness" in names:
            np.testing.assert_allclose(
                steps.stiffness[i].detach().numpy()[attempted], ref.stiffnesses, rtol=1e-7
            )
        np.testing.assert_allclose(out.ys[i].detach().numpy(), ref.y_final, rtol=0, atol=1e-12)
        values = {name: float(out.regularization[name][i].detach()) for name in names}
        np.testing.assert_allclose(values["error"], ref.error, rtol=1e-9)
        if "stiffness" in names:
            np.testing.assert_allclose(values["stiffness"], ref.stiffness, rtol=1e-9)


def frozen_steps(**options):
    """A controller whose steps cannot depend on the parameters: dt0 given and a step factor
    clipped to 1 (every attempt is accepted at these tolerances)."""
    return dict(
        method="dopri5", dt0=0.15, factormin=1.0, factormax=1.0, rtol=1e-2, atol=1e-3, **options
    )


def flat_params(field: nn.Module) -> torch.Tensor:
    return nn.utils.parameters_to_vector(field.parameters()).detach().clone()


@pytest.mark.parametrize("adjoint", ["direct", "checkpoint"])
def test_step_regulariser_gradients_by_finite_differences(adjoint, h0):
    """With the step sequence frozen, R_E and R_S are smooth in the parameters: their
    autograd gradient (through the records) equals a central difference, and the steps at
    +-eps are the very same."""
    field = mlp()
    block = ODEBlock(
        field, t_end=T, regularizers=("error", "stiffness"), **frozen_steps(adjoint=adjoint)
    )
    weights = torch.tensor([[0.7, -0.4], [1.1, 0.3], [-0.5, 0.9]], dtype=torch.float64)

    def loss() -> torch.Tensor:
        out = block.solve(h0)
        values = torch.stack([out.regularization["error"], out.regularization["stiffness"]], 1)
        return (values * weights).sum()

    loss().backward()
    grad = torch.cat([p.grad.flatten() for p in field.parameters()])
    theta = flat_params(field)
    direction = torch.randn(
        theta.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    eps, values, records = 1e-6, [], []
    with torch.no_grad():
        for sign in (1.0, -1.0):
            nn.utils.vector_to_parameters(theta + sign * eps * direction, field.parameters())
            values.append(float(loss()))
            records.append(block.last_output.solution.steps)
        nn.utils.vector_to_parameters(theta, field.parameters())
    for name in ("t", "dt", "accepted", "attempted"):
        assert torch.equal(getattr(records[0], name), getattr(records[1], name)), name
    assert bool(records[0].accepted[records[0].attempted].all())
    fd = (values[0] - values[1]) / (2 * eps)
    np.testing.assert_allclose(float(grad @ direction), fd, rtol=1e-6)


def test_step_regulariser_gradient_holds_the_adaptive_steps_fixed(h0):
    """Under the PID controller the step sizes move with the parameters but carry no gradient
    (as in diffrax, torchdiffeq and OrdinaryDiffEq): the gradient of R_E is the derivative of
    the replay of the recorded steps, a central difference of that replay."""
    field = mlp()
    block = ODEBlock(field, t_end=T, regularizers=("error",), method="dopri5", **LOOSE)
    out = block.solve(h0[:1])
    out.regularization["error"].sum().backward()
    grad = torch.cat([p.grad.flatten() for p in field.parameters()])
    record = [
        getattr(out.solution.steps, k)[0].detach().numpy()
        for k in ("t", "dt", "accepted", "attempted")
    ]
    theta = flat_params(field)
    direction = torch.randn(
        theta.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    eps, values = 1e-6, []
    for sign in (1.0, -1.0):
        nn.utils.vector_to_parameters(theta + sign * eps * direction, field.parameters())
        values.append(replay(numpy_field(field), "dopri5", h0[0].numpy(), *record, **LOOSE).error)
    nn.utils.vector_to_parameters(theta, field.parameters())
    np.testing.assert_allclose(
        float(grad @ direction), (values[0] - values[1]) / (2 * eps), rtol=1e-6
    )


# --- local regularisation ---------------------------------------------------------------


def test_local_regularisers_at_the_drawn_time_against_float64():
    """The block draws t_r = u T from torch's generator; E|dt| and S|dt| of the solver's first
    attempt from (t_r, h(t_r)) equal the reference with h(t_r) = expm(A t_r) h0."""
    a = np.array([[-0.5, 1.0, 0.0], [-2.0, -0.3, 0.4], [0.1, 0.0, -0.8]])
    field = Linear(a)
    h0 = torch.tensor([[0.7, -1.1, 0.4], [0.2, 0.5, -0.3]], dtype=torch.float64)
    names = ("local_error", "local_stiffness")
    # The first step of Hairer's heuristic has E ~ 1e-5: its error estimate, a difference of
    # stages, is ~1e-5 * tolerance * |h|, so rounding limits it to ~1e-6 relative here.
    tol = dict(rtol=1e-7, atol=1e-9)
    block = ODEBlock(field, t_end=T, regularizers=names, method="dopri5", **tol)
    torch.manual_seed(11)
    out = block.solve(h0)
    torch.manual_seed(11)
    u = float(torch.rand((), dtype=torch.float64))
    assert out.local_time == pytest.approx(u * T, abs=1e-15)
    final = h0.numpy() @ scipy.linalg.expm(a * T).T
    np.testing.assert_allclose(out.ys.detach().numpy(), final, rtol=1e-5, atol=1e-7)
    at = h0.numpy() @ scipy.linalg.expm(a * out.local_time).T
    index = int(torch.nonzero(out.solution.ts == out.local_time)[0, 0])
    np.testing.assert_allclose(out.solution.ys[:, index].detach(), at, rtol=1e-5, atol=1e-7)
    for i in range(2):
        expected = local_values(numpy_field(field), "dopri5", out.local_time, at[i], T, **tol)
        for name, value in zip(names, expected, strict=True):
            np.testing.assert_allclose(
                float(out.regularization[name][i].detach()), value, rtol=1e-5
            )
    block.eval()
    out = block.solve(h0)
    assert out.local_time is None
    assert out.regularization["local_error"].abs().sum() == 0
    assert out.solution.ys.shape[1] == 2  # nothing inserted: the evaluation solve is plain


@pytest.mark.parametrize("backwards", [False, True])
def test_local_regulariser_with_output_times(backwards, h0):
    """With ts (either direction) t_r is drawn in [ts[0], ts[-1]] and inserted into the solve:
    the outputs equal the plain solve's (dense output leaves the steps alone) and the value is
    the reference from the state the solve reached at t_r."""
    field = mlp()
    ts = torch.tensor([0.0, 0.35, 0.8, T], dtype=torch.float64)
    ts = ts.flip(0) if backwards else ts
    options = dict(method="tsit5", **LOOSE)
    block = ODEBlock(field, regularizers=("local_error",), **options)
    torch.manual_seed(4)
    out = block.solve(h0, ts)
    plain = solve(field, h0, ts, **options)
    np.testing.assert_allclose(
        out.ys.detach().numpy(), plain.ys.detach().numpy(), rtol=0, atol=1e-13
    )
    t_r = out.local_time
    assert min(ts[0], ts[-1]) < t_r < max(ts[0], ts[-1])
    index = int(torch.nonzero(out.solution.ts == t_r)[0, 0])
    at = out.solution.ys[:, index].detach().numpy()
    for i in range(h0.shape[0]):
        error, _ = local_values(numpy_field(field), "tsit5", t_r, at[i], float(ts[-1]), **LOOSE)
        np.testing.assert_allclose(
            float(out.regularization["local_error"][i].detach()), error, rtol=1e-7
        )


def test_local_regulariser_gradient_with_any_adjoint(h0):
    """The local estimate differentiates one step from the solve's state at t_r, so the
    continuous adjoint (backsolve) gives the gradient too, close to the discrete one."""
    grads = []
    for adjoint in ("direct", "backsolve"):
        field = mlp()
        block = ODEBlock(
            field,
            t_end=T,
            regularizers=("local_error",),
            method="dopri5",
            adjoint=adjoint,
            rtol=1e-8,
            atol=1e-10,
        )
        torch.manual_seed(5)
        block.solve(h0).regularization["local_error"].sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in field.parameters()]))
    assert grads[0].norm() > 0
    np.testing.assert_allclose(
        grads[1].numpy(), grads[0].numpy(), rtol=1e-4, atol=1e-5 * float(grads[0].abs().max())
    )


def test_local_regularization_function_against_float64(h0):
    """local_regularization on its own: any start, either direction, dtmax honoured."""
    field = mlp()
    names = ("local_error", "local_stiffness")
    for t, t_end, dtmax in ((0.3, T, None), (0.9, 0.1, None), (0.2, T, 0.01)):
        options = ODEBlock(field, method="dopri5", dtmax=dtmax, **LOOSE).solver
        got = local_regularization(field, h0, t, t_end, options, names)
        for i in range(h0.shape[0]):
            expected = local_values(
                numpy_field(field), "dopri5", t, h0[i].numpy(), t_end, **LOOSE, dtmax=dtmax
            )
            for name, value in zip(names, expected, strict=True):
                np.testing.assert_allclose(float(got[name][i].detach()), value, rtol=1e-7)


# --- TayNODE ------------------------------------------------------------------------------


def test_total_derivative_closed_form():
    """f = A h + sin(t) b: h'' = A f + cos(t) b, h''' = A h'' - sin(t) b."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 3)), rng.standard_normal(3)
    field = Linear(a, b)
    h = rng.standard_normal((2, 3))
    t = np.array([0.3, -1.1])
    f = h @ a.T + np.sin(t)[:, None] * b
    second = f @ a.T + np.cos(t)[:, None] * b
    third = second @ a.T - np.sin(t)[:, None] * b
    for order, expected in ((2, second), (3, third)):
        got = total_derivative(field, torch.tensor(t), torch.tensor(h), order)
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("order", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_taylor_regulariser_closed_form(order):
    a = symmetric_matrix()
    h0 = np.array([[0.7, -1.1, 0.4], [0.2, 0.5, -0.3]])
    block = ODEBlock(
        Linear(a),
        t_end=T,
        regularizers=("taylor",),
        taylor_order=order,
        method="dopri5",
        rtol=1e-10,
        atol=1e-12,
    )
    out = block.solve(torch.tensor(h0))
    expected = [taylor_exact(a, x, T, order) for x in h0]
    np.testing.assert_allclose(out.regularization["taylor"].detach().numpy(), expected, rtol=1e-8)


def test_taylor_regulariser_gradcheck():
    """Reverse mode through the nested forward-mode JVPs of K = 3, w.r.t. the state and the
    first layer (a few parameters keep gradcheck's finite differences cheap)."""
    torch.manual_seed(0)
    field = TimeMLP(2, 3, 1, dtype=torch.float64)
    block = ODEBlock(field, t_end=0.5, method="rk4", n_steps=2, regularizers=("taylor",))
    h0 = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)

    def fn(h0, weight):
        return block.solve(h0).regularization["taylor"]

    assert torch.autograd.gradcheck(fn, (h0, field.layers[0].weight), atol=1e-7, rtol=1e-5)


# --- refusals -----------------------------------------------------------------------------


def test_torch_refuses_taylor_orders_above_three():
    with pytest.raises(
        OptionError,
        match=r"^taylor_order: expected 2, 3 in PyTorch .*got 4; "
        r"higher orders need Taylor mode: use sciml_seq.jax",
    ):
        ODEBlock(mlp(), regularizers=("taylor",), taylor_order=4)
    ODEBlock(mlp(), taylor_order=4)  # unused: any K >= 2 is accepted

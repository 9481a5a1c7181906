"""sciml_seq.torch.ode: the Euler/residual identity, RNODE regularisers and STEER
against direct float64 computations, gradients, and dtype errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import torch
from torch import nn

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.torch import ODEBlock, ResidualStack, TimeMLP

A = np.array([[-0.5, 1.0], [-2.0, -0.3]])
T = 1.3
TIGHT = dict(method="dopri5", rtol=1e-11, atol=1e-13, max_steps=100_000)


class Linear(nn.Module):
    """f(t, h) = h A^T (A h per sample), with A a parameter."""

    def __init__(self, a: np.ndarray = A, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=dtype))

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return h @ self.a.T


def expm_apply(h0: np.ndarray, t: float) -> np.ndarray:
    """expm(A t) h0 per sample; h0 of shape (batch, 2)."""
    return h0 @ scipy.linalg.expm(A * t).T


def close(actual: torch.Tensor, expected: np.ndarray, **tol) -> None:
    np.testing.assert_allclose(actual.detach().numpy(), expected, **tol)


def kinetic_exact(h0: np.ndarray, t_end: float) -> np.ndarray:
    """int_0^T ||A expm(A t) h0||^2 dt per sample, by quadrature."""

    def integrand(t: float, x: np.ndarray) -> float:
        return float(np.sum((A @ scipy.linalg.expm(A * t) @ x) ** 2))

    return np.array(
        [
            scipy.integrate.quad(integrand, 0.0, t_end, args=(x,), epsabs=1e-13, epsrel=1e-12)[0]
            for x in h0
        ]
    )


@pytest.fixture
def h0() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(3, 2, generator=gen, dtype=torch.float64)


def test_residual_stack_is_euler():
    torch.manual_seed(0)
    field = TimeMLP(4, 8, 2, time_conditioning="concat+film", dtype=torch.float64)
    for film in field.film:  # non-zero FiLM so time enters both ways
        nn.init.normal_(film.weight, std=0.3)
    h = torch.randn(5, 4, dtype=torch.float64)
    for n in (1, 3, 7):
        stack = ResidualStack(field, n, t_end=T)
        block = ODEBlock(field, t_end=T, method="euler", n_steps=n)
        torch.testing.assert_close(stack(h), block(h), rtol=0, atol=1e-12)


class Affine(nn.Module):
    """f(t, h) = h A^T + t b: linear in h, explicit in t."""

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return h @ self.a.T + t[:, None] * self.b


def affine_layers(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    return [(rng.standard_normal((2, 2)), rng.standard_normal(2)) for _ in range(n)]


def test_untied_residual_stack_equals_an_explicit_loop(h0):
    layers = affine_layers(4)
    stack = ResidualStack([Affine(a, b) for a, b in layers], t_end=T)
    assert stack.n_layers == 4 and stack.field is None
    # Parameters as an nn.ModuleList names them, one entry per layer.
    assert [n for n, _ in stack.named_parameters()] == [
        f"fields.{k}.{p}" for k in range(4) for p in ("a", "b")
    ]
    expected = h0.numpy()
    dt = T / 4
    for k, (a, b) in enumerate(layers):  # h <- h + dt f_k(k dt, h), in numpy
        expected = expected + dt * (expected @ a.T + (k * dt) * b)
    close(stack(h0), expected, rtol=0, atol=1e-13)
    assert stack.last_stats.nfe_forward == 4 and stack.last_stats.n_steps == 4
    # n_layers may be given when it agrees; one (tied) field keeps its names.
    again = ResidualStack(nn.ModuleList(stack.fields), 4, t_end=T)
    torch.testing.assert_close(again(h0), stack(h0), rtol=0, atol=0)
    tied = ResidualStack(Affine(*layers[0]), 4, t_end=T)
    assert tied.fields is None and [n for n, _ in tied.named_parameters()] == ["field.a", "field.b"]
    untied_same = ResidualStack([tied.field] * 4, t_end=T)  # the same field 4 times
    torch.testing.assert_close(untied_same(h0), tied(h0), rtol=0, atol=0)


def test_untied_residual_stack_trains_each_layer(h0):
    stack = ResidualStack([Affine(a, b) for a, b in affine_layers(3)])
    stack(h0).pow(2).sum().backward()
    grads = [field.a.grad for field in stack.fields]
    assert all(g is not None and bool(g.abs().sum() > 0) for g in grads)
    assert not torch.equal(grads[0], grads[1])


def test_residual_stack_errors():
    with pytest.raises(OptionError, match=r"^field: expected one field .* non-empty sequence"):
        ResidualStack([])
    with pytest.raises(
        OptionError, match=r"^n_layers: expected None or len\(field\) = 2 .*; got 3"
    ):
        ResidualStack([Linear(), Linear()], 3)
    with pytest.raises(OptionError, match=r"^n_layers: expected an integer >= 1; got 2.0"):
        ResidualStack([Linear(), Linear()], 2.0)
    with pytest.raises(OptionError, match=r"^n_layers: expected an integer >= 1 with one .*None"):
        ResidualStack(Linear())
    with pytest.raises(OptionError, match=r"^field\[1\]: expected an nn.Module .*; got function"):
        ResidualStack([Linear(), lambda t, h: -h])


def test_kinetic_regulariser_matches_quadrature(h0):
    block = ODEBlock(Linear(), t_end=T, regularizers=("kinetic",), **TIGHT)
    out = block.solve(h0)
    assert set(out.regularization) == {"kinetic"}
    assert out.regularization["kinetic"].shape == (3,)
    close(out.regularization["kinetic"], kinetic_exact(h0.numpy(), T), rtol=1e-8)
    close(out.ys, expm_apply(h0.numpy(), T), rtol=0, atol=1e-9)


def test_jacobian_regulariser_matches_closed_form(h0):
    # The block draws eps = torch.randn_like(h0) first thing in solve (no STEER here).
    torch.manual_seed(7)
    eps = torch.randn_like(h0).numpy()
    torch.manual_seed(7)
    block = ODEBlock(Linear(), t_end=T, regularizers=("jacobian", "kinetic"), **TIGHT)
    out = block.solve(h0)
    # For f(h) = A h, eps^T df/dh = (A^T eps)^T is constant in time.
    expected = T * np.sum((eps @ A) ** 2, axis=1)
    close(out.regularization["jacobian"], expected, rtol=1e-9)
    close(out.regularization["kinetic"], kinetic_exact(h0.numpy(), T), rtol=1e-8)
    assert list(out.regularization) == ["jacobian", "kinetic"]


def test_regularisers_with_output_times(h0):
    ts = torch.tensor([0.0, 0.4, T], dtype=torch.float64)
    block = ODEBlock(Linear(), t_end=5.0, regularizers=("kinetic",), **TIGHT)
    out = block.solve(h0, ts)
    assert out.ys.shape == (3, 3, 2)
    assert out.t_end == pytest.approx(T)
    close(out.regularization["kinetic"], kinetic_exact(h0.numpy(), T), rtol=1e-8)
    for i, t in enumerate(ts.tolist()):
        close(out.ys[:, i], expm_apply(h0.numpy(), t), rtol=0, atol=1e-9)


def test_steer_training_and_evaluation(h0):
    b = 0.4
    block = ODEBlock(Linear(), t_end=T, steer=b, **TIGHT)
    torch.manual_seed(3)
    ends = []
    for _ in range(4):
        out = block.solve(h0)
        assert T - b <= out.t_end <= T + b
        close(out.ys, expm_apply(h0.numpy(), out.t_end), rtol=0, atol=1e-9)
        ends.append(out.t_end)
    assert len(set(ends)) == len(ends)  # a fresh draw each call
    block.eval()
    out = block.solve(h0)
    assert out.t_end == T
    close(out.ys, expm_apply(h0.numpy(), T), rtol=0, atol=1e-9)
    # Output times switch STEER off, also in training.
    block.train()
    ts = torch.tensor([0.0, T], dtype=torch.float64)
    assert block.solve(h0, ts).t_end == pytest.approx(T)


@pytest.mark.parametrize("adjoint", ["direct", "backsolve"])
@pytest.mark.parametrize("regularizers", [(), ("kinetic", "jacobian")])
def test_gradcheck(adjoint, regularizers):
    torch.manual_seed(0)
    field = TimeMLP(2, 3, 1, dtype=torch.float64)
    block = ODEBlock(
        field, t_end=0.5, method="rk4", n_steps=6, adjoint=adjoint, regularizers=regularizers
    )
    h0 = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    params = tuple(field.parameters())

    def fn(h0, *_params):  # gradcheck perturbs the parameters in place
        torch.manual_seed(1)  # the same Hutchinson noise on every evaluation
        out = block.solve(h0)
        return (out.ys, *out.regularization.values())

    # backsolve is the continuous adjoint: equal to the discrete gradient up to O(dt^4).
    assert torch.autograd.gradcheck(fn, (h0, *params), atol=1e-6, rtol=1e-4)


def test_float32_field_with_float64_input_raises(h0):
    block = ODEBlock(Linear(dtype=torch.float32), method="rk4", n_steps=2)
    with pytest.raises(DTypeError, match=r"^h0: expected dtype torch.float32 .*got torch.float64$"):
        block(h0)
    block = ODEBlock(Linear(dtype=torch.float32), regularizers=("kinetic",))
    with pytest.raises(DTypeError, match="float32"):
        block(h0)


def test_option_and_shape_errors(h0):
    with pytest.raises(
        OptionError, match=r"^regularizers\[0\]: expected one of .*; got 'lyapunov'"
    ):
        ODEBlock(Linear(), regularizers=("lyapunov",))
    with pytest.raises(OptionError, match=r"^t_end: expected a finite real number > 0.0; got -1.0"):
        ODEBlock(Linear(), t_end=-1.0)
    with pytest.raises(OptionError, match=r"^steer: expected .* < t_end = 1.0; got 1.0"):
        ODEBlock(Linear(), t_end=1.0, steer=1.0)
    with pytest.raises(OptionError, match=r"^engine: expected one of 'native', .*; got 'x'"):
        ODEBlock(Linear(), engine="x")
    with pytest.raises(OptionError, match=r"^backend: not a solver option"):
        ODEBlock(Linear(), backend="torchdiffeq")
    with pytest.raises(OptionError, match=r"^engine: expected one of .* in PyTorch; got 'diffrax'"):
        ODEBlock(Linear(), engine="diffrax")
    with pytest.raises(OptionError, match=r"^n_layers: expected an integer >= 1; got 0"):
        ResidualStack(Linear(), 0)
    with pytest.raises(OptionError, match=r"^n_layers: expected an integer >= 1; got 3.0"):
        ResidualStack(Linear(), 3.0)
    with pytest.raises(ShapeError, match="h0"):
        ODEBlock(Linear())(h0[0])

"""The PyTorch bridge to the host engines with any field: a field with matrix parameters on
a (batch, 2, 3) state and an ODE transformer against the native engine (outputs and every
gradient), TimeMLP's numpy fast path against the callback path, an implicit method on a
callback field against the closed form, float32 fields, step records, gradients of tensor
attributes (gradcheck), the main-thread rule, ODEBlock and errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from sciml_seq.errors import OptionError, ShapeError, UnavailableError  # noqa: E402
from sciml_seq.host import MLPFieldSpec  # noqa: E402
from sciml_seq.host.scipy_backend import ScipyBackend  # noqa: E402
from sciml_seq.julia.backend import JuliaBackend  # noqa: E402
from sciml_seq.torch import ODEBlock, TimeMLP, TransformerEncoder, solve  # noqa: E402
from sciml_seq.torch.solve.host import TorchField, flat_params, host_field  # noqa: E402
from tests.host.test_scipy_backend import closed_form, matrix  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64
TS = torch.tensor([0.0, 0.4, 1.0], dtype=F64)
TIGHT = dict(rtol=1e-11, atol=1e-13)
NATIVE = dict(method="dopri5", rtol=1e-12, atol=1e-14)


class MatrixField(nn.Module):
    """``f(t, y) = tanh(y W^T + b) (1 + c t) - y`` on states ``(batch, 2, 3)``: W mixes the 3."""

    def __init__(self, dtype=F64) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(0.8 * torch.randn(3, 3, generator=g, dtype=dtype))
        self.bias = nn.Parameter(0.3 * torch.randn(2, 3, generator=g, dtype=dtype))
        self.rate = nn.Parameter(torch.tensor(0.7, dtype=dtype))

    def forward(self, t, y):
        return torch.tanh(y @ self.weight.T + self.bias) * (1 + self.rate * t)[:, None, None] - y


def _grads(module: nn.Module, h0: torch.Tensor, ts: torch.Tensor, w: torch.Tensor, **kw):
    module.zero_grad()
    h = h0.clone().requires_grad_(True)
    sol = solve(module, h, ts, **kw)
    (sol.ys * w).sum().backward()
    return sol, [h.grad.clone()] + [q.grad.clone() for q in module.parameters()]


def test_a_field_with_matrix_parameters_against_the_native_engine() -> None:
    field = MatrixField()
    assert isinstance(host_field(field, torch.zeros(4, 2, 3, dtype=F64)), TorchField)
    g = torch.Generator().manual_seed(1)
    h0 = torch.randn(2, 2, 3, dtype=F64, generator=g)
    w = torch.randn(2, 3, 2, 3, dtype=F64, generator=g)
    ref, expected = _grads(field, h0, TS, w, **NATIVE)
    for adjoint in ("interpolating", "backsolve"):
        sol, got = _grads(
            field, h0, TS, w, engine="scipy", method="DOP853", adjoint=adjoint, **TIGHT
        )
        assert sol.ys.shape == (2, 3, 2, 3)
        torch.testing.assert_close(sol.ys, ref.ys, rtol=0, atol=1e-10)
        assert sol.stats.nfe_backward > 0 and int(sol.stats.nfe_forward[0]) > 0
        for a, b in zip(got, expected, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
    # Backwards in time too.
    back = solve(field, h0, TS.flip(0), engine="scipy", method="DOP853", **TIGHT)
    torch.testing.assert_close(
        back.ys, solve(field, h0, TS.flip(0), **NATIVE).ys, rtol=0, atol=1e-10
    )


def test_an_ode_transformer_through_scipy_against_the_native_engine() -> None:
    torch.manual_seed(0)
    kw = dict(mlp_hidden=12, dtype=F64)
    native = TransformerEncoder(8, 2, depth="ode", rtol=1e-12, atol=1e-14, **kw)
    with torch.no_grad():  # zero-initialised: make the field depend on time
        native.layers[0].time.weight.normal_(std=0.5)
    hosted = TransformerEncoder(
        8, 2, depth="ode", engine="scipy", method="dopri5", rtol=1e-10, atol=1e-12, **kw
    )
    hosted.load_state_dict(native.state_dict())
    x = torch.randn(2, 5, 8, dtype=F64)
    positions = torch.arange(5, dtype=F64).expand(2, 5)
    w = torch.randn(2, 5, 8, dtype=F64)
    outs, grads = [], []
    for encoder in (native, hosted):
        out = encoder(x, positions)
        (out * w).sum().backward()
        outs.append(out.detach())
        grads.append({n: q.grad.clone() for n, q in encoder.named_parameters()})
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=1e-8)
    assert grads[1].keys() == grads[0].keys()
    for name, value in grads[0].items():
        torch.testing.assert_close(grads[1][name], value, rtol=1e-6, atol=1e-8, msg=name)
    assert int(hosted.last_stats.nfe_forward[0]) > 0


def _film_mlp() -> TimeMLP:
    torch.manual_seed(0)
    field = TimeMLP(2, 3, 1, time_conditioning="concat+film", dtype=F64)
    for film in field.film:  # zero-initialised: make FiLM matter
        nn.init.normal_(film.weight, std=0.5)
    return field


class Wrapped(nn.Module):
    """A TimeMLP behind another module: the callback path, same parameters in the same order."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, t, y):
        return self.inner(t, y)


def test_time_mlp_takes_the_numpy_path_and_agrees_with_the_callback_path() -> None:
    field = _film_mlp()
    h0 = torch.tensor([[0.3, -0.2], [0.1, 0.5]], dtype=F64)
    assert host_field(field, h0) == MLPFieldSpec(2, 3, 1, time_conditioning="concat+film")
    calls = []
    field.register_forward_hook(lambda *args: calls.append(1))
    w = torch.randn(2, 3, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    fast, fast_grads = _grads(field, h0, TS, w, engine="scipy", method="DOP853", **TIGHT)
    assert calls == []  # not one call of the torch module: numpy did all the work
    wrapped = Wrapped(field)
    assert isinstance(host_field(wrapped, h0), TorchField)
    torch.testing.assert_close(flat_params(wrapped), flat_params(field), rtol=0, atol=0)
    slow, slow_grads = _grads(wrapped, h0, TS, w, engine="scipy", method="DOP853", **TIGHT)
    assert len(calls) > 0
    torch.testing.assert_close(slow.ys, fast.ys, rtol=0, atol=1e-11)
    for a, b in zip(slow_grads, fast_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


class LinearModule(nn.Module):
    def __init__(self, a: np.ndarray) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, t, y):
        return y @ self.a.T


@pytest.mark.parametrize("method", ["Radau", "BDF"])
def test_implicit_methods_on_a_callback_field_against_the_closed_form(method: str) -> None:
    a = matrix(stiff=True)  # eigenvalues -1e3 and -1
    field = LinearModule(a)
    y0 = np.array([[0.3, -0.2], [0.1, 0.5]])
    w = np.random.default_rng(3).normal(size=(2, 3, 2))
    sol, (grad_y0, grad_a) = _grads(
        field,
        torch.tensor(y0),
        TS,
        torch.tensor(w),
        engine="scipy",
        method=method,
        rtol=1e-7,
        atol=1e-9,
    )
    ys, ref_y0, ref_a = closed_form(a, y0, TS.numpy(), w)
    np.testing.assert_allclose(sol.ys.detach().numpy(), ys, rtol=0, atol=1e-6)
    np.testing.assert_allclose(grad_y0.numpy(), ref_y0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grad_a.numpy(), ref_a, rtol=1e-4, atol=1e-6)


def test_float32_field_comes_back_float32_with_float32_accuracy() -> None:
    field = Wrapped(_film_mlp())
    h0 = torch.tensor([[0.3, -0.2], [0.1, 0.5]], dtype=F64)
    # Loose tolerances: at tight ones the float32 rounding of every evaluation is noise
    # the error estimate cannot get below, and the steps shrink without end.
    tol = dict(engine="scipy", method="RK45", rtol=1e-6, atol=1e-8)
    ref, ref_grads = _grads(field, h0, TS, torch.ones(2, 3, 2, dtype=F64), **tol)
    field.float()
    sol, grads = _grads(field, h0.float(), TS.float(), torch.ones(2, 3, 2), **tol)
    assert sol.ys.dtype == torch.float32 and all(g.dtype == torch.float32 for g in grads)
    torch.testing.assert_close(sol.ys, ref.ys.float(), rtol=1e-5, atol=1e-6)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b.float(), rtol=1e-4, atol=1e-5)


def test_step_records_are_scipys_accepted_steps() -> None:
    field, h0 = MatrixField(), torch.randn(3, 2, 3, dtype=F64)
    for ts in (TS, TS.flip(0)):
        sol = solve(field, h0, ts, engine="scipy", method="RK45", record_steps=True)
        steps, n = sol.steps, int(sol.stats.n_accepted[0])
        assert steps.t.shape == steps.dt.shape == (3, n) and steps.t.dtype == F64
        assert bool(steps.accepted.all()) and bool(steps.attempted.all())
        assert steps.error_ratio is None and steps.stiffness is None
        direction = float(torch.sign(ts[-1] - ts[0]))
        assert bool((direction * steps.dt > 0).all())
        torch.testing.assert_close(steps.t[:, 0], ts[0].expand(3))
        torch.testing.assert_close(steps.t[:, 1:], (steps.t + steps.dt)[:, :-1])
        torch.testing.assert_close((steps.t + steps.dt)[:, -1], ts[-1].expand(3))
    assert solve(field, h0, TS, engine="scipy", method="RK45").steps is None


class Shifted(nn.Module):
    """A field holding a tensor computed elsewhere (as an encoder's per-layer bias is)."""

    def __init__(self, shift: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2, dtype=F64)
        self.shift = shift

    def forward(self, t, y):
        return torch.tanh(self.linear(y) + self.shift)


def test_tensor_attributes_that_require_grad_get_their_gradient() -> None:
    torch.manual_seed(0)
    h0 = torch.tensor([[0.3, -0.2]], dtype=F64, requires_grad=True)
    shift = torch.tensor([0.2, -0.4], dtype=F64, requires_grad=True)
    linear = Shifted(shift).linear

    def run(h, s):
        field = Shifted(s)
        field.linear = linear
        return solve(field, h, TS, engine="scipy", method="DOP853", **TIGHT).ys

    assert torch.autograd.gradcheck(run, (h0, shift), eps=1e-6, atol=1e-7, rtol=1e-5)
    names = TorchField(Shifted(shift), (2,), F64, h0.device).names
    assert names == ["linear.weight", "linear.bias", "shift"]


def test_a_tuple_of_tensors_that_require_grad_is_refused() -> None:
    field = Shifted(torch.zeros(2, dtype=F64))
    field.pair = (torch.ones(2, dtype=F64, requires_grad=True), torch.zeros(2))
    with pytest.raises(OptionError, match=r"^field: expected .*; got 'pair', a tuple of them"):
        solve(field, torch.zeros(1, 2, dtype=F64), TS, engine="scipy", method="RK45")


def test_main_thread_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    assert JuliaBackend.requires_main_thread and not ScipyBackend.requires_main_thread
    monkeypatch.setattr(ScipyBackend, "requires_main_thread", True)
    field, errors = MatrixField(), []
    h0 = torch.randn(2, 2, 3, dtype=F64)

    def worker() -> None:
        try:
            solve(field, h0, TS, engine="scipy", method="RK45")
        except UnavailableError as err:
            errors.append(err)

    thread = threading.Thread(target=worker, name="worker-1")
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert str(errors[0]).startswith("engine='scipy': expected a call from the main thread")
    assert "'worker-1'" in str(errors[0])
    # The backward pass checks too.
    ys = solve(field, h0.requires_grad_(True), TS, engine="scipy", method="RK45").ys
    thread = threading.Thread(target=lambda: errors.append(_try_backward(ys)))
    thread.start()
    thread.join()
    assert isinstance(errors[-1], UnavailableError)


def _try_backward(ys: torch.Tensor):
    try:
        ys.sum().backward()
    except UnavailableError as err:
        return err
    return None


def test_ode_block_with_any_field_and_errors() -> None:
    field = MatrixField()
    h0 = torch.randn(2, 2, 3, dtype=F64)
    block = ODEBlock(field, engine="scipy", method="dop853", dtmax=0.05)
    out = block(h0)
    torch.testing.assert_close(out, ODEBlock(field)(h0), rtol=0, atol=1e-5)
    assert int(block.last_stats.n_accepted[0]) >= 20  # dtmax reached SciPy
    with pytest.raises(OptionError, match=r"regularizers=\['kinetic'\] are not supported with "
                                          r"engine='julia'"):
        ODEBlock(field, engine="julia", method="tsit5", regularizers=("kinetic",))
    solve(lambda t, h: -h, h0, TS, engine="scipy", method="RK45")  # a plain callable
    with pytest.raises(ShapeError, match=r"^y0: expected shape \(batch, 2\) for a TimeMLP"):
        solve(_film_mlp(), torch.zeros(2, 1, 2, dtype=F64), TS, engine="scipy", method="RK45")
    with pytest.raises(ShapeError, match=r"^field\(t, y\): expected dy/dt with the shape of y"):
        solve(lambda t, h: h[:, :1], h0, TS, engine="scipy", method="RK45")


def test_rnode_regularisers_through_scipy_equal_the_native_engine() -> None:
    """The augmented field of the regularisers is just another field to call back."""
    field = MatrixField()
    h0 = torch.randn(2, 2, 3, dtype=F64, generator=torch.Generator().manual_seed(3))
    results = []
    for engine in ("native", "scipy"):
        options = dict(method="dopri5", **TIGHT) if engine == "scipy" else NATIVE
        block = ODEBlock(field, engine=engine, regularizers=("kinetic", "jacobian"), **options)
        field.zero_grad()
        h = h0.clone().requires_grad_(True)
        torch.manual_seed(4)  # the same Hutchinson noise
        out = block.solve(h)
        loss = out.ys.square().sum() + sum(r.sum() for r in out.regularization.values())
        loss.backward()
        results.append((out, [h.grad.clone()] + [q.grad.clone() for q in field.parameters()]))
    (native, native_grads), (host, host_grads) = results
    torch.testing.assert_close(host.ys, native.ys, rtol=0, atol=1e-9)
    for name in ("kinetic", "jacobian"):
        torch.testing.assert_close(host.regularization[name], native.regularization[name],
                                   rtol=1e-8, atol=0)
    for g_host, g_native in zip(host_grads, native_grads, strict=True):
        torch.testing.assert_close(g_host, g_native, rtol=1e-7, atol=1e-9)

"""The SciPy host backend and the PyTorch bridge: options, agreement with torchdiffeq,
gradcheck through the autograd Function, a stiff problem, statistics, backend_options
(against solve_ivp called with them), errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.integrate

from sciml_seq.errors import OptionError, ShapeError, SolverError, UnavailableError
from sciml_seq.host import (
    HostOptions,
    MLPFieldSpec,
    get_backend,
    host_methods,
    mlp_field,
    params_from_module,
    spec_from_module,
)
from sciml_seq.host.scipy_backend import ScipyBackend

torch = pytest.importorskip("torch")

from sciml_seq.torch import ODEBlock, TimeMLP, solve  # noqa: E402
from sciml_seq.torch.host import _HostSolve, flat_params  # noqa: E402
from sciml_seq.torch.solve import _Counter  # noqa: E402

TS = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
TIGHT = dict(rtol=1e-11, atol=1e-13)


def field(depth: int = 1, time_conditioning: str = "concat+film") -> TimeMLP:
    torch.manual_seed(0)
    f = TimeMLP(2, 3, depth, time_conditioning=time_conditioning, dtype=torch.float64)
    for film in f.film:
        torch.nn.init.normal_(film.weight, std=0.5)
    return f


def y0(batch: int = 2) -> torch.Tensor:
    return torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.4, 0.2]][:batch], dtype=torch.float64)


def stiff_field() -> TimeMLP:
    """depth 0: f(t, y) = W [y; t] + b with eigenvalues -10^4 and -1 (stiff)."""
    f = TimeMLP(2, 1, 0, time_conditioning="concat", dtype=torch.float64)
    with torch.no_grad():
        f.layers[0].weight.copy_(torch.tensor([[-1e4, 1.0, 0.0], [0.0, -1.0, 1.0]]))
        f.layers[0].bias.copy_(torch.tensor([1.0, 0.0]))
    return f


def test_methods_and_option_errors() -> None:
    assert host_methods("scipy") == ScipyBackend.methods
    for name in ("RK45", "DOP853", "Radau", "BDF", "LSODA", "dop853", "radau", "dopri5"):
        assert name in ScipyBackend.methods
    backend = get_backend("scipy", MLPFieldSpec(2, 3, 1))
    assert backend.check_options(HostOptions("dopri8")).method == "DOP853"
    assert backend.check_options(HostOptions("bdf", adjoint="direct")).adjoint == "interpolating"
    with pytest.raises(
        OptionError, match=r"^method: expected .*'RK45'.*'Radau'.*'LSODA'.*got 'tsit5'$"
    ):
        backend.check_options(HostOptions("tsit5"))
    with pytest.raises(OptionError, match="adaptive methods only"):
        backend.check_options(HostOptions("RK45", n_steps=10))
    with pytest.raises(
        OptionError, match=r"^adjoint: expected one of 'interpolating', 'backsolve'.*got 'gauss'$"
    ):
        backend.check_options(HostOptions("RK45", adjoint="gauss"))
    with pytest.raises(OptionError, match=r"^rtol: expected a finite real number > 0.0; got nan"):
        backend.check_options(HostOptions("RK45", rtol=float("nan")))
    with pytest.raises(OptionError, match=r"^max_steps: expected an integer >= 1; got 10.0"):
        backend.check_options(HostOptions("RK45", max_steps=10.0))
    with pytest.raises(OptionError, match=r"^backend: expected one of 'scipy', 'julia'"):
        get_backend("torchdiffeq", MLPFieldSpec(2, 3, 1))


def test_forward_agrees_with_torchdiffeq() -> None:
    f, h0 = field(), y0(3)
    expected = solve(f, h0, TS, method="dopri5", rtol=1e-12, atol=1e-14).ys
    for method in ("dopri5", "DOP853", "LSODA"):
        sol = solve(f, h0, TS, method=method, backend="scipy", **TIGHT)
        assert sol.ys.dtype == torch.float64 and sol.ys.shape == (3, 3, 2)
        torch.testing.assert_close(sol.ys, expected, rtol=0, atol=1e-9)
        stats = sol.stats
        assert stats.nfe_forward > 0 and stats.n_accepted > 0
        assert stats.n_steps is None and stats.n_rejected is None  # SciPy does not report them


def test_float32_state_comes_back_float32() -> None:
    f = field().float()
    sol = solve(f, y0().float(), TS.float(), method="RK45", backend="scipy")
    assert sol.ys.dtype == torch.float32
    ref = solve(field(), y0(), TS, method="RK45", backend="scipy").ys
    torch.testing.assert_close(sol.ys, ref.float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("adjoint", ["interpolating", "backsolve"])
def test_gradcheck_through_the_autograd_function(adjoint: str) -> None:
    f = field()
    backend = get_backend("scipy", MLPFieldSpec(2, 3, 1, time_conditioning="concat+film"))
    options = backend.check_options(HostOptions("DOP853", adjoint=adjoint, **TIGHT))
    p = flat_params(f).detach().clone().requires_grad_(True)
    h0 = y0().clone().requires_grad_(True)

    def run(h, q):
        return _HostSolve.apply(h, q, TS, backend, options, _Counter(4096))

    assert torch.autograd.gradcheck(run, (h0, p), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradients_reach_the_module_and_agree_with_torchdiffeq() -> None:
    f, h0 = field(), y0().requires_grad_(True)
    w = torch.randn(2, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    sol = solve(f, h0, TS, method="DOP853", backend="scipy", **TIGHT)
    assert sol.stats.nfe_backward == 0
    (sol.ys * w).sum().backward()
    assert sol.stats.nfe_backward > 0
    grads = [h0.grad.clone()] + [q.grad.clone() for q in f.parameters()]

    f.zero_grad()
    h1 = y0().requires_grad_(True)
    ref = solve(f, h1, TS, method="dopri5", rtol=1e-12, atol=1e-14)
    (ref.ys * w).sum().backward()
    expected = [h1.grad] + [q.grad for q in f.parameters()]
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-9)


def test_ode_block_with_scipy_backend() -> None:
    f = field()
    block = ODEBlock(f, backend="scipy", method="dop853")
    out = block(y0())
    assert out.shape == (2, 2)
    ref = ODEBlock(f)(y0())
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    assert block.last_stats.n_accepted > 0
    with pytest.raises(OptionError, match="regularizers=.*not supported with backend='scipy'"):
        ODEBlock(f, backend="scipy", method="RK45", regularizers=("kinetic",))
    with pytest.raises(OptionError, match="support only"):
        solve(lambda t, h: -h, y0(), TS, backend="scipy", method="RK45")
    with pytest.raises(OptionError, match=r"^method: expected .*; got 'rk4'$"):
        solve(f, y0(), TS, backend="scipy", method="rk4")
    with pytest.raises(ShapeError, match=r"\(batch, 2\)"):
        solve(f, y0()[:, None], TS, backend="scipy", method="RK45")


def test_stiff_problem_implicit_methods_take_far_fewer_steps() -> None:
    f, h0 = stiff_field(), torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    loose = dict(backend="scipy", rtol=1e-6, atol=1e-9, max_steps=100_000)
    explicit = solve(f, h0, ts, method="RK45", **loose)
    for method in ("Radau", "BDF"):
        implicit = solve(f, h0, ts, method=method, **loose)
        torch.testing.assert_close(implicit.ys, explicit.ys, rtol=1e-4, atol=1e-6)
        assert 10 * implicit.stats.n_accepted < explicit.stats.n_accepted
    # Gradients through the stiff solve (the adjoint uses the Jacobian too) agree.
    grads = []
    for method in ("LSODA", "Radau"):
        h = h0.clone().requires_grad_(True)
        solve(f, h, ts, method=method, backend="scipy", rtol=1e-8, atol=1e-10).ys.sum().backward()
        grads.append(h.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_max_steps_raises_solver_error() -> None:
    f = stiff_field()
    h0 = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(SolverError, match="max_steps=20") as info:
        solve(f, h0, ts, method="RK45", backend="scipy", max_steps=20)
    assert info.value.n_steps == 20 and 0 < info.value.t_reached < 1.0
    assert info.value.reason == "max_steps"


def test_main_thread_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import sciml_seq.host.interface as interface

    monkeypatch.setattr(ScipyBackend, "requires_main_thread", True)
    f, errors = field(), []

    def worker() -> None:
        try:
            solve(f, y0(), TS, backend="scipy", method="RK45")
        except UnavailableError as err:
            errors.append(err)

    thread = threading.Thread(target=worker, name="worker-1")
    thread.start()
    thread.join()
    assert len(errors) == 1 and "main thread" in str(errors[0]) and "worker-1" in str(errors[0])
    # The backward pass checks too.
    h = y0().requires_grad_(True)
    ys = solve(f, h, TS, backend="scipy", method="RK45").ys
    thread = threading.Thread(target=lambda: errors.append(_try_backward(ys)))
    thread.start()
    thread.join()
    assert isinstance(errors[-1], UnavailableError)
    assert interface.check_main_thread("julia") is None  # fine on the main thread


def _try_backward(ys: torch.Tensor):
    try:
        ys.sum().backward()
    except UnavailableError as err:
        return err
    return None


def _solve_ivp_reference(f: TimeMLP, h0: torch.Tensor, **options) -> scipy.integrate.OdeResult:
    """scipy.integrate.solve_ivp on the same stacked system, called directly with ``options``."""
    spec, p = spec_from_module(f), params_from_module(f)
    batch, features = h0.shape

    def fun(t: float, y: np.ndarray) -> np.ndarray:
        return mlp_field(spec, p, t, y.reshape(batch, features)).reshape(-1)

    ts = TS.numpy()
    return scipy.integrate.solve_ivp(
        fun, (ts[0], ts[-1]), h0.numpy().reshape(-1), dense_output=True, **options
    )


@pytest.mark.parametrize(
    ("method", "backend_options"),
    [("RK45", {"max_step": 0.01}), ("DOP853", {"first_step": 1e-4}), ("LSODA", {"max_step": 0.02})],
)
def test_backend_options_reach_scipy(method: str, backend_options: dict) -> None:
    """The options change the solve exactly as they change solve_ivp's."""
    f, h0 = field(), y0(3)
    tol = dict(rtol=1e-6, atol=1e-8)
    sol = solve(f, h0, TS, method=method, backend="scipy", backend_options=backend_options, **tol)
    ref = _solve_ivp_reference(f, h0, method=method, **backend_options, **tol)
    default = _solve_ivp_reference(f, h0, method=method, **tol)
    assert (sol.stats.nfe_forward, sol.stats.n_accepted) == (ref.nfev, len(ref.t) - 1)
    assert (ref.nfev, len(ref.t)) != (default.nfev, len(default.t))  # the option mattered
    expected = ref.sol(TS.numpy()).T.reshape(len(TS), 3, 2).transpose(1, 0, 2)
    expected[:, 0] = h0.numpy()
    np.testing.assert_allclose(sol.ys.detach().numpy(), expected, rtol=0, atol=1e-12)
    if "max_step" in backend_options:
        assert sol.stats.n_accepted >= 1 / backend_options["max_step"]


def test_backend_options_reach_the_adjoint_solves() -> None:
    f = field()
    nfe, grads = [], []
    for backend_options in (None, {"max_step": 0.01}):
        f.zero_grad()
        h = y0().requires_grad_(True)
        sol = solve(
            f, h, TS, method="DOP853", backend="scipy", backend_options=backend_options, **TIGHT
        )
        sol.ys.sum().backward()
        nfe.append(sol.stats.nfe_backward)
        grads.append([h.grad.clone()] + [q.grad.clone() for q in f.parameters()])
    # Every backward step is at most 0.01 long: >= 100 steps of DOP853 (12 evaluations each).
    assert nfe[1] >= 12 * 100 > nfe[0]
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-9)


def test_ode_block_backend_options() -> None:
    f = field()
    block = ODEBlock(f, backend="scipy", method="RK45", backend_options={"max_step": 1})
    assert block.solve_options["backend_options"] == {"max_step": 1.0}  # checked, normalised
    capped = ODEBlock(f, backend="scipy", method="RK45", backend_options={"max_step": 0.01})
    capped(y0())
    assert capped.last_stats.n_accepted >= 100
    block(y0())
    assert block.last_stats.n_accepted < 100
    ODEBlock(f, backend_options={})  # nothing to pass: fine with any backend


@pytest.mark.parametrize(
    ("backend", "backend_options", "match"),
    [
        (
            "scipy",
            {"vjp": "zygote"},
            r"^backend_options: expected keys among 'first_step', 'max_step' \(the options "
            r"of backend='scipy'\); got unknown 'vjp'$",
        ),
        (
            "scipy",
            {"max_step": 0.0},
            r"^backend_options\['max_step'\]: expected a finite real number > 0.0; got 0.0$",
        ),
        ("scipy", {"first_step": "1e-3"}, r"^backend_options\['first_step'\]: expected"),
        ("scipy", ["max_step"], r"^backend_options: expected a mapping from option names"),
        (
            "torchdiffeq",
            {"max_step": 0.1},
            r"^backend_options: expected None with backend='torchdiffeq' \(only the host "
            r"backends 'scipy', 'julia' take backend options\); got \{'max_step': 0.1\}$",
        ),
        ("torchode", {"max_step": 0.1}, r"^backend_options: expected None with backend='torchode'"),
    ],
)
def test_backend_option_errors(backend: str, backend_options, match: str) -> None:
    f = field()
    method = "RK45" if backend == "scipy" else "dopri5"
    with pytest.raises(OptionError, match=match):
        ODEBlock(f, backend=backend, method=method, backend_options=backend_options)
    with pytest.raises(OptionError, match=match):
        solve(f, y0(), TS, backend=backend, method=method, backend_options=backend_options)

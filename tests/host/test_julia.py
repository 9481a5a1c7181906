"""The Julia engine's Python side without Julia (package metadata, doctor, what a field
cannot do, the keywords and callbacks Julia receives, clear errors), and with Julia (marker
``julia``, opt-in: ``SCIML_SEQ_TEST_JULIA=1``), the TimeMLP natively and any field called
back into Python.

Nothing here imports juliacall unless SCIML_SEQ_TEST_JULIA=1: importing it would make
juliapkg download Julia.  With Julia, run this file on its own so that juliacall is
imported before torch (juliacall's advice)::

    SCIML_SEQ_TEST_JULIA=1 python -m pytest -m julia tests/host/test_julia.py
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WITH_JULIA = os.environ.get("SCIML_SEQ_TEST_JULIA") == "1"
if WITH_JULIA:
    import juliacall  # noqa: F401  (before torch, as juliacall recommends)

import sciml_seq.julia.backend as backend_module  # noqa: E402
from sciml_seq.engines import JULIA_METHODS, JULIA_SOLVERS  # noqa: E402
from sciml_seq.errors import OptionError, UnavailableError  # noqa: E402
from sciml_seq.host import MLPFieldSpec  # noqa: E402
from sciml_seq.julia.backend import JuliaBackend  # noqa: E402
from sciml_seq.solver import SolveOptions  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
JULIAPKG_JSON = ROOT / "sciml_seq" / "juliapkg.json"
PROJECT = ROOT / "julia" / "SciMLSeqJL"

needs_julia = pytest.mark.skipif(
    not WITH_JULIA,
    reason="needs a Julia runtime: set SCIML_SEQ_TEST_JULIA=1 on a machine with Julia "
    "(see docs/julia.md; `python -m sciml_seq.julia doctor` checks it)",
)


def load_project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(PROJECT / "Project.toml", "rb") as f:
        return tomllib.load(f)


def test_juliapkg_json_and_project_toml_agree() -> None:
    deps = json.loads(JULIAPKG_JSON.read_text())
    project = load_project()
    assert deps["julia"] == "^1.10" and project["compat"]["julia"] == "1.10"
    packages = deps["packages"]
    local = packages.pop("SciMLSeqJL")
    assert local["uuid"] == project["uuid"] and project["name"] == "SciMLSeqJL"
    assert local["dev"] is True
    for name, entry in packages.items():  # every other entry is a dependency of SciMLSeqJL
        assert project["deps"][name] == entry["uuid"], name
        assert project["compat"][name] == entry["version"], name
    # The solvers the Python side names come from packages SciMLSeqJL depends on.
    for _, (_, package) in JULIA_SOLVERS.items():
        assert package in project["deps"]
    source = (PROJECT / "src" / "SciMLSeqJL.jl").read_text()
    for julia_name in JULIA_SOLVERS:
        assert f'"{julia_name}" => ({julia_name},' in source


def test_juliapkg_path_resolves_in_the_repository_and_in_the_wheel() -> None:
    entry = json.loads(JULIAPKG_JSON.read_text())["packages"]["SciMLSeqJL"]
    target = JULIAPKG_JSON.parent / entry["path"]  # juliapkg: relative to the json file
    assert (target / "Project.toml").is_file()
    assert target.resolve() == PROJECT.resolve()  # the symlink into the top-level julia/
    tomllib = pytest.importorskip("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]
    assert "juliapkg.json" in package_data["sciml_seq"]
    package_dir = ROOT / "sciml_seq" / "julia"
    shipped = {
        Path(p).relative_to(package_dir).as_posix()
        for pattern in package_data["sciml_seq.julia"]
        for p in glob.glob(str(package_dir / pattern))
    }
    assert {
        "SciMLSeqJL/Project.toml",
        "SciMLSeqJL/src/SciMLSeqJL.jl",
        "SciMLSeqJL/test/runtests.jl",
    } <= shipped


class _NumpyField:
    """A field that is not the TimeMLP (Julia must call it back): ``f = -y * p[0]``."""

    jacobian = None
    features, n_params = 2, 1

    def f(self, t, y, p):
        return -y * p[0]

    def vjp(self, t, y, p, a):
        return -y * p[0], -a * p[0], np.array([-np.sum(a * y)])


def julia(**kw) -> SolveOptions:
    return SolveOptions(engine="julia", **{"method": "tsit5", **kw})


def test_what_a_field_cannot_do_is_refused_without_julia() -> None:
    assert "rk4" not in JULIA_METHODS and JULIA_METHODS["dopri5"] == "DP5"
    mlp, callback = MLPFieldSpec(2, 3, 1, activation="relu"), _NumpyField()
    for options in (julia(), julia(method="rodas5p"), julia(engine_options={"vjp": "reversediff"})):
        JuliaBackend.check_field(mlp, options)  # Julia evaluates the TimeMLP itself: all fine
    JuliaBackend.check_field(callback, julia(method="Vern7", adjoint="gauss"))
    with pytest.raises(
        OptionError,
        match=r"^method: expected an explicit method with engine='julia' for a field called back "
        r"from Julia \(Rodas5P differentiates the field with ForwardDiff\); got 'rodas5p'",
    ):
        JuliaBackend.check_field(callback, julia(method="rodas5p"))
    with pytest.raises(
        OptionError,
        match=r"^engine_options\['vjp'\]: expected 'zygote' for a field called back from Julia "
        r".*; got 'reversediff'$",
    ):
        JuliaBackend.check_field(callback, julia(engine_options={"vjp": "reversediff"}))
    with pytest.raises(
        OptionError,
        match=r"^engine_options\['vjp'\]: expected 'zygote' or 'reversediff' for "
        r"activation='relu' .*; got 'reversediff_compiled'$",
    ):
        JuliaBackend.check_field(mlp, julia(engine_options={"vjp": "reversediff_compiled"}))
    JuliaBackend.check_field(
        MLPFieldSpec(2, 3, 1), julia(engine_options={"vjp": "reversediff_compiled"})
    )
    with pytest.raises(OptionError, match=r"^options: expected .*engine='julia'; got 'scipy'$"):
        JuliaBackend.check_field(mlp, SolveOptions(engine="scipy", method="RK45"))


class _FakeJulia:
    """Stands in for juliacall's ``Main``: records what ``py_forward`` and
    ``py_forward_callback`` receive, and calls the callbacks as ``CallbackField`` does:
    with column-major ``(features, batch)`` arrays to write into."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.written: list[tuple[np.ndarray, ...]] = []
        self.SciMLSeqJL = self

    @staticmethod
    def _result(u0, ts, features):
        from types import SimpleNamespace

        ys = np.zeros((u0.shape[0], ts.shape[0], features))
        return SimpleNamespace(
            ys=SimpleNamespace(to_numpy=lambda: ys),
            back=None,
            nf=7,
            naccept=3,
            nreject=0,
            success=True,
            retcode="Success",
            t_reached=ts[-1],
        )

    def py_forward(self, features, hidden, depth, activation, time_conditioning, u0, p, ts, **kw):
        self.calls.append(kw)
        return self._result(u0, ts, features)

    def py_forward_callback(self, f_into, vjp_into, features, n_params, u0, p, ts, **kw):
        self.calls.append(kw)
        u = np.asfortranarray(u0.T)  # Julia's (features, batch) layout
        a = np.asfortranarray(np.ones_like(u0).T)
        out, du, dp = np.zeros_like(u), np.zeros_like(u), np.zeros(n_params)
        f_into(out, 0.25, u, p)
        vjp_into(du, dp, 0.25, u, p, a)
        self.written.append((out, du, dp))
        return self._result(u0, ts, features)


def test_options_and_callbacks_reach_julia(monkeypatch: pytest.MonkeyPatch) -> None:
    """SolveOptions arrive as SciMLSeqJL's keywords (Julia's names); a TimeMLP goes to
    py_forward, any other field to py_forward_callback, whose callables write into Julia's
    column-major arrays what the torch field computes."""
    torch = pytest.importorskip("torch")
    from sciml_seq.torch import ODEBlock, TimeMLP, solve
    from sciml_seq.torch.solve.host import TorchField

    fake = _FakeJulia()
    monkeypatch.setattr(backend_module, "_RUNTIME", fake)
    given = {"vjp": "reversediff", "controller": "default"}
    h0 = torch.tensor([[0.3, -0.2, 0.1], [0.4, 0.0, -0.5]], dtype=torch.float64)
    block = ODEBlock(
        TimeMLP(3, 4, 1, dtype=torch.float64),
        engine="julia",
        engine_options=given,
        dt0=1e-3,
        dtmax=0.25,
    )
    with torch.no_grad():
        block(h0)
    ODEBlock(TimeMLP(3, 4, 1, dtype=torch.float64), engine="julia", method="euler", n_steps=4)(h0)

    class TimeLinear(torch.nn.Module):  # not a TimeMLP: Julia calls it back
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(3, 3, dtype=torch.float64)

        def forward(self, t, y):
            return self.linear(y) * t[:, None]

    field = TimeLinear()
    sol = solve(
        field,
        h0,
        torch.tensor([0.0, 0.5], dtype=torch.float64),
        engine="julia",
        method="vern7",
        adjoint="gauss",
        dtmin=1e-6,
    )
    assert len(fake.calls) == 3
    first, fixed, callback = fake.calls
    assert {k: first[k] for k in given} == given
    assert first["solver"] == "DP5" and first["sensealg"] == "interpolating"
    assert (first["dt"], first["dtmax"]) == (1e-3, 0.25) and "dtmin" not in first
    assert first["tstops"] is None and first["maxiters"] == 4096
    assert fixed["solver"] == "Euler" and list(fixed["tstops"]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert "vjp" not in fixed and "controller" not in fixed and "dt" not in fixed  # defaults
    assert callback["solver"] == "Vern7" and callback["sensealg"] == "gauss"
    assert callback["dtmin"] == 1e-6 and "dt" not in callback
    # What the callbacks wrote into Julia's arrays is what the torch field computes.
    out, du, dp = fake.written[0]
    p = torch.cat([q.detach().reshape(-1) for q in field.parameters()]).numpy()
    y = h0.numpy()
    f, grad_y, grad_p = TorchField(field, (3,), torch.float64, h0.device).vjp(
        0.25, y, p, np.ones((2, 3))
    )
    expected = field(torch.full((2,), 0.25, dtype=torch.float64), h0).detach().numpy()
    np.testing.assert_allclose(f, expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.T, f, rtol=0, atol=1e-15)
    np.testing.assert_allclose(du.T, grad_y, rtol=0, atol=1e-15)
    np.testing.assert_allclose(dp, grad_p, rtol=0, atol=1e-15)
    assert not np.all(dp == 0) and not np.all(du == 0)
    assert int(sol.stats.nfe_forward[0]) == 7 and int(sol.stats.n_steps[0]) == 3


def _no_julia_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON_JULIACALL", "PYTHON_JULIAPKG", "JULIA_"))
        and k != backend_module.AUTO_INSTALL_ENV
    }
    env["PATH"] = os.path.dirname(sys.executable)  # no julia, no juliaup
    env["PYTHON_JULIAPKG_PROJECT"] = str(tmp_path)  # no earlier juliapkg install
    return env


def test_doctor_says_julia_is_missing_and_what_to_do(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from sciml_seq.julia.__main__ import main\n"
        "rc = main(['doctor'])\n"
        "print('juliacall imported:', 'juliacall' in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_no_julia_env(tmp_path),
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    if importlib.util.find_spec("juliacall") is None:
        assert "status: NOT OK, juliacall is not installed" in out
        assert "next step: pip install 'sciml-seq[julia]'" in out
    else:
        assert "status: NOT OK, Julia is missing" in out
        assert "next step: install Julia >= 1.10" in out
    assert "juliaup" in out
    assert "SciMLSeqJL at" in out and "(ok)" in out
    assert "juliacall imported: False" in out
    # The module entry point: same report, same exit status; usage errors exit with 2.
    result = subprocess.run(
        [sys.executable, "-m", "sciml_seq.julia", "doctor"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_no_julia_env(tmp_path),
        timeout=120,
    )
    assert result.returncode == 1 and "status: NOT OK" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "sciml_seq.julia"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_no_julia_env(tmp_path),
        timeout=120,
    )
    assert result.returncode == 2 and "usage" in result.stderr


@pytest.fixture
def julia_missing(monkeypatch: pytest.MonkeyPatch):
    if "juliacall" in sys.modules:
        pytest.skip("juliacall is loaded in this process")
    monkeypatch.setattr(backend_module, "find_julia", lambda: (None, "no julia (test)"))
    monkeypatch.delenv(backend_module.AUTO_INSTALL_ENV, raising=False)
    yield
    assert "juliacall" not in sys.modules


def test_clear_error_when_julia_is_missing_torch(julia_missing) -> None:
    torch = pytest.importorskip("torch")
    from sciml_seq.torch import ODEBlock, TimeMLP

    block = ODEBlock(TimeMLP(2, 3, 1, dtype=torch.float64), engine="julia", method="tsit5")
    with pytest.raises(UnavailableError, match=r"^engine='julia' is unavailable.*install Julia"):
        block(torch.zeros(1, 2, dtype=torch.float64))
    # Options are checked at construction, before Julia is needed; so is what the engine
    # cannot do with the field, before Julia starts.
    with pytest.raises(OptionError, match=r"^engine_options\['vjp'\]: expected one of"):
        ODEBlock(TimeMLP(2, 3, 1), engine="julia", method="tsit5", engine_options={"vjp": "x"})
    with pytest.raises(OptionError, match=r"^method: expected .* with engine='julia'"):
        ODEBlock(TimeMLP(2, 3, 1), engine="julia", method="rk45")
    with pytest.raises(OptionError, match=r"^method: expected an explicit method"):
        ODEBlock(torch.nn.Bilinear(2, 2, 2, dtype=torch.float64), engine="julia", method="rodas5p")(
            torch.zeros(1, 2, dtype=torch.float64)
        )


def test_clear_error_when_julia_is_missing_jax(julia_missing) -> None:
    jax = pytest.importorskip("jax")
    from sciml_seq.jax import ODEBlock, TimeMLP

    block = ODEBlock(TimeMLP(2, 3, 1, key=jax.random.key(0)), engine="julia", method="tsit5")
    with pytest.raises(UnavailableError, match="juliaup"):
        block(jax.numpy.zeros(2))


# --------------------------------------------------------------------------------------
# With Julia (SCIML_SEQ_TEST_JULIA=1)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_field():
    torch = pytest.importorskip("torch")
    from sciml_seq.torch import TimeMLP

    torch.manual_seed(0)
    field = TimeMLP(2, 4, 1, time_conditioning="concat+film", dtype=torch.float64)
    for film in field.film:
        torch.nn.init.normal_(film.weight, std=0.5)
    return field


@pytest.mark.julia
@needs_julia
@pytest.mark.timeout(1800)  # the first start resolves and precompiles the Julia packages
def test_julia_field_equals_torch_field(torch_field) -> None:
    torch = pytest.importorskip("torch")
    from sciml_seq.host import mlp_spec_of, params_from_module
    from sciml_seq.julia.backend import field_values

    y = np.random.default_rng(0).normal(size=(3, 2))
    expected = torch_field(torch.full((3,), 0.7, dtype=torch.float64), torch.tensor(y))
    got = field_values(mlp_spec_of(torch_field), params_from_module(torch_field), 0.7, y)
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=0, atol=1e-12)


@pytest.mark.julia
@needs_julia
@pytest.mark.timeout(900)
@pytest.mark.parametrize("adjoint", ["interpolating", "backsolve", "gauss"])
def test_julia_solve_and_gradients_match_torchdiffeq(torch_field, adjoint: str) -> None:
    torch = pytest.importorskip("torch")
    from sciml_seq.torch import solve

    ts = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
    w = torch.randn(2, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = []
    for kwargs in (
        dict(engine="julia", method="tsit5", adjoint=adjoint, rtol=1e-10, atol=1e-12),
        dict(method="dopri5", rtol=1e-12, atol=1e-14),
    ):
        torch_field.zero_grad()
        h0 = torch.tensor([[0.3, -0.2], [0.1, 0.5]], dtype=torch.float64, requires_grad=True)
        sol = solve(torch_field, h0, ts, **kwargs)
        (sol.ys * w).sum().backward()
        grads.append((sol, h0.grad.clone(), [q.grad.clone() for q in torch_field.parameters()]))
    (julia, gh, gp), (ref, rh, rp) = grads
    torch.testing.assert_close(julia.ys, ref.ys, rtol=0, atol=1e-8)
    torch.testing.assert_close(gh, rh, rtol=1e-5, atol=1e-7)
    for a, b in zip(gp, rp, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    stats = julia.stats
    assert stats.nfe_forward > 0 and stats.n_accepted > 0 and stats.n_rejected >= 0
    assert stats.n_steps == stats.n_accepted + stats.n_rejected


@pytest.mark.julia
@needs_julia
@pytest.mark.timeout(900)
@pytest.mark.parametrize("adjoint", ["interpolating", "backsolve", "gauss"])
def test_julia_calls_any_field_back_and_matches_the_native_engine(adjoint: str) -> None:
    """A field that is not a TimeMLP: Julia calls its evaluation and its VJP back into torch."""
    torch = pytest.importorskip("torch")
    from sciml_seq.torch import solve

    class Matrix(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.weight = torch.nn.Parameter(torch.randn(3, 3, generator=g, dtype=torch.float64))

        def forward(self, t, y):
            return torch.tanh(y @ self.weight.T) * (1 + t[:, None]) - y

    field = Matrix()
    ts = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
    w = torch.randn(2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    results = []
    for kwargs in (
        dict(engine="julia", method="tsit5", adjoint=adjoint, rtol=1e-10, atol=1e-12),
        dict(method="dopri5", rtol=1e-12, atol=1e-14),
    ):
        field.zero_grad()
        h0 = torch.tensor(
            [[0.3, -0.2, 0.1], [0.1, 0.5, -0.3]], dtype=torch.float64, requires_grad=True
        )
        sol = solve(field, h0, ts, **kwargs)
        (sol.ys * w).sum().backward()
        results.append((sol, h0.grad.clone(), field.weight.grad.clone()))
    (julia, gh, gw), (ref, rh, rw) = results
    torch.testing.assert_close(julia.ys, ref.ys, rtol=0, atol=1e-8)
    torch.testing.assert_close(gh, rh, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gw, rw, rtol=1e-5, atol=1e-7)
    assert julia.stats.nfe_backward > 0  # the VJPs Julia called back


@pytest.mark.julia
@needs_julia
@pytest.mark.timeout(900)
def test_julia_backend_from_jax() -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    from sciml_seq.jax import ODEBlock, TimeMLP, solve

    field = TimeMLP(2, 4, 1, key=jax.random.key(0))
    y0, ts = jax.numpy.array([0.3, -0.2]), jax.numpy.array([0.0, 0.5, 1.0])
    block = ODEBlock(field, engine="julia", method="tsit5", rtol=1e-10, atol=1e-12)
    ref = solve(field, y0, ts, method="tsit5", rtol=1e-12, atol=1e-14).ys
    np.testing.assert_allclose(block(y0, ts), ref, rtol=0, atol=1e-8)
    g = jax.grad(lambda y: block(y).sum())(y0)
    g_ref = jax.grad(lambda y: solve(field, y, ts, rtol=1e-12, atol=1e-14).ys[-1].sum())(y0)
    np.testing.assert_allclose(g, g_ref, rtol=1e-5)

"""The Julia backend's Python side without Julia (package metadata, doctor, clear errors),
and with Julia (marker ``julia``, opt-in: ``SCIML_SEQ_TEST_JULIA=1``).

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
from sciml_seq.errors import OptionError, UnavailableError  # noqa: E402
from sciml_seq.host import HostOptions  # noqa: E402
from sciml_seq.julia.backend import check_julia_options  # noqa: E402
from sciml_seq.julia.methods import JULIA_METHODS, JULIA_SOLVERS  # noqa: E402

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


def test_method_and_option_checks_need_no_julia() -> None:
    assert check_julia_options(HostOptions("tsit5")).method == "Tsit5"
    assert check_julia_options(HostOptions("rodas5p")).method == "Rodas5P"
    assert check_julia_options(HostOptions("RK4", n_steps=4)).method == "RK4"
    assert check_julia_options(HostOptions("Tsit5", adjoint="checkpoint")).adjoint == (
        "interpolating"
    )
    assert check_julia_options(HostOptions("Tsit5", adjoint="gauss")).adjoint == "gauss"
    assert "rk4" not in JULIA_METHODS
    with pytest.raises(
        OptionError, match=r"^method: expected .*3/8 rule.*method='RK4'.*got 'rk4'$"
    ):
        check_julia_options(HostOptions("rk4", n_steps=4))
    with pytest.raises(OptionError, match="fixed-step"):
        check_julia_options(HostOptions("Euler"))
    with pytest.raises(OptionError, match="adaptive"):
        check_julia_options(HostOptions("Vern7", step_size=0.1))
    with pytest.raises(OptionError, match=r"^n_steps: expected an integer >= 1; got 4.0$"):
        check_julia_options(HostOptions("Euler", n_steps=4.0))
    with pytest.raises(OptionError, match=r"^rtol: expected a finite real number > 0.0; got -1"):
        check_julia_options(HostOptions("Tsit5", rtol=-1))
    with pytest.raises(OptionError, match=r"^adjoint: expected one of 'interpolating', "):
        check_julia_options(HostOptions("Tsit5", adjoint="seminorm"))


def test_backend_options_are_checked_without_julia() -> None:
    given = {"vjp": "reversediff", "controller": "default"}
    checked = check_julia_options(HostOptions("tsit5", backend_options=given))
    assert checked.backend_options == (("controller", "default"), ("vjp", "reversediff"))
    with pytest.raises(
        OptionError,
        match=r"^backend_options: expected keys among 'vjp', 'controller' \(the options of "
        r"backend='julia'\); got unknown 'max_step'$",
    ):
        check_julia_options(HostOptions("tsit5", backend_options={"max_step": 0.1}))
    with pytest.raises(
        OptionError,
        match=r"^backend_options\['vjp'\]: expected one of 'zygote', 'reversediff', "
        r"'reversediff_compiled'; got 'enzyme'$",
    ):
        check_julia_options(HostOptions("tsit5", backend_options={"vjp": "enzyme"}))
    with pytest.raises(OptionError, match=r"^backend_options\['controller'\]: expected one of"):
        check_julia_options(HostOptions("tsit5", backend_options={"controller": "pid"}))


class _FakeJulia:
    """Stands in for juliacall's ``Main``: records what ``py_forward`` receives."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.SciMLSeqJL = self

    def py_forward(self, features, hidden, depth, activation, time_conditioning, u0, p, ts, **kw):
        from types import SimpleNamespace

        self.calls.append(kw)
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


def test_backend_options_reach_py_forward(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """``backend_options`` of ODEBlock/solve arrive as keywords of SciMLSeqJL.py_forward."""
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    from sciml_seq.jax import ODEBlock as JaxODEBlock
    from sciml_seq.jax import TimeMLP as JaxTimeMLP
    from sciml_seq.jax.host import _host_function
    from sciml_seq.torch import ODEBlock, TimeMLP

    fake = _FakeJulia()
    monkeypatch.setattr(backend_module, "_RUNTIME", fake)
    _host_function.cache_clear()  # JAX's cached backends must not keep the fake (nor use Julia)
    request.addfinalizer(_host_function.cache_clear)
    given = {"vjp": "reversediff", "controller": "default"}
    h0 = torch.zeros(2, 3, dtype=torch.float64)
    block = ODEBlock(TimeMLP(3, 4, 1, dtype=torch.float64), backend="julia", backend_options=given)
    with torch.no_grad():
        block(h0)
    ODEBlock(TimeMLP(3, 4, 1, dtype=torch.float64), backend="julia", method="tsit5")(h0)
    jax_block = JaxODEBlock(
        JaxTimeMLP(3, 4, 1, key=jax.random.key(0)),
        backend="julia",
        backend_options={"controller": "default"},
    )
    jax_block(jax.numpy.zeros(3))
    assert len(fake.calls) == 3
    assert {k: fake.calls[0][k] for k in given} == given
    assert fake.calls[0]["solver"] == "DP5" and fake.calls[0]["sensealg"] == "interpolating"
    assert "vjp" not in fake.calls[1] and "controller" not in fake.calls[1]  # Julia's defaults
    assert fake.calls[2]["controller"] == "default" and "vjp" not in fake.calls[2]


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
        assert "status: UNAVAILABLE, juliacall is not installed" in out
        assert "next step: pip install 'sciml-seq[julia]'" in out
    else:
        assert "status: UNAVAILABLE, Julia is missing" in out
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
    assert result.returncode == 1 and "status: UNAVAILABLE" in result.stdout
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

    block = ODEBlock(TimeMLP(2, 3, 1, dtype=torch.float64), backend="julia", method="tsit5")
    with pytest.raises(UnavailableError, match=r"backend='julia' is unavailable.*install Julia"):
        block(torch.zeros(1, 2, dtype=torch.float64))
    # Options are checked at construction, before Julia is needed.
    with pytest.raises(OptionError, match=r"^backend_options\['vjp'\]: expected one of"):
        ODEBlock(TimeMLP(2, 3, 1), backend="julia", method="tsit5", backend_options={"vjp": "x"})
    with pytest.raises(OptionError, match=r"^method: expected .* with backend='julia'"):
        ODEBlock(TimeMLP(2, 3, 1), backend="julia", method="rk45")


def test_clear_error_when_julia_is_missing_jax(julia_missing) -> None:
    jax = pytest.importorskip("jax")
    from sciml_seq.jax import ODEBlock, TimeMLP

    block = ODEBlock(TimeMLP(2, 3, 1, key=jax.random.key(0)), backend="julia", method="tsit5")
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
    from sciml_seq.host import params_from_module, spec_from_module
    from sciml_seq.julia.backend import field_values

    y = np.random.default_rng(0).normal(size=(3, 2))
    expected = torch_field(torch.full((3,), 0.7, dtype=torch.float64), torch.tensor(y))
    got = field_values(spec_from_module(torch_field), params_from_module(torch_field), 0.7, y)
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
        dict(backend="julia", method="tsit5", adjoint=adjoint, rtol=1e-10, atol=1e-12),
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
def test_julia_backend_from_jax() -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    from sciml_seq.jax import ODEBlock, TimeMLP, solve

    field = TimeMLP(2, 4, 1, key=jax.random.key(0))
    y0, ts = jax.numpy.array([0.3, -0.2]), jax.numpy.array([0.0, 0.5, 1.0])
    block = ODEBlock(field, backend="julia", method="tsit5", rtol=1e-10, atol=1e-12)
    ref = solve(field, y0, ts, method="tsit5", rtol=1e-12, atol=1e-14).ys
    np.testing.assert_allclose(block(y0, ts), ref, rtol=0, atol=1e-8)
    g = jax.grad(lambda y: block(y).sum())(y0)
    g_ref = jax.grad(lambda y: solve(field, y, ts, rtol=1e-12, atol=1e-14).ys[-1].sum())(y0)
    np.testing.assert_allclose(g, g_ref, rtol=1e-5)

"""Package-level tests: a light top-level import, the version, the error types."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sciml_seq
from sciml_seq.errors import (
    DTypeError,
    NonFiniteError,
    OptionError,
    SciMLSeqError,
    ShapeError,
    SolverError,
    UnavailableError,
)

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "jax", "jaxlib", "juliacall", "triton", "equinox", "diffrax")


@pytest.mark.parametrize(
    "module",
    [
        "sciml_seq",
        "sciml_seq.errors",
        "sciml_seq.checks",
        "sciml_seq.methods",
        "sciml_seq.stats",
        "sciml_seq.data",
        # the framework-free halves of mirrored torch/JAX modules
        "sciml_seq.fields",
        "sciml_seq.ode",
        "sciml_seq.depth",
        "sciml_seq.regularization",
        "sciml_seq.compare.grid",
        "sciml_seq.compare.report",
        "sciml_seq.models",
        "sciml_seq.position",
        "sciml_seq.ssm",
        "sciml_seq.transformer",
        "sciml_seq.operator",
    ],
)
def test_import_loads_no_framework(module: str) -> None:
    code = (
        "import json, sys\n"
        f"import {module}\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("module", ["sciml_seq.data", "sciml_seq.train.pairs"])
def test_data_names_load_their_modules_on_first_use(module: str) -> None:
    """``sciml_seq.data`` imports its generators lazily, so the numpy-only batching and
    pair modules (and the trainer behind them) do not pull in scipy."""
    code = f"import sys\nimport {module}\nprint('scipy' in sys.modules)\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_data_exports_resolve() -> None:
    import sciml_seq.data as data

    assert set(data.__all__) <= set(dir(data))
    for name in data.__all__:
        assert getattr(data, name).__name__ == name
    with pytest.raises(AttributeError, match="no_such_thing"):
        data.no_such_thing  # noqa: B018


def test_version_matches_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert sciml_seq.__version__ == version


def test_lazy_attributes() -> None:
    assert "torch" in dir(sciml_seq) and "data" in dir(sciml_seq)
    assert sciml_seq.methods.METHODS["rk4"].order == 4
    assert sciml_seq.solver.SolveOptions().engine == "native"
    with pytest.raises(AttributeError, match="no_such_thing"):
        sciml_seq.no_such_thing  # noqa: B018


def test_every_submodule_is_a_lazy_attribute() -> None:
    package = ROOT / "sciml_seq"
    public = {
        path.stem
        for path in package.iterdir()
        if not path.name.startswith("_")
        and (path.suffix == ".py" or (path / "__init__.py").exists())
    }
    assert public == set(sciml_seq._SUBMODULES)


def test_solver_error_carries_time_and_steps() -> None:
    err = SolverError("max_steps=10 reached", t_reached=0.123456789, n_steps=10)
    assert err.t_reached == 0.123456789
    assert err.n_steps == 10
    message = str(err)
    assert message.startswith("max_steps=10 reached")
    assert "t=0.123457" in message
    assert "10 step attempts" in message
    assert isinstance(err, RuntimeError) and isinstance(err, SciMLSeqError)
    with pytest.raises(TypeError):
        SolverError("positional extras are not accepted", 1.0, 2)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (ShapeError, ValueError),
        (DTypeError, TypeError),
        (NonFiniteError, ValueError),
        (OptionError, ValueError),
        (UnavailableError, ImportError),
        (SolverError, RuntimeError),
    ],
)
def test_errors_subclass_builtins(cls: type, builtin: type) -> None:
    assert issubclass(cls, builtin)
    assert issubclass(cls, SciMLSeqError)

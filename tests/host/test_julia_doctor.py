"""`sciml-seq doctor` judges the Julia it finds (a fake `julia` script on PATH), and the
backend keeps juliapkg offline unless installation was asked for (issue 18).

Nothing here imports juliacall or starts Julia.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sciml_seq.julia.backend as backend
from sciml_seq.cli import app
from sciml_seq.errors import UnavailableError

runner = CliRunner()


def fake_julia(folder: Path, body: str) -> Path:
    """A `julia` shell script in ``folder`` running ``body``."""
    script = folder / "julia"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def only_path(tmp_path, monkeypatch):
    """PATH holds tmp_path only (plus sh's folder); no Julia variables."""
    for name in list(os.environ):
        if name.startswith(("PYTHON_JULIACALL", "PYTHON_JULIAPKG", "JULIA_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv(backend.AUTO_INSTALL_ENV, raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/bin{os.pathsep}/usr/bin")
    return tmp_path


needs_sh = pytest.mark.skipif(sys.platform == "win32", reason="fake julia is a shell script")


@needs_sh
@pytest.mark.parametrize(
    "body, verdict",
    [
        ('echo "julia version 1.9.4"', "status: NOT OK, Julia 1.9.4 is older than 1.10"),
        ("exit 3", "does not answer `julia --version` (CalledProcessError)"),
        ('echo "hello"', "--version printed 'hello', not a Julia version"),
        ('echo "julia version 1.11.2"', "status: OK"),
    ],
    ids=["too-old", "no-answer", "not-julia", "ok"],
)
def test_doctor_checks_the_julia_version(only_path, body, verdict):
    if importlib.util.find_spec("juliacall") is None:  # never import it: it would resolve
        pytest.skip("juliacall is not installed")
    if "juliacall" in sys.modules:
        pytest.skip("juliacall is loaded in this process")
    exe = fake_julia(only_path, body)
    result = runner.invoke(app, ["doctor"])
    assert verdict in result.output, result.output
    assert f"julia          {exe} (PATH)" in result.output
    assert result.exit_code == (0 if verdict == "status: OK" else 1)
    assert "juliacall" not in sys.modules


def test_version_parser():
    assert backend.parse_julia_version("julia version 1.10.4\n") == (1, 10, 4)
    assert backend.parse_julia_version("julia version 1.12.0-rc1") == (1, 12, 0)
    assert backend.parse_julia_version("julia version 2.0") == (2, 0, 0)
    assert backend.parse_julia_version("Python 3.11") is None


@needs_sh
def test_too_old_julia_is_refused_before_juliacall_is_imported(only_path):
    if "juliacall" in sys.modules:
        pytest.skip("juliacall is loaded in this process")
    fake_julia(only_path, 'echo "julia version 1.6.7"')
    with pytest.raises(UnavailableError, match="Julia 1.6.7 is older than 1.10"):
        backend.load_runtime()
    assert "juliacall" not in sys.modules


def test_juliapkg_runs_offline_unless_installing(monkeypatch):
    """What load_runtime sets before importing juliacall (the import is stopped)."""
    import builtins

    if "juliacall" in sys.modules:
        pytest.skip("juliacall is loaded in this process")
    status = backend.JuliaStatus("0", "0", "/fake/julia", "PATH", "julia version 1.10.0", False)
    monkeypatch.setattr(backend, "julia_status", lambda run_version=True: status)
    monkeypatch.setattr(backend, "_RUNTIME", None)
    monkeypatch.delenv(backend.AUTO_INSTALL_ENV, raising=False)
    monkeypatch.setenv(backend.OFFLINE_ENV, "restored after the test")
    seen = []
    real_import = builtins.__import__

    def stopped_import(name, *args, **kwargs):
        if name == "juliacall":
            seen.append(os.environ.get(backend.OFFLINE_ENV))
            raise ImportError("stopped before starting Julia (test)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", stopped_import)
    with pytest.raises(UnavailableError, match="juliapkg ran offline.*warmup"):
        backend.load_runtime()
    with pytest.raises(UnavailableError) as info:
        backend.load_runtime(install=True)  # what `python -m sciml_seq.julia warmup` does
    assert "offline" not in str(info.value)
    monkeypatch.setenv(backend.AUTO_INSTALL_ENV, "yes")
    with pytest.raises(UnavailableError):
        backend.load_runtime()
    assert seen == ["yes", "no", "no"]

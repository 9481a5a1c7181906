"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: The ETTh1 file of ../shared (not shipped: the tests that read it skip without it).
ETTH1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ETT" / "ETTh1.csv"

# On a GPU machine JAX would otherwise reserve 75 % of the GPU memory at its first
# use, leaving the torch tests of the same run short of memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def pytest_collection_modifyitems(config, items):
    """Refuse a test that skips without a GPU but lacks the ``gpu`` marker, so that
    ``pytest -m gpu`` on a lent GPU runs every CUDA test (see pyproject's markers)."""

    def needs_gpu(item) -> bool:
        reasons = [str(mark.kwargs.get("reason", "")) for mark in item.iter_markers("skipif")]
        return any(("GPU" in r or "CUDA" in r) and not r.startswith("checks") for r in reasons)

    unmarked = [i.nodeid for i in items if i.get_closest_marker("gpu") is None and needs_gpu(i)]
    if unmarked:
        raise pytest.UsageError(f"tests that need a GPU lack the gpu marker: {unmarked[:5]}")


@pytest.fixture
def quick_jax_compiles():
    """Compile with most XLA optimisations off for the test, then restore the setting.

    Compiles dominate the run time of the small JAX tests on a CPU; the results
    agree with optimised compiles to rounding.  Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("quick_jax_compiles")``.
    """
    jax = pytest.importorskip("jax")
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture
def one_torch_thread():
    """Run the test with torch on one intra-op thread, then restore the previous count.

    Tiny models gain nothing from intra-op threads and, on a busy shared CPU, lose a
    lot.  Test modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``,
    folders with an autouse fixture in their ``conftest.py`` that requests it.
    """
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run_notebook(tmp_path, monkeypatch):
    """``run_notebook(name)``: run ``notebooks/<name>.py`` at its quick sizes
    (``SCIML_SEQ_NOTEBOOK_QUICK=1``), figures written into ``tmp_path`` with the Agg
    backend; returns the notebook's namespace.  torch's thread count is restored."""
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("SCIML_SEQ_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("SCIML_SEQ_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")

    def run(name: str) -> dict:
        try:
            import torch
        except ImportError:
            torch = None
        threads = torch.get_num_threads() if torch else None
        try:
            return runpy.run_path(str(NOTEBOOKS / f"{name}.py"), run_name="__main__")
        finally:
            if torch:
                torch.set_num_threads(threads)

    return run


def notebook_cell_kinds(name: str) -> list[str]:
    """The cell types (``"markdown"`` / ``"code"``) of ``notebooks/<name>.py`` read by jupytext."""
    jupytext = pytest.importorskip("jupytext")
    return [cell.cell_type for cell in jupytext.read(NOTEBOOKS / f"{name}.py").cells]

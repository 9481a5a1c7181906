"""notebooks/pde_forecasting.py runs at quick sizes, writes its figures, and is valid jupytext."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "pde_forecasting.py"


@pytest.mark.slow  # data generation (exponax compile) dominates: ~1 min on 2 busy cores
def test_pde_forecasting_notebook_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    pytest.importorskip("exponax")
    pytest.importorskip("neuralop")
    monkeypatch.setenv("SCIML_SEQ_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("SCIML_SEQ_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runpy.run_path(str(NOTEBOOK), run_name="__main__")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "error_vs_lead.png",
        "loss.png",
        "rollout.png",
        "trajectory.png",
    ]


def test_pde_forecasting_notebook_is_jupytext():
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(NOTEBOOK)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 5 and kinds.count("code") >= 5

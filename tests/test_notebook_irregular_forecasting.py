"""notebooks/irregular_forecasting.py runs at quick sizes, writes its figures, is jupytext."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "irregular_forecasting.py"


def test_irregular_forecasting_notebook_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    monkeypatch.setenv("SCIML_SEQ_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("SCIML_SEQ_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    try:
        namespace = runpy.run_path(str(NOTEBOOK), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data.png",
        "forecasts.png",
        "loss.png",
        "test_mse.png",
    ]
    assert set(namespace["mse"]) >= {"RoPE at index", "RoPE at time", "predict zero"}


def test_irregular_forecasting_notebook_is_jupytext():
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(NOTEBOOK)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 4 and kinds.count("code") >= 4

"""notebooks/irregular_forecasting.py runs at quick sizes, writes its figures, is jupytext."""

from __future__ import annotations

import pytest

from tests.conftest import notebook_cell_kinds


def test_irregular_forecasting_notebook_runs(tmp_path, run_notebook):
    pytest.importorskip("torch")
    namespace = run_notebook("irregular_forecasting")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data.png",
        "forecasts.png",
        "loss.png",
        "test_mse.png",
    ]
    assert set(namespace["mse"]) >= {"RoPE at index", "RoPE at time", "predict zero"}


def test_irregular_forecasting_notebook_is_jupytext():
    kinds = notebook_cell_kinds("irregular_forecasting")
    assert kinds.count("markdown") >= 4 and kinds.count("code") >= 4

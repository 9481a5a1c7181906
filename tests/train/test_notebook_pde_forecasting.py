"""notebooks/pde_forecasting.py runs at quick sizes, writes its figures, and is valid jupytext."""

from __future__ import annotations

import pytest

from tests.conftest import notebook_cell_kinds


@pytest.mark.slow  # data generation (exponax compile) dominates: ~1 min on 2 busy cores
def test_pde_forecasting_notebook_runs(tmp_path, run_notebook):
    pytest.importorskip("exponax")
    pytest.importorskip("neuralop")
    run_notebook("pde_forecasting")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "error_vs_lead.png",
        "loss.png",
        "rollout.png",
        "trajectory.png",
    ]


def test_pde_forecasting_notebook_is_jupytext():
    kinds = notebook_cell_kinds("pde_forecasting")
    assert kinds.count("markdown") >= 5 and kinds.count("code") >= 5

"""notebooks/adaptive_vs_fixed_depth.py runs at quick sizes, records every cell, is jupytext."""

from __future__ import annotations

import pytest

from tests.conftest import notebook_cell_kinds


def test_adaptive_vs_fixed_depth_notebook_runs(tmp_path, run_notebook):
    pytest.importorskip("torch")
    namespace = run_notebook("adaptive_vs_fixed_depth")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "nfe_histograms.png",
        "pareto.png",
        "records.jsonl",
    ]
    names = {s.name for s in namespace["summaries"]}
    assert {"untied-8", "act-8", "dopri5-1e-3 native", "dopri5-1e-3 native +error"} <= names
    assert len(namespace["records"]) == len(namespace["config"].cells())


def test_adaptive_vs_fixed_depth_notebook_is_jupytext():
    kinds = notebook_cell_kinds("adaptive_vs_fixed_depth")
    assert kinds.count("markdown") >= 4 and kinds.count("code") >= 4

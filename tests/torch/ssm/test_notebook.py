"""notebooks/state_space_layers.py runs (quick sizes) and writes its figures.

The notebook asserts its own claims (lean == naive kernels, conv == step to
1e-9, the rate change within 10% while ignoring the rate is off by more)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "state_space_layers.py"


def test_state_space_notebook_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("SCIML_SEQ_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("SCIML_SEQ_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runpy.run_path(str(NOTEBOOK), run_name="__main__")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "conv_vs_step.png",
        "kernels.png",
        "rate_change.png",
    ]

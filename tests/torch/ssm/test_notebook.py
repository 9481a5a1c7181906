"""notebooks/state_space_layers.py runs (quick sizes) and writes its figures.

The notebook asserts its own claims (lean == naive kernels, conv == step to
1e-9, the rate change within 10% while ignoring the rate is off by more)."""

from __future__ import annotations


def test_state_space_notebook_runs(tmp_path, run_notebook):
    run_notebook("state_space_layers")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "conv_vs_step.png",
        "kernels.png",
        "rate_change.png",
    ]

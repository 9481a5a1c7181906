"""Smoke runs of benchmarks/irregular_forecasting.py and encoder_throughput.py at tiny settings."""

from __future__ import annotations

from .conftest import table_lines as table_rows


def test_irregular_forecasting_smoke(run_script):
    # time-floater: the old name of time-neural_ode, still accepted
    rows = ["index-rope", "time-floater", "time-neural_ode-sinusoidal", "time-rope-ode"]
    text = run_script("irregular_forecasting", ["--quick", "--rows", *rows])
    rows = table_rows(text)
    assert len(rows) == 1 + 4 + 2  # header, four models, two baselines
    assert rows[1].startswith("| index | rotary | untied |")
    assert rows[2].startswith("| time | neural_ode (per layer) | untied |")
    assert rows[3].startswith("| time | neural_ode-sinusoidal (per layer) | untied |")
    assert rows[4].startswith("| time | rotary | ode |")


def test_encoder_throughput_smoke(run_script):
    argv = ["--batch-size", "2", "--length", "8", "--dim", "8", "--heads", "2", "--layers", "2"]
    text = run_script("encoder_throughput", [*argv, "--threads", "1", "--repeats", "1"])
    rows = table_rows(text)
    assert len(rows) == 1 + 5
    assert "| untied, 2 blocks | 8 |" in rows[1] and "| 1.00 |" in rows[1]
    # Euler with n_layers steps is the tied stack: same forward evaluations.
    assert rows[2].split("|")[7] == rows[4].split("|")[7] == " 2 "

"""Smoke runs of benchmarks/irregular_forecasting.py and encoder_throughput.py at tiny settings."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def scripts(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield importlib.import_module
    torch.set_num_threads(threads)


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]


def test_irregular_forecasting_smoke(scripts, tmp_path):
    out = tmp_path / "irregular.md"
    rows = ["index-rope", "time-floater", "time-floater-sinusoidal", "time-rope-ode"]
    argv = ["--quick", "--rows", *rows]
    text = scripts("irregular_forecasting").main([*argv, "--out", str(out)])
    assert out.read_text() == text + "\n"
    assert "command: `python benchmarks/irregular_forecasting.py --quick --rows" in text
    rows = table_rows(text)
    assert len(rows) == 1 + 4 + 2  # header, four models, two baselines
    assert rows[1].startswith("| index | rotary | untied |")
    assert rows[3].startswith("| time | floater-sinusoidal (per layer) | untied |")
    assert rows[4].startswith("| time | rotary | ode |")


def test_encoder_throughput_smoke(scripts, tmp_path):
    out = tmp_path / "throughput.md"
    argv = ["--batch", "2", "--length", "8", "--dim", "8", "--heads", "2", "--layers", "2"]
    argv += ["--threads", "1"]
    text = scripts("encoder_throughput").main([*argv, "--repeats", "1", "--out", str(out)])
    assert out.read_text() == text + "\n"
    rows = table_rows(text)
    assert len(rows) == 1 + 5
    assert "| untied, 2 blocks | 8 |" in rows[1] and "| 1.00 |" in rows[1]
    # Euler with n_layers steps is the tied stack: same forward evaluations.
    assert rows[2].split("|")[7] == rows[4].split("|")[7] == " 2 "

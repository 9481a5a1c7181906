"""Smoke runs of benchmarks/long_range.py and benchmarks/rate_change.py at tiny settings."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def scripts(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module


def run_long_range(scripts, tmp_path, tasks: list[str], models: list[str]) -> str:
    out = tmp_path / "long_range.md"
    argv = ["--task", *tasks, "--model", *models, "--params", "1500", "--epochs", "1"]
    argv += ["--max-steps", "2", "--n-train", "16", "--n-test", "8", "--threads", "1"]
    text = scripts("long_range").main([*argv, "--out", str(out)])
    assert out.read_text() == text + "\n"
    assert f"command: `python benchmarks/long_range.py --task {tasks[0]}" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(tasks) * len(models)  # header + tasks x models
    return text


def test_long_range_smoke(scripts, tmp_path):
    text = run_long_range(scripts, tmp_path, ["copying", "adding"], ["s4d", "gru"])
    assert "| copying |" in text and "| acc " in text and "| MSE " in text


@pytest.mark.slow
def test_long_range_smoke_every_task_and_model(scripts, tmp_path):
    pytest.importorskip("sklearn")  # the digits tasks
    tasks = list(scripts("long_range").TASKS)
    text = run_long_range(scripts, tmp_path, tasks, ["s4d", "lstm", "transformer"])
    assert "| permuted_digits |" in text and "RoPE" in text


def test_rate_change_smoke(scripts, tmp_path):
    out = tmp_path / "rate_change.md"
    argv = ["--params", "1500", "--epochs", "1", "--max-steps", "1", "--n-train", "16"]
    argv += ["--n-test", "8", "--full-rate", "32", "--threads", "1", "--out", str(out)]
    text = scripts("rate_change").main(argv)
    assert out.read_text() == text + "\n"
    assert "(L=32)" in text and "(L=16)" in text
    assert "| S4D |" in text and "2 (corrected)" in text and "| GRU |" in text
    assert "Accuracy drop of S4D at half the rate" in text

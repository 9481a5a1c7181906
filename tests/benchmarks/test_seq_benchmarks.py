"""Smoke runs of benchmarks/long_range.py and benchmarks/rate_change.py at tiny settings."""

from __future__ import annotations

import importlib

import pytest

from .conftest import table_lines


def run_long_range(run_script, tasks: list[str], models: list[str]) -> str:
    argv = ["--task", *tasks, "--model", *models, "--params", "1500", "--epochs", "1"]
    argv += ["--max-steps", "2", "--n-train", "16", "--n-test", "8", "--threads", "1"]
    text = run_script("long_range", argv)
    rows = table_lines(text)
    assert len(rows) == 1 + len(tasks) * len(models)  # header + tasks x models
    return text


def test_long_range_smoke(run_script):
    text = run_long_range(run_script, ["copying", "adding"], ["s4d", "gru"])
    assert "| copying |" in text and "| acc " in text and "| MSE " in text


@pytest.mark.slow
def test_long_range_smoke_every_task_and_model(run_script):
    pytest.importorskip("sklearn")  # the digits tasks
    tasks = list(importlib.import_module("long_range").TASKS)
    text = run_long_range(run_script, tasks, ["s4d", "lstm", "transformer"])
    assert "| permuted_digits |" in text and "RoPE" in text


def test_rate_change_smoke(run_script):
    argv = ["--params", "1500", "--epochs", "1", "--max-steps", "1", "--n-train", "16"]
    argv += ["--n-test", "8", "--full-rate", "32", "--threads", "1"]
    text = run_script("rate_change", argv)
    assert "(L=32)" in text and "(L=16)" in text
    assert "| S4D |" in text and "2 (corrected)" in text and "| GRU |" in text
    assert "Accuracy drop of S4D at half the rate" in text

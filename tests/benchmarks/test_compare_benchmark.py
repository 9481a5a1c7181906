"""benchmarks/compare.py at tiny settings: the grid per task, the tables and the paper check."""

from __future__ import annotations

from .conftest import table_lines


def test_compare_smoke(run_script, tmp_path):
    argv = ["--tasks", "pendulum", "--schemes", "tied-2,dopri5-1e-2", "--regularizers",
            "none,error", "--seeds", "1", "--budget-steps", "2", "--quick", "--threads", "1",
            "--records", str(tmp_path / "records")]  # fmt: skip
    text = run_script("compare", argv)
    rows = table_lines(text)
    names = [row.split(" | ")[0].lstrip("| ") for row in rows]
    assert names == ["model", "tied-2", "dopri5-1e-2 native", "dopri5-1e-2 native +error",
                     "task"] + ["pendulum"]  # fmt: skip
    assert (tmp_path / "records" / "torch-pendulum" / "records.jsonl").exists()

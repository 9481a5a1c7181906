"""Smoke run of benchmarks/pararnn.py at tiny sizes: the table, the file and the header."""

from __future__ import annotations

import pytest

from tests.benchmarks.conftest import table_lines


@pytest.mark.slow  # ~1-5 s; the layer's own tests are fast
def test_pararnn_benchmark_smoke(run_script):
    argv = ["--batch", "1", "--d-input", "2", "--d-hidden", "4", "--lengths", "8", "16"]
    argv += ["--repeats", "1", "--threads", "1", "--dtype", "float64"]
    text = run_script("pararnn", argv)  # checks the file and the header, restores threads
    header, *rows = table_lines(text)
    assert header.startswith("| L | Newton iterations | last residual | max diff |")
    assert [row.split(" | ")[0] for row in rows] == ["| 8", "| 16"]
    for row in rows:
        cells = row.strip("| ").split(" | ")
        assert 1 <= int(cells[1]) <= 16  # Newton iterations, at most the length
        assert float(cells[3]) <= 1e-9  # float64: Newton equals the loop

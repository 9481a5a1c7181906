"""Smoke run of benchmarks/ssm.py at tiny sizes: the tables, the file and the command."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "ssm.py"


def test_ssm_benchmark_smoke(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # the script's sibling modules
    spec = importlib.util.spec_from_file_location("bench_ssm", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_ssm", bench)  # dataclasses look it up
    spec.loader.exec_module(bench)
    out = tmp_path / "ssm.md"
    argv = ["--batch", "1", "--d-model", "2", "--d-state", "4", "--lengths", "8", "16"]
    argv += ["--repeats", "1", "--gen-tokens", "2", "--threads", "1", "--out", str(out)]
    threads = torch.get_num_threads()
    try:
        text = bench.main(argv)
    finally:
        torch.set_num_threads(threads)  # --threads 1 must not leak into other tests
    assert out.read_text() == text + "\n"
    assert "command: `python benchmarks/ssm.py --batch 1 --d-model 2" in text
    rows = [line for line in text.splitlines() if line.startswith("| S4")]
    # 2 layers x 2 lengths x (naive, lean) + 2 layers x (step, generator, 2 prefixes)
    assert len(rows) == 8 + 8
    assert "| S4D | 16 | lean |" in text and "| S4 | 8 | naive | " in text
    assert "StepGenerator (eager (no CUDA))" in text or "StepGenerator (CUDA graph)" in text

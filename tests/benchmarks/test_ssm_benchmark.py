"""Smoke run of benchmarks/ssm.py at tiny sizes: the tables, the file and the header."""

from __future__ import annotations


def test_ssm_benchmark_smoke(run_script):
    argv = ["--batch", "1", "--d-model", "2", "--d-state", "4", "--lengths", "8", "16"]
    argv += ["--repeats", "1", "--gen-tokens", "2", "--threads", "1"]
    text = run_script("ssm", argv)  # checks the file and the header, restores torch threads
    assert "command: `python benchmarks/ssm.py --batch 1 --d-model 2" in text
    rows = [line for line in text.splitlines() if line.startswith("| S4")]
    # 2 layers x 2 lengths x (naive, lean) + 2 layers x (step, generator, 2 prefixes)
    assert len(rows) == 8 + 8
    assert "| S4D | 16 | lean |" in text and "| S4 | 8 | naive | " in text
    assert "StepGenerator (eager (no CUDA))" in text or "StepGenerator (CUDA graph)" in text

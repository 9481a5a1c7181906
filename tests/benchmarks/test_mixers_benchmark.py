"""Smoke run of benchmarks/mixers.py at tiny sizes: every registered mixer timed in both
modes (FNet's causal refusal as a note), the growth summary, the decoding table and the
header (slow: seven mixers, two modes)."""

from __future__ import annotations

import re

import pytest

from sciml_seq.mixers import MIXERS


@pytest.mark.slow
def test_mixers_benchmark_smoke(run_script):
    argv = ["--batch-size", "1", "--dim", "8", "--heads", "2", "--lengths", "16", "32"]
    argv += ["--repeats", "1", "--window", "4", "--decode-lengths", "4", "8"]
    argv += ["--decode-repeats", "2", "--threads", "1"]
    text = run_script("mixers", argv)  # checks the file and the header, restores torch threads
    bidirectional, causal = text.split("## Causal")[0], text.split("## Causal")[1]
    for name in MIXERS:
        timed = rf"\| {name} \| 32 \| \d+\.\d\d \| \d+\.\d\d \|"
        assert re.search(timed, bidirectional), name
        if name != "fnet":
            assert re.search(timed, causal), name
    assert "| fnet | 16 | — |" in causal and "causal: expected False for mixer='fnet'" in causal
    assert causal.count("(baseline)") == 1 and bidirectional.count("(baseline)") == 1
    assert re.search(r"\| 8 \| \d+\.\d \| \d+\.\d \|", text)  # decoding at prefix 8


@pytest.mark.slow
def test_long_range_mixers_smoke(run_script):
    """long_range.py --mixers: one transformer row per mixer, sized to the same budget."""
    argv = ["--task", "digits", "--model", "transformer", "--mixers", "fnet", "gmlp", "aaren"]
    argv += ["--params", "20000", "--epochs", "1", "--max-steps", "2", "--n-train", "16"]
    argv += ["--n-test", "8", "--threads", "1"]
    pytest.importorskip("sklearn")  # the digits task
    text = run_script("long_range", argv)
    for mixer in ("fnet", "gmlp", "aaren"):
        row = next(line for line in text.splitlines() if f"| transformer[{mixer}] |" in line)
        assert f"mixer={mixer}, no positional encoding" in row
        params = int(row.split("|")[6])
        assert abs(params - 20000) < 500, row  # the width refitted to the budget
    assert "causal" in next(line for line in text.splitlines() if "[aaren]" in line)

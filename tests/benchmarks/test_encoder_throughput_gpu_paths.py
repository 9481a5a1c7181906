"""benchmarks/encoder_throughput.py, what protects a GPU run: a forced attention kernel
(--sdpa) that PyTorch cannot run stops the script before any timing, with the reason
(CPU: no memory-efficient kernel; CUDA: FlashAttention without --amp); an encoder that
fails gets a row with its error while the other rows are still measured."""

from __future__ import annotations

import importlib

import pytest

from .conftest import table_lines

torch = pytest.importorskip("torch")

ARGV = ["--batch", "2", "--length", "8", "--dim", "8", "--heads", "2", "--layers", "2"]


@pytest.fixture
def bench(run_script):
    """The script's module (``run_script`` puts benchmarks/ on the path and restores threads)."""
    return importlib.import_module("encoder_throughput")


def test_check_sdpa_reasons(bench):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert bench.check_sdpa("auto", cpu, False, 2, [4]) is None
    assert bench.check_sdpa("flash", cpu, False, 2, [4, 8]) is None  # CPU flash takes float32
    assert bench.check_sdpa("math", cpu, True, 2, [4]) is None
    reason = bench.check_sdpa("efficient", cpu, False, 2, [4])
    assert reason.startswith("no efficient kernel for head size 4, float32, on cpu (")
    # decided before any CUDA call, so it is checked without a GPU
    assert bench.check_sdpa("flash", cuda, False, 2, [4]) == (
        "FlashAttention on CUDA needs float16/bfloat16 inputs: add --amp"
    )


def test_forced_kernel_that_cannot_run_stops_the_script(bench, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        bench.main([*ARGV, "--sdpa", "efficient", "--out", str(tmp_path / "x.md")])
    assert stop.value.code == 2
    assert "--sdpa efficient: no efficient kernel for head size 4" in capsys.readouterr().err
    assert not (tmp_path / "x.md").exists()


def test_forced_flash_runs_on_the_cpu(run_script):
    text = run_script("encoder_throughput", [*ARGV, "--sdpa", "flash", "--repeats", "1"])
    assert "SDPA backend flash" in text


def test_a_failing_encoder_gets_a_row_and_the_others_run(bench, run_script, monkeypatch):
    calls = []
    timed = bench.report.median_seconds

    def median_seconds(run, sync, repeats, warmup=2):
        calls.append(run)
        if len(calls) == 2:
            raise RuntimeError("boom\nsecond line")
        return timed(run, sync, repeats, warmup)

    monkeypatch.setattr(bench.report, "median_seconds", median_seconds)
    text = run_script("encoder_throughput", [*ARGV, "--repeats", "1"])
    rows = table_lines(text)
    assert len(rows) == 1 + 5 and len(calls) == 5
    assert rows[2].startswith("| tied, 2 steps | ")
    assert rows[2].endswith("| — | — | — | — | — | | failed: RuntimeError: boom |")
    assert "| 1.00 |" in rows[1] and rows[3].endswith("| |")

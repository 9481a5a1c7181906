"""benchmarks/report.py, and the scripts without a smoke test elsewhere, at tiny settings."""

from __future__ import annotations

import importlib
import platform

import pytest

from sciml_seq.errors import OptionError

from .conftest import table_lines

torch = pytest.importorskip("torch")


@pytest.fixture
def report(run_script):  # run_script puts benchmarks/ on sys.path and restores torch threads
    return importlib.import_module("report")


def test_median_seconds_times_each_call_with_its_sync(report, monkeypatch):
    """Scripted clock: the 3 timed intervals are 5, 1 and 3 s, so the median is 3."""
    log: list[str] = []
    clock = iter([0.0, 5.0, 10.0, 11.0, 20.0, 23.0])

    def perf_counter() -> float:
        log.append("clock")
        return next(clock)

    monkeypatch.setattr(report.time, "perf_counter", perf_counter)
    seconds = report.median_seconds(
        lambda: log.append("run"), lambda: log.append("sync"), repeats=3, warmup=2
    )
    assert seconds == 3.0
    timed = ["clock", "run", "sync", "clock"]
    assert log == ["run", "run", "sync", *timed, *timed, *timed]


def test_versions_lists_python_then_each_package(report):
    text = report.versions(["torch", "no-such-distribution-xyz"])
    assert text == (
        f"python {platform.python_version()}, torch {torch.__version__}, "
        "no-such-distribution-xyz missing"
    )


def test_command_is_the_script_path_and_quoted_arguments(report):
    command = report.command("/any/folder/ssm.py", ["--rows", "a b", "--n", "1"])
    assert command == "python benchmarks/ssm.py --rows 'a b' --n 1"


def test_set_threads_pins_torch_and_checks_the_count(report):
    report.set_threads(1)
    assert torch.get_num_threads() == 1
    report.set_threads(None)  # leaves the setting
    assert torch.get_num_threads() == 1
    for bad in (0, 2.0, True):
        with pytest.raises(OptionError, match=r"^threads: expected an integer >= 1; got "):
            report.set_threads(bad)


def test_threads_line_reports_torch_threads(report):
    report.set_threads(1)
    assert report.threads().startswith("torch 1; ")


def test_publish_prints_writes_and_returns(report, monkeypatch, tmp_path, capsys):
    """``--out`` given: that file; ``None``: ``RESULTS / name`` (here a temporary folder)."""
    out = tmp_path / "given" / "table.md"
    assert report.publish("| a |", out, "unused.md") == "| a |"
    assert out.read_text() == "| a |\n"
    monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
    assert report.publish("| b |", None, "bench_cpu.md") == "| b |"
    assert (tmp_path / "results" / "bench_cpu.md").read_text() == "| b |\n"
    assert not (tmp_path / "results" / "unused.md").exists()
    printed = capsys.readouterr().out
    assert "| a |" in printed and "| b |" in printed and f"wrote {out}" in printed


def test_scot_smoke(run_script):
    argv = ["--size", "64", "--batch", "1", "--embed-dim", "12", "--repeats", "1"]
    argv += ["--warmup", "1", "--modes", "infer", "--precisions", "fp32", "--threads", "1"]
    text = run_script("scot", argv)
    assert "| sciml_seq eager | infer | fp32 |" in text


def test_scot_compares_with_the_official_h100_numbers_only_at_their_sizes_on_cuda(run_script):
    import argparse

    scot = importlib.import_module("scot")
    at = argparse.Namespace(device="cuda", preset="T", size=128, batch=32)
    train = scot.Row("sciml_seq CUDA graph", "train", "bf16", ms=32e3 / 710.0, peak_mib=0, batch=32)
    infer = scot.Row("sciml_seq eager", "infer", "fp32", ms=32e3 / 1114.0, peak_mib=0, batch=32)
    assert scot._vs_official_h100(at, train) == "5.00-5.59x"  # 710 / 142, 710 / 127
    assert scot._vs_official_h100(at, infer) == "2.00x"  # 1114 / 557
    for other in ({"device": "cpu"}, {"size": 64}, {"batch": 16}, {"preset": "B"}):
        assert scot._vs_official_h100(argparse.Namespace(**{**vars(at), **other}), train) == ""


def test_solvers_smoke(run_script):
    argv = ["--batch", "4", "--features", "4", "--hidden", "8", "--repeats", "1"]
    argv += ["--host-repeats", "1", "--skip-jax", "--threads", "1"]
    text = run_script("solvers", argv)
    assert "| torchdiffeq | direct |" in text and "| 1.00 |" in text
    for row in ("| native | direct |", "| native | checkpoint |", "| native | backsolve |",
                "| native seminorm | backsolve |", "| scipy (RK45) | interpolating |"):
        assert row in text
    rows = {line.split("|")[1].strip(): line for line in table_lines(text)}
    assert rows["sample"].endswith("x fewer |") and rows["batch"].endswith("| 1.00x fewer |")


@pytest.mark.slow
@pytest.mark.parametrize("x64", [False, True])  # True: as after a float64 JAX test
def test_pde_data_smoke(run_script, x64):
    pytest.importorskip("exponax")
    import jax

    with jax.enable_x64(x64):
        text = run_script("pde_data", ["--names", "kdv_1d", "--n", "1", "--repeats", "1"])
    assert "| kdv_1d | cpu (numpy, float64) | 256 |" in text
    dtype = "float64" if x64 else "float32"
    assert text.count(f"| exponax KortewegDeVries ETDRK4 ({dtype}) |") == 3


@pytest.mark.slow
def test_operator_training_smoke(run_script):
    argv = ["--models", "fno", "--n-train", "2", "--n-test", "2", "--resolution", "16"]
    argv += ["--n-times", "3", "--seconds", "2", "--batch-size", "2", "--precision", "fp32"]
    text = run_script("operator_training", [*argv, "--threads", "1"])
    assert "| fno |" in text and "| persistence u(t)=u(0) |" in text

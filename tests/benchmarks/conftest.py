"""Run a benchmark script's ``main(argv)`` in-process and check the results file it writes."""

from __future__ import annotations

import importlib
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def table_lines(text: str) -> list[str]:
    """The Markdown table rows of a results text, header row first (no separator)."""
    return [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]


def assert_header(text: str, script: str, argv: list[str]) -> None:
    """Lines 3 to 6 of a results file: device, threads, versions, the command as run."""
    lines = text.splitlines()
    assert lines[1] == "", lines[:2]  # a title, then the header
    device, threads, versions, command = lines[2:6]
    assert re.fullmatch(r"device: CPU \(.+\)  ", device), device
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    pattern = rf"threads: torch {torch.get_num_threads()}; {cpus} CPUs visible(; load .*)?  "
    assert re.fullmatch(pattern, threads), threads
    assert re.fullmatch(r"versions: python 3\.[\d.]+(, [\w-]+ \S+)+  ", versions), versions
    expected = " ".join(["python", f"benchmarks/{script}.py", *map(shlex.quote, argv)])
    assert command == f"command: `{expected}`  "


@pytest.fixture
def run_script(monkeypatch, tmp_path) -> Callable[[str, list[str]], str]:
    """``run_script(name, argv)``: ``benchmarks/<name>.py``'s ``main`` with ``--out`` in tmp_path.

    Checks that the file holds the returned text and that its header is the common one
    (read while the script's torch thread setting still holds); torch's thread count is
    restored afterwards.
    """
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()

    def run(name: str, argv: list[str]) -> str:
        out = tmp_path / f"{name}.md"
        argv = [*argv, "--out", str(out)]
        text = importlib.import_module(name).main(argv)
        assert out.read_text() == text + "\n"
        assert_header(text, name, argv)
        return text

    yield run
    torch.set_num_threads(threads)

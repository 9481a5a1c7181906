"""What every benchmark script shares: thread pinning, timing, the results header, the file.

Every results file under ``benchmarks/results/`` starts with the same four
lines (:func:`header`): the device, the CPU threads, the library versions and
the exact command, e.g.::

    device: NVIDIA H100 80GB HBM3
    threads: torch 16; 16 CPUs visible; load average 0.4 at the end
    versions: python 3.11.7, torch 2.11.0, numpy 2.4.6
    command: `python benchmarks/ssm.py --device cuda`

The scripts run as ``python benchmarks/<name>.py``, so this module is imported
from their folder.
"""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: Where the committed tables live: ``benchmarks/results/<name>.md``.
RESULTS = Path(__file__).parent / "results"


def set_threads(threads: int | None) -> None:
    """Pin torch's CPU threads (1 avoids spin-waiting on a shared, oversubscribed CPU).

    ``None`` leaves torch's default.  JAX/XLA and numpy are not pinned.
    """
    if threads is None:
        return
    import torch

    from sciml_seq.checks import check_int

    torch.set_num_threads(check_int("threads", threads))


def median_seconds(
    run: Callable[[], None], sync: Callable[[], None], repeats: int, warmup: int = 2
) -> float:
    """Median wall time of ``run`` over ``repeats`` calls after ``warmup`` calls.

    ``sync`` waits for queued device work (``torch.cuda.synchronize``,
    ``jax.block_until_ready`` of the last result, or nothing on the CPU); it runs
    after the warm-up and after every timed call, inside the timed interval.
    """
    for _ in range(warmup):
        run()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def device_name(device: str) -> str:
    """The GPU's name for ``"cuda"`` / ``"cuda:<i>"``, else ``"CPU (<processor>)"``.

    The GPU is named through torch when the script loaded it, else through JAX.
    """
    if not device.startswith("cuda"):
        return f"CPU ({platform.processor() or platform.machine()})"
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.cuda.get_device_name(torch.device(device))
    import jax

    index = int(device.partition(":")[2] or 0)
    return jax.devices("gpu")[index].device_kind


def threads() -> str:
    """The run's CPU threads (torch's; JAX and numpy are not pinned), CPUs visible, load.

    Called when the run is over, so the load average is the one the run ended with.
    """
    torch = sys.modules.get("torch")
    pinned = f"torch {torch.get_num_threads()}" if torch is not None else "not pinned (no torch)"
    visible = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [pinned, f"{visible} CPUs visible"]
    if hasattr(os, "getloadavg"):
        parts.append(f"load average {os.getloadavg()[0]:.1f} at the end")
    return "; ".join(parts)


def versions(packages: Sequence[str]) -> str:
    """``"python 3.11.7, torch 2.13.0, ..."``: Python's version, then each installed package's.

    A package that is not installed is listed as ``"<name> missing"``.
    """
    parts = [f"python {platform.python_version()}"]
    for name in packages:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} missing")
    return ", ".join(parts)


def command(script: str, argv: list[str] | None) -> str:
    """``python benchmarks/<script name> <arguments>`` (``argv`` or, when ``None``, the process's).

    Arguments are shell-quoted where needed, so the line can be pasted back.
    """
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", f"benchmarks/{Path(script).name}", *args])


def header(script: str, argv: list[str] | None, device: str, packages: Sequence[str]) -> list[str]:
    """The four header lines of a results file (Markdown line breaks: two trailing spaces).

    ``script``: the benchmark's ``__file__``; ``argv``: its arguments (``None``:
    the process's); ``device``: ``"cpu"``, ``"cuda"`` or ``"cuda:<i>"``;
    ``packages``: the distributions whose versions matter to the numbers.
    """
    return [
        f"device: {device_name(device)}  ",
        f"threads: {threads()}  ",
        f"versions: {versions(packages)}  ",
        f"command: `{command(script, argv)}`  ",
    ]


def write(path: Path, text: str) -> None:
    """Write ``text`` and a final newline to ``path`` (folders created) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(f"wrote {path}")


def publish(text: str, out: Path | None, name: str) -> str:
    """Print ``text``, :func:`write` it to ``out`` or ``results/<name>``, and return it.

    The end of every script's ``main``: ``out`` is its ``--out`` (``None``: the
    committed table ``RESULTS / name``).
    """
    print("\n" + text)
    write(out or RESULTS / name, text)
    return text

"""``python -m sciml_seq.julia doctor | warmup``.

``doctor`` reports whether the Julia backend can start — juliacall installed,
a Julia executable found (juliacall's/juliapkg's documented lookup: environment
variables, ``julia`` or ``juliaup`` on PATH, an earlier juliapkg install), their
versions, the thread and signal settings, and whether ``sciml_seq/juliapkg.json``
points at the ``SciMLSeqJL`` package — and what to do otherwise.  It never
imports juliacall (whose import would download Julia when it is missing).
Exit status: 0 when a Julia solve can start, 1 when something is missing.

``warmup`` starts Julia through juliacall (resolving and precompiling the
Julia environment on first use: minutes), loads ``SciMLSeqJL`` and compiles the
common solve and gradient paths.  Exit status: 0 on success, 1 when Julia is
unavailable.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ..errors import UnavailableError
from .backend import AUTO_INSTALL_ENV, MIN_JULIA, julia_status

JULIAPKG_JSON = Path(__file__).resolve().parents[1] / "juliapkg.json"


def _package_check() -> str:
    """Where juliapkg.json's SciMLSeqJL path points, and whether a Project.toml is there."""
    try:
        deps = json.loads(JULIAPKG_JSON.read_text())
        entry = deps["packages"]["SciMLSeqJL"]
    except (OSError, ValueError, KeyError) as err:
        return f"cannot read {JULIAPKG_JSON}: {err}"
    target = (JULIAPKG_JSON.parent / entry["path"]).resolve()
    found = "ok" if (target / "Project.toml").is_file() else "MISSING Project.toml"
    return f"{JULIAPKG_JSON} -> SciMLSeqJL at {target} ({found})"


def doctor() -> int:
    """Print the report; 0 when a Julia solve can start offline, 1 otherwise."""
    status = julia_status()
    minimum = ".".join(map(str, MIN_JULIA))
    lines = [
        "sciml_seq Julia backend",
        f"  juliacall      {status.juliacall or 'not installed'}",
        f"  juliapkg       {status.juliapkg or 'not installed'}",
        f"  julia          {status.executable or 'not found'} ({status.found_by})",
        f"  julia version  {status.julia_version or '-'} (needs >= {minimum})",
        f"  juliapkg.json  {_package_check()}",
        "  threads        JULIA_NUM_THREADS={} PYTHON_JULIACALL_THREADS={}".format(
            os.environ.get("JULIA_NUM_THREADS", "-"),
            os.environ.get("PYTHON_JULIACALL_THREADS", "-"),
        ),
        "  signals        PYTHON_JULIACALL_HANDLE_SIGNALS={}".format(
            os.environ.get("PYTHON_JULIACALL_HANDLE_SIGNALS", "-")
        ),
        f"  auto-install   {AUTO_INSTALL_ENV}={os.environ.get(AUTO_INSTALL_ENV, '-')} "
        "(otherwise juliapkg runs offline; `warmup` installs the Julia packages)",
    ]
    if status.ok:
        lines.append("status: OK, the Julia backend can start")
        lines.append(
            "next: `python -m sciml_seq.julia warmup` once (first start resolves and "
            "precompiles the Julia packages: several minutes)"
        )
    else:
        if status.juliacall is None:
            missing = "juliacall is not installed"
        elif status.problem is not None:
            missing = status.problem
        else:
            missing = "Julia is missing"
        lines.append(f"status: NOT OK, {missing}")
        lines.append(f"next step: {status.next_step}")
    print("\n".join(lines))
    return 0 if status.ok else 1


def warmup() -> int:
    from .backend import warmup as run_warmup

    start = time.perf_counter()
    try:
        seconds = run_warmup()
    except UnavailableError as err:
        print(f"warmup: {err}", file=sys.stderr)
        return 1
    print(
        f"warmup: Julia started and SciMLSeqJL compiled in {time.perf_counter() - start:.1f} s "
        f"(solve and gradient paths: {seconds:.1f} s)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["doctor"]:
        return doctor()
    if args == ["warmup"]:
        return warmup()
    print("usage: python -m sciml_seq.julia {doctor|warmup}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

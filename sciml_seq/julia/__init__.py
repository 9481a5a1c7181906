"""The Python side of the Julia engine (DifferentialEquations.jl via juliacall).

Importing this package imports neither juliacall nor Julia: the runtime starts
the first time a Julia solve is asked for (``ODEBlock(..., engine="julia")``,
:class:`~sciml_seq.julia.backend.JuliaBackend`, ``python -m sciml_seq.julia
warmup``).  Before that, :func:`~sciml_seq.julia.backend.julia_status` says
whether it can start, without starting it; ``python -m sciml_seq.julia doctor``
prints that report.  See ``docs/julia.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "JuliaBackend": "backend",
    "JuliaStatus": "backend",
    "julia_status": "backend",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'sciml_seq.julia' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = sorted(_LAZY)

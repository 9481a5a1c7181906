"""The comparison instrument: adaptive vs fixed depth on real tasks.

A grid of cells — task (:mod:`.tasks`) x depth scheme x engine x regulariser
x seed (:mod:`.schemes`) — each trained on the same data order from the same
initial weights with the same budget (:mod:`.budget`), measured
(:mod:`.torch_runner`) and written as one JSON record (:mod:`.records`);
tables, Pareto plots, NFE histograms and the paper check are views of the
records (:mod:`.report`).  :func:`run_grid` runs a :class:`GridConfig` and
resumes after a kill.  Names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Budget": "budget",
    "GridConfig": "grid",
    "run_grid": "grid",
    "read_records": "records",
    "Cell": "schemes",
    "Scheme": "schemes",
    "TASKS": "tasks",
    "Split": "tasks",
    "Task": "tasks",
    "TaskSizes": "tasks",
    "make_task": "tasks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

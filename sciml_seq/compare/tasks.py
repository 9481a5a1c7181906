"""Tasks of the comparison instrument by name: :data:`TASKS` and :func:`make_task`.

The protocol (:class:`Task`, :class:`Split`, :class:`TaskSizes`,
:func:`metric_value`) is :mod:`sciml_seq.compare.task`; the seven built-in
tasks are :mod:`sciml_seq.compare.builtin_tasks`; this module names them and
re-exports both, so ``from sciml_seq.compare.tasks import Task, make_task``
is all a user needs::

    task = make_task("pendulum", quick=True, seed=0)
    task.train.x.shape, task.metric             # ((256, 2), 'rel_l2')
    task = make_task("etth1", path="data/ETT")  # the folder holding ETTh1.csv

Your own task, from your arrays, is :meth:`Task.from_arrays` (example in
:mod:`sciml_seq.compare.task`); register a builder of it in :data:`TASKS` to
run it by name.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from ..checks import check_choice, check_int, format_choices
from ..errors import OptionError
from .builtin_tasks import (
    digits_task,
    etth1_task,
    irregular_task,
    ks_task,
    lotka_volterra_task,
    oscillator_task,
    pendulum_task,
)
from .task import (
    LOSSES,
    METRICS,
    QUICK_SIZES,
    STATES,
    TARGETS,
    Split,
    Task,
    TaskSizes,
    check_quick,
    metric_value,
)

__all__ = [
    "LOSSES",
    "METRICS",
    "QUICK_SIZES",
    "STATES",
    "TARGETS",
    "TASKS",
    "Split",
    "Task",
    "TaskSizes",
    "make_task",
    "metric_value",
]

TASKS: dict[str, Callable[..., Task]] = {
    "oscillator": oscillator_task,
    "pendulum": pendulum_task,
    "lotka_volterra": lotka_volterra_task,
    "irregular": irregular_task,
    "etth1": etth1_task,
    "digits": digits_task,
    "ks": ks_task,
}
"""Builders by name, each called as ``builder(quick=..., seed=..., **options)``.

Register your own: ``TASKS["mine"] = lambda *, quick=False, seed=0: Task.from_arrays(...)``;
a builder that reads files takes ``path=``."""


def make_task(
    name: str,
    *,
    quick: bool = False,
    seed: int = 0,
    path: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Task:
    """The task ``name`` of :data:`TASKS`, at full or ``quick`` sizes, its data drawn by ``seed``.

    ``path`` reaches the builders that read files (``etth1``: the folder holding
    ``ETTh1.csv`` or the csv); the other builders ignore it, so one data folder
    can serve a whole grid.  ``options`` are the builder's own keywords (sizes,
    horizons, ...).

    Raises
    ------
    OptionError: an unknown name (the message lists the choices), an option the
        builder does not take, or a missing ``path`` for a task that reads a file.
    """
    builder = TASKS[check_choice("name", name, tuple(TASKS))]
    check_quick(quick)
    parameters = inspect.signature(builder).parameters
    takes = [p for p in parameters if p not in ("quick", "seed", "path")]
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [key for key in options if key not in takes]
    if unknown and not open_ended:
        accepted = format_choices(takes) if takes else "none"
        raise OptionError(f"options: task {name!r} takes {accepted}; got {format_choices(unknown)}")
    if "path" in parameters:
        options["path"] = path
    task = builder(quick=quick, seed=check_int("seed", seed, low=0), **options)
    if not isinstance(task, Task):
        raise OptionError(
            f"TASKS[{name!r}]: expected a builder returning a Task; got {type(task).__name__}"
        )
    return task

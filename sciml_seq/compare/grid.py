"""The comparison grid: its configuration (arguments or TOML) and the resumable run.

::

    from sciml_seq.compare import GridConfig, run_grid

    config = GridConfig(tasks=("pendulum",), schemes=("tied-8", "dopri5-1e-3", "act-8"),
                        regularizers=("none", "error"), seeds=3, budget_steps=500)
    records = run_grid(config, "outputs/compare")   # one JSON line per finished cell

The same from the command line: ``sciml-seq compare --task pendulum --schemes
tied-8,dopri5-1e-3,act-8 --regularizers none,error --seeds 3 --budget-steps 500
--out outputs/compare``, or ``sciml-seq compare --config grid.toml`` with the
same keys (:meth:`GridConfig.from_toml`).  Rerunning into the same folder
skips every cell that already has a record (a killed grid resumes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_choice, check_int
from ..errors import OptionError
from .budget import Budget
from .records import RECORDS_FILE, append_record, finished_keys, read_records
from .schemes import DEFAULT_SCHEMES, Cell, Scheme, check_regularizers, expand_cells, seeds_of

PATH_TASKS = ("etth1",)
"""Built-in tasks that read files from ``GridConfig.data``."""

RUNNERS = {"torch": "torch_runner", "jax": "jax_runner"}
"""framework -> the module (of this package) whose ``run_cell`` trains a cell."""

FRAMEWORKS = tuple(RUNNERS)


@dataclass(frozen=True)
class GridConfig:
    """Everything a comparison grid varies and holds fixed.

    Attributes
    ----------
    tasks: names of :data:`sciml_seq.compare.tasks.TASKS`, or :class:`~sciml_seq.compare.Task`
        objects (a user's own task, e.g. ``Task.from_arrays(...)``).
    schemes: depth schemes (:meth:`Scheme.parse` names, e.g. ``"rk4-8"``).
    engines: solver engines of the adaptive schemes (``"native"``, ``"torchdiffeq"``, ...).
    regularizers: of the adaptive schemes (:func:`~sciml_seq.compare.schemes.regularizations`).
    seeds: a count (``3`` = seeds 0, 1, 2) or the seeds.
    budget_steps, budget_seconds: at most one; neither = each task's ``sizes.steps``.
    quick: the tasks' quick sizes (tests, ``make demo``).
    data: a folder for tasks that read files (``etth1``).
    device, framework, threads: where it runs (``threads``: torch CPU threads).
    """

    tasks: tuple[str | Any, ...] = ("oscillator",)
    schemes: tuple[str, ...] = DEFAULT_SCHEMES
    engines: tuple[str, ...] = ("native",)
    regularizers: tuple[str, ...] = ("none",)
    seeds: int | tuple[int, ...] = 3
    budget_steps: int | None = None
    budget_seconds: float | None = None
    quick: bool = False
    data: str | None = None
    device: str = "cpu"
    framework: str = "torch"
    threads: int = 1

    def __post_init__(self) -> None:
        from .tasks import TASKS, Task

        for name in ("tasks", "schemes", "engines", "regularizers"):
            value = getattr(self, name)
            if isinstance(value, str) or not value:
                raise OptionError(f"{name}: expected a non-empty sequence of names; got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for i, task in enumerate(self.tasks):
            if not isinstance(task, Task):
                check_choice(f"tasks[{i}]", task, tuple(TASKS))
        names = [self.task_name(t) for t in self.tasks]
        if len(set(names)) != len(names):
            raise OptionError(f"tasks: expected distinct task names; got {names}")
        for scheme in self.schemes:
            Scheme.parse(scheme)
        check_choice("framework", self.framework, FRAMEWORKS)
        _check_engines(self.engines, self.framework)
        check_regularizers(self.regularizers)
        _check_adaptive_cells(self)
        object.__setattr__(self, "seeds", seeds_of(self.seeds))
        if self.budget_steps is not None or self.budget_seconds is not None:
            self.budget(None)
        check_int("threads", self.threads)
        if not isinstance(self.device, str) or not (
            self.device == "cpu" or self.device.startswith("cuda")
        ):
            raise OptionError(f"device: expected 'cpu' or 'cuda[:i]'; got {self.device!r}")

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> GridConfig:
        """Read the attributes from a TOML file (same names; lists for the tuples)."""
        import tomllib

        try:
            with open(path, "rb") as f:
                table = tomllib.load(f)
        except FileNotFoundError:
            raise OptionError(f"config: expected a TOML file; {path} does not exist") from None
        except tomllib.TOMLDecodeError as err:
            raise OptionError(f"config: {path} is not valid TOML: {err}") from None
        return cls.from_dict(table, source=str(path))

    @classmethod
    def from_dict(cls, table: dict[str, Any], source: str = "config") -> GridConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise OptionError(f"{source}: unknown keys {unknown}; expected some of {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
        return cls(**values)

    def replace(self, **changes: Any) -> GridConfig:
        return dataclasses.replace(self, **changes)

    def budget(self, task: Any) -> Budget:
        """The cell budget: the configured one, else ``task``'s default steps."""
        if self.budget_steps is not None or self.budget_seconds is not None:
            return Budget(self.budget_steps, self.budget_seconds)
        return Budget(steps=self.sizes(task).steps)

    def sizes(self, task: Any) -> Any:
        return task.quick_sizes if self.quick else task.sizes

    @staticmethod
    def task_name(task: Any) -> str:
        return task if isinstance(task, str) else task.name

    def cells(self) -> list[Cell]:
        """Every cell of the grid (seeds innermost)."""
        schemes = tuple(Scheme.parse(s) for s in self.schemes)
        names = tuple(self.task_name(t) for t in self.tasks)
        return expand_cells(names, schemes, self.engines, self.regularizers, self.seeds)

    def load_tasks(self) -> dict[str, Any]:
        """Name -> :class:`~sciml_seq.compare.Task`, built-in ones built at this config's sizes."""
        from .tasks import make_task

        options = {"path": self.data} if self.data else {}
        out = {}
        for task in self.tasks:
            if isinstance(task, str):
                needs_path = task in PATH_TASKS
                task = make_task(task, quick=self.quick, **(options if needs_path else {}))
            out[task.name] = task
        return out


def _check_engines(engines: tuple[str, ...], framework: str) -> None:
    from ..engines import ENGINES

    known = tuple(name for name, spec in ENGINES.items() if framework in spec.frameworks)
    for i, engine in enumerate(engines):
        check_choice(f"engines[{i}]", engine, known)


def task_fingerprint(task: Any) -> str:
    """A digest of a task's arrays and loss/metric names: a changed task is a new cell."""
    digest = hashlib.sha256()
    for split in (task.train, task.val, task.test):
        for array in (split.x, split.y, split.weight):
            if array is not None:
                digest.update(str((array.shape, array.dtype)).encode())
                digest.update(np.ascontiguousarray(array).tobytes())
    for rule in (task.loss, task.metric, task.state, task.target):
        digest.update(
            str(rule if isinstance(rule, str) else getattr(rule, "__qualname__", rule)).encode()
        )
    return digest.hexdigest()[:16]


def _check_adaptive_cells(config: GridConfig) -> None:
    """Build the solve options of every adaptive scheme x engine x regulariser and check
    the block options, as ``ODEBlock`` would when the cell starts: a grid that cannot run
    fails here, before any cell trains."""
    from ..ode import (
        TAYLOR_ORDER,
        check_block_engine,
        check_block_options,
        check_block_regularizers,
    )
    from ..solver import SolveOptions
    from .schemes import Regularization

    for text in config.schemes:
        scheme = Scheme.parse(text)
        if not scheme.adaptive:
            continue
        for engine in config.engines:
            where = f"scheme {scheme.name} on engine {engine!r}"
            try:
                tol = scheme.tolerance
                solver = SolveOptions(method=scheme.method, rtol=tol, atol=tol, engine=engine)
                solver = solver.for_framework(config.framework)
                for spec in config.regularizers:
                    where = f"scheme {scheme.name} on engine {engine!r} with regularizer {spec!r}"
                    reg = Regularization.parse(spec)
                    check_block_options(1.0, reg.steer, reg.names)
                    check_block_engine(solver, reg.names)
                    check_block_regularizers(solver, reg.names, TAYLOR_ORDER, config.framework)
            except OptionError as err:
                raise OptionError(f"{where}: {err}") from None


def versions() -> dict[str, str]:
    """Python and the versions of the packages a record depends on."""
    out = {"python": platform.python_version()}
    for name in ("sciml-seq", "torch", "numpy", "jax", "equinox", "diffrax", "torchdiffeq"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def device_name(device: str, framework: str = "torch") -> str:
    """The GPU's name for ``"cuda[:i]"`` (through the framework), else the CPU's."""
    if device.startswith("cuda") and framework == "jax":
        import jax

        return jax.devices("gpu")[int(device.partition(":")[2] or 0)].device_kind
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()})"


CellProgress = Callable[[Cell, int, int, float], None]
"""``progress(cell, step, total_steps_or_0, loss)`` during a cell's training."""


def run_grid(
    config: GridConfig,
    out: str | os.PathLike[str],
    *,
    progress: CellProgress | None = None,
    on_cell: Callable[[Cell, dict[str, Any] | None], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every cell without a record in ``out/records.jsonl``; return all records of the grid.

    ``on_cell(cell, record)`` is called as each cell starts (``record=None``)
    and after it is written.  A cell's record holds its configuration, the
    measurements of :func:`~sciml_seq.compare.torch_runner.run_cell`, the
    versions, the device and ``key`` (the digest that a rerun skips on).
    """
    runner = importlib.import_module(f".{RUNNERS[config.framework]}", __package__)
    if config.framework == "torch":
        import torch

        torch.set_num_threads(config.threads)
    path = Path(out) / RECORDS_FILE
    done = finished_keys(path)
    tasks = config.load_tasks()
    fingerprints = {name: task_fingerprint(task) for name, task in tasks.items()}
    keys = []
    for cell in config.cells():
        task = tasks[cell.task]
        sizes, budget = config.sizes(task), config.budget(task)
        context = {
            "task_data": fingerprints[cell.task],
            "budget": budget.as_dict(),
            "sizes": dataclasses.asdict(sizes),
            "quick": config.quick,
            "data": config.data,
            "device": config.device,
            "framework": config.framework,
        }
        key = cell.key(context)
        keys.append(key)
        if key in done:
            continue
        if on_cell is not None:
            on_cell(cell, None)
        total = budget.steps or 0

        def report(step: int, loss: float, cell: Cell = cell, total: int = total) -> None:
            if progress is not None:
                progress(cell, step, total, loss)

        started = time.time()
        numbers = runner.run_cell(task, cell, sizes, budget, config.device, report)
        record = {
            "key": key,
            "task": cell.task,
            "metric": task.metric if isinstance(task.metric, str) else "custom",
            "name": cell.name,
            "scheme": cell.scheme.name,
            "scheme_kind": cell.scheme.kind,
            "engine": cell.engine,
            "regularizer": cell.regularizer,
            "seed": cell.seed,
            **context,
            **numbers,
            "versions": versions(),
            "device_name": device_name(config.device, config.framework),
            "threads": config.threads,
            "argv": sys.argv,
            "started": started,
            "finished": time.time(),
        }
        append_record(path, record)
        done.add(key)
        if on_cell is not None:
            on_cell(cell, record)
    wanted = set(keys)
    return [r for r in read_records(path) if r.get("key") in wanted]

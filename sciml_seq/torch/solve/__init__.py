"""One ODE-solve front end for PyTorch, over several engines.

``solve(field, y0, ts, solver=SolveOptions(...))`` integrates ``dy/dt =
field(t, y)`` and returns the states at ``ts`` with what the solve cost
(:class:`~sciml_seq.stats.SolveStats`), its outcome and, on request, per-step
records.  The options may also be given as keywords (``solve(field, y0, ts,
method="rk4", n_steps=8)``), which build the same
:class:`~sciml_seq.solver.SolveOptions`.

Engines (:data:`sciml_seq.engines.ENGINES`; each a module of this package
behind :data:`ENGINE_MODULES`): ``"native"`` (default; :mod:`.native`),
``"torchdiffeq"``, ``"torchode"``, and the host engines ``"scipy"`` and
``"julia"`` (:mod:`.host`).

Conventions (shared with :mod:`sciml_seq.jax.solve`):

- ``y0`` has shape ``(batch, *state)``; ``ts`` has shape ``(n_times,)``, strictly
  increasing or strictly decreasing (integrating backwards), ``n_times >= 1``;
  ``Solution.ys`` has shape ``(batch, n_times, *state)`` and ``ys[:, 0] == y0``.
- The field is called as ``field(t, y)`` with ``t`` of shape ``(batch,)`` in the
  dtype of ``y`` and ``y`` of shape ``(batch, *state)``; it returns ``dy/dt`` of
  the same shape and dtype as ``y``.
- Fixed-step methods step on :func:`sciml_seq.methods.fixed_grid`: every output
  time is a grid point, so outputs are solver states, never interpolations.
- Counts are per sample, ``(batch,)``; ``stats.nfe_batch`` counts the calls of
  the batched field.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import Tensor

from ...errors import OptionError, SolverError, UnavailableError
from ...solver import SolveOptions, failure_message, solve_options
from ...stats import RESULTS, StepRecord
from .core import (
    Counter,
    EngineOutput,
    Field,
    FieldWrapper,
    Problem,
    Solution,
    check_inputs,
    reads_values,
)

__all__ = ["ENGINE_MODULES", "Field", "Solution", "SolveOptions", "available_methods", "solve"]

ENGINE_MODULES = {
    "native": "sciml_seq.torch.solve.native",
    "torchdiffeq": "sciml_seq.torch.solve.torchdiffeq_engine",
    "torchode": "sciml_seq.torch.solve.torchode_engine",
    "scipy": "sciml_seq.torch.solve.host",
    "julia": "sciml_seq.torch.solve.host",
}
"""Engine name -> the module that solves with it (imported on first use)."""

_PACKAGES = {"torchdiffeq": "torchdiffeq", "torchode": "torchode"}


def _engine(name: str):
    package = _PACKAGES.get(name)
    if package is not None and importlib.util.find_spec(package) is None:
        raise UnavailableError(
            f"engine={name!r} needs the {package} package: pip install {package} "
            "(or sciml-seq[torch])"
        )
    return importlib.import_module(ENGINE_MODULES[name])


def available_methods(engine: str = "native") -> tuple[str, ...]:
    """The method names ``engine`` accepts as installed (feature-detected where it matters)."""
    spec = SolveOptions(engine=engine).for_framework("torch").spec
    module = _engine(engine)
    detect = getattr(module, "available_methods", None)
    return detect() if detect is not None else spec.methods


def solve(
    field: Field,
    y0: Tensor,
    ts: Tensor,
    *,
    solver: SolveOptions | None = None,
    throw: bool = True,
    **options: Any,
) -> Solution:
    """Integrate ``dy/dt = field(t, y)`` from ``ts[0]`` and return the states at ``ts``.

    Parameters
    ----------
    field:
        ``field(t, y) -> dy/dt``; ``t`` of shape ``(batch,)``, ``y`` of shape
        ``(batch, *state)``.  An ``nn.Module`` for ``adjoint="backsolve"`` and
        the host engines to reach its parameters.
    y0:
        Initial state, shape ``(batch, *state)``, ``batch >= 1``, finite.
    ts:
        Output times, shape ``(n_times,)``, strictly monotone, at least as
        precise as ``y0``.  Decreasing times integrate backwards; one time
        returns ``y0``.
    solver:
        The :class:`~sciml_seq.solver.SolveOptions`; or give its fields as
        keywords (``method=``, ``rtol=``, ``engine=``, ...), not both.
    throw:
        Raise :class:`~sciml_seq.errors.SolverError` when a sample fails
        (``max_steps``, step-size underflow, NaN); with ``False`` inspect
        ``Solution.result`` instead (what a captured CUDA graph must do: no
        check reads the device there).

    Returns
    -------
    :class:`~sciml_seq.torch.solve.core.Solution` with ``ys`` of shape
    ``(batch, n_times, *state)``, ``stats``, ``result``, ``t_reached`` and
    ``steps``.

    Raises
    ------
    OptionError, UnavailableError, ShapeError, DTypeError, NonFiniteError:
        Invalid options or inputs, before anything is solved.
    SolverError:
        A failed solve (``throw=True``), naming the sample, the time reached
        and the step count.
    """
    opts = solve_options(solver, **options).for_framework("torch")
    module = _engine(opts.engine)
    detect = getattr(module, "available_methods", None)
    if detect is not None and opts.method not in detect():
        raise UnavailableError(
            f"method: expected one of {detect()} (what engine={opts.engine!r} provides as "
            f"installed); got {opts.method!r}"
        )
    if not isinstance(throw, bool):
        raise OptionError(f"throw: expected True or False; got {throw!r}")
    direction = check_inputs(field, y0, ts)
    if getattr(module, "check_problem", None) is not None:
        module.check_problem(field, y0, opts)
    batch, state_shape = y0.shape[0], y0.shape[1:]
    counter = Counter()
    if ts.shape[0] == 1:
        return _initial_only(y0, ts, counter, opts)
    wrapped = FieldWrapper(field, counter, state_shape, y0.dtype, direction)
    problem = Problem(
        field=wrapped,
        y0=y0.reshape(batch, -1),
        times=ts if direction > 0 else -ts,
        options=opts,
        counter=counter,
        user_field=field,
        state_shape=state_shape,
    )
    try:
        out: EngineOutput = module.solve(problem)
    finally:
        counter.forward_phase = False
    if throw:
        _raise_on_failure(out, direction, opts)
    return Solution(
        ys=out.ys.reshape(batch, ts.shape[0], *state_shape),
        ts=ts,
        result=out.result,
        t_reached=out.t_reached * direction,
        steps=_directed(out.steps, direction),
        _counts=out.stats,
        _counter=counter,
    )


def _initial_only(y0: Tensor, ts: Tensor, counter: Counter, opts: SolveOptions) -> Solution:
    """One output time: the initial state, nothing solved."""
    batch = y0.shape[0]
    zero = torch.zeros(batch, dtype=torch.int64, device=y0.device)
    return Solution(
        ys=y0[:, None],
        ts=ts,
        result=zero,
        t_reached=ts.detach().to(y0.dtype).expand(batch),
        steps=None,
        _counts={"nfe_forward": zero, "n_steps": zero, "n_accepted": zero, "n_rejected": zero},
        _counter=counter,
    )


def _directed(steps: StepRecord | None, direction: int) -> StepRecord | None:
    """Step records in the user's time: ``t`` and ``dt`` change sign for backward solves."""
    if steps is None or direction > 0:
        return steps
    return StepRecord(**{**steps.as_dict(), "t": -steps.t, "dt": -steps.dt})


def _raise_on_failure(out: EngineOutput, direction: int, opts: SolveOptions) -> None:
    """Raise ``SolverError`` for the first failed sample (one read of the outcome codes)."""
    if not reads_values(out.result):
        return
    failed = out.result != 0
    if not bool(failed.any()):
        return
    sample = int(torch.nonzero(failed)[0])
    code = RESULTS[int(out.result[sample])]
    n_steps = out.stats.get("n_steps")
    steps = int(n_steps[sample]) if n_steps is not None else -1
    reached = float(out.t_reached[sample]) * direction
    message = out.failure or failure_message(code, opts)
    if out.ys.shape[0] > 1:
        message += f" (sample {sample})"
    raise SolverError(message, t_reached=reached, n_steps=steps)

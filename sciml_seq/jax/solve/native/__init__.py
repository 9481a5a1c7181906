"""The native JAX engine: our explicit Runge--Kutta loop (``engine="native"``).

The mirror of :mod:`sciml_seq.torch.solve.native` for one example: the same
tableaus (:mod:`sciml_seq.tableaus`), initial step, PID controller, clipping
to the end time, dense output and step records, so that the two engines take
the same steps and agree to rounding in float64 (``jax.vmap`` over examples
is the torch engine's per-sample control; JAX has no batch control).

Methods: :data:`sciml_seq.engines.NATIVE_METHODS`.  Gradients (``adjoint``):

- ``"checkpoint"`` (the default in JAX): the exact gradient of the discrete
  solve through binomial checkpoints of the loop (``equinox.internal.
  while_loop(kind="checkpointed")``, as diffrax's ``RecursiveCheckpointAdjoint``);
  fixed-step methods recompute each step's stages in the backward pass;
- ``"direct"``: the same gradient, every attempt kept (``kind="bounded"``, as
  diffrax's ``DirectAdjoint``); also forward-mode differentiable;
- ``"backsolve"``: the continuous adjoint (:mod:`.backsolve`).

Counts: ``nfe_forward = initial + per_attempt * n_steps`` with ``initial = 1``
(``f(t0, y0)``) plus 1 for the initial-step heuristic when ``dt0`` is None,
``per_attempt`` the stages (one fewer for FSAL pairs); fixed methods
``stages * n_steps``.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from jax import Array

from ....stats import SolveStats
from ....tableaus import TABLEAUS, Tableau
from ..core import NONFINITE, EngineOutput, FieldWrapper, Problem, StepFailure, code, count
from .adaptive import AdaptiveLoop
from .backsolve import Backsolve
from .controller import Controller
from .fixed import run_fixed

LOOP_KINDS = {"checkpoint": "checkpointed", "direct": "bounded", "backsolve": "lax"}
"""``adjoint`` -> the kind of ``equinox.internal.while_loop`` the adaptive loop runs."""


def solve(problem: Problem) -> EngineOutput:
    """Solve ``problem`` with the native engine."""
    options = problem.options
    tab = TABLEAUS[options.method]
    if not options.adaptive:
        return _solve_fixed(problem, tab)
    ctrl = Controller.from_options(options, tab)

    def forward(field: FieldWrapper, y0: Array, times: Array) -> tuple[Array, Any]:
        out = _solve_adaptive(problem, tab, ctrl, field, y0, times, options.adjoint)
        return out.ys, out

    if options.adjoint == "backsolve":
        solver = Backsolve(tab, ctrl, forward, options.seminorm, options.max_steps, None, None)
        ys, out = solver.apply(problem.field, problem.y0, problem.times)
        return EngineOutput(
            ys=ys, stats=out.stats, result=out.result, t_reached=out.t_reached, steps=out.steps
        )
    return forward(problem.field, problem.y0, problem.times)[1]


def _solve_adaptive(
    problem: Problem,
    tab: Tableau,
    ctrl: Controller,
    field: FieldWrapper,
    y0: Array,
    times: Array,
    adjoint: str,
) -> EngineOutput:
    options = problem.options
    loop = AdaptiveLoop(field, tab, ctrl, times, options.record_steps, options.max_steps)
    state = loop.run(loop.start(y0), LOOP_KINDS[adjoint])
    state, ys = loop.finish(state, y0)
    n_steps = state.n_steps
    return EngineOutput(
        ys=ys,
        stats=SolveStats(
            nfe_forward=loop.initial_evaluations + loop.evaluations_per_attempt * n_steps,
            nfe_backward=None,
            n_steps=n_steps,
            n_accepted=state.n_accepted,
            n_rejected=n_steps - state.n_accepted,
        ),
        result=state.result,
        t_reached=state.tprev,
        steps=state.records,
    )


def _solve_fixed(problem: Problem, tab: Tableau) -> EngineOutput:
    options = problem.options

    def forward(field: FieldWrapper, y0: Array, times: Array) -> tuple[Array, Any]:
        run = run_fixed(
            field, tab, y0, times, options.n_steps, problem.counts, options.record_steps,
            remat=options.adjoint == "checkpoint",
        )
        return run.ys, run

    if options.adjoint == "backsolve":
        solver = Backsolve(
            tab, None, forward, False, options.max_steps, options.n_steps, problem.counts
        )
        ys, run = solver.apply(problem.field, problem.y0, problem.times)
    else:
        ys, run = forward(problem.field, problem.y0, problem.times)
    n_steps = run.grid.shape[0] - 1
    bad = ~run.finite
    any_bad = jnp.any(bad)
    first = jnp.argmax(bad)
    steps = count(n_steps)
    return EngineOutput(
        ys=ys,
        stats=SolveStats(
            nfe_forward=count(n_steps * tab.stages),
            nfe_backward=None,
            n_steps=steps,
            n_accepted=steps,
            n_rejected=count(0),
        ),
        result=code(jnp.where(any_bad, NONFINITE, 0)),
        t_reached=jnp.where(any_bad, run.grid[first], run.grid[-1]),
        steps=run.steps,
        failure=StepFailure(step=first, t0=run.grid[first], t1=run.grid[first + 1]),
    )

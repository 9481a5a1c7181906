"""The native PyTorch engine: our explicit Runge--Kutta loop (``engine="native"``).

Written because no PyTorch library offers what the adaptive-vs-fixed
comparison needs together: diffrax's step-size semantics (its step sequence
to 1e-10 in float64), per-sample steps and acceptance in a batch, per-step
records for the solver-heuristic regularisers, and a step loop that reads
nothing on the host (CUDA graphs, ``torch.compile``).

Methods: :data:`sciml_seq.engines.NATIVE_METHODS`.  Gradients
(``adjoint``):

- ``"direct"``: autograd through every step attempt (rejected ones too; the
  controller's factor carries no gradient).  Memory grows with the attempts.
- ``"checkpoint"``: the same gradient; the loop runs in segments of ``K``
  attempts (engine option ``segment``, default 1) under
  :func:`torch.utils.checkpoint.checkpoint`, which keeps each segment's input
  state and recomputes the segment in the backward pass, for about one more
  forward pass of compute.  Memory: ``O(n / K)`` step states plus one
  segment's activations for ``n`` attempts; ``K = 1`` keeps no activation of
  the field at all, ``K ~ sqrt(n)`` is the classic square-root scheme.  The
  done flag is read once per segment, so a segment may run up to ``K - 1``
  attempts after the last sample finished.
- ``"backsolve"``: the continuous adjoint (:mod:`.backsolve`), O(1) memory.

Engine options (``engine_options``):

- ``control``: ``"sample"`` (default; each sample has its own steps) or
  ``"batch"`` (the batch shares one step sequence, its error norm taken over
  the whole batch: torchdiffeq's behaviour);
- ``check_every``: step attempts between two reads of "is every sample
  done?" (one device-to-host sync each; default 1, which wastes no
  evaluation).  ``None`` reads nothing: the loop runs ``max_steps`` attempts
  (finished samples ride along unchanged), which is what a CUDA graph or a
  ``torch.compile(fullgraph=True)`` capture needs; pick ``max_steps`` near
  the attempts the solve takes;
- ``segment``: attempts (fixed methods: steps) per checkpointed segment of
  ``adjoint="checkpoint"`` (default 1).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ....solver import nonfinite_step_message
from ....stats import RESULTS
from ....tableaus import TABLEAUS
from ..core import EngineOutput, Problem, reads_values
from .adaptive import AdaptiveLoop, stack_records
from .backsolve import Backsolve
from .controller import Controller
from .fixed import run_fixed

NONFINITE = RESULTS.index("nonfinite")
SEGMENT = 1
"""Attempts per checkpointed segment of ``adjoint="checkpoint"`` unless ``segment`` says."""


def solve(problem: Problem) -> EngineOutput:
    """Solve ``problem`` with the native engine."""
    options = problem.options
    tab = TABLEAUS[options.method]
    times = problem.times.to(problem.y0.dtype)  # times in the state's dtype, as diffrax
    if not options.adaptive:
        return _solve_fixed(problem, tab, times)
    ctrl = Controller.from_options(tab=tab, options=options, batch_control=_batch(problem))
    if options.adjoint == "backsolve":
        box: dict = {}

        def forward(y0: Tensor, times: Tensor) -> Tensor:
            box["output"] = _solve_adaptive(problem, tab, ctrl, y0, times, "direct")
            return box["output"].ys

        solver = Backsolve(
            problem.field, tab, ctrl, forward, options.seminorm, options.max_steps,
            options.option("check_every", 1), None, None,
        )
        ys = solver.apply(problem.y0, times)
        out = box["output"]
        out.ys = ys
        return out
    return _solve_adaptive(problem, tab, ctrl, problem.y0, times, options.adjoint)


def _batch(problem: Problem) -> bool:
    return problem.options.option("control", "sample") == "batch"


def _solve_adaptive(
    problem: Problem, tab, ctrl: Controller, y0: Tensor, times: Tensor, adjoint: str
) -> EngineOutput:
    options = problem.options
    every = options.option("check_every", 1)
    loop = AdaptiveLoop(problem.field, tab, ctrl, times, options.record_steps)
    state = loop.start(y0)
    records = []
    if adjoint == "checkpoint":
        segment = options.option("segment", SEGMENT)
    else:
        segment = every if every is not None else options.max_steps
    left = options.max_steps
    while left > 0:
        chunk = min(segment, left)
        if adjoint == "checkpoint" and torch.is_grad_enabled():
            state, chunk_records = checkpoint(loop.run, state, chunk, use_reentrant=False)
        else:
            state, chunk_records = loop.run(state, chunk)
        records.extend(chunk_records)
        left -= chunk
        if every is not None and reads_values(state.done) and bool(state.done.all()):
            break
    attempts = options.max_steps - left
    problem.counter.nfe_batch = loop.initial_evaluations + loop.evaluations_per_attempt * attempts
    state, ys = loop.finish(state, y0)
    n_steps = state.n_steps
    return EngineOutput(
        ys=ys,
        stats={
            "nfe_forward": loop.initial_evaluations + loop.evaluations_per_attempt * n_steps,
            "n_steps": n_steps,
            "n_accepted": state.n_accepted,
            "n_rejected": n_steps - state.n_accepted,
        },
        result=state.result,
        t_reached=state.tprev,
        steps=stack_records(records),
    )


def _solve_fixed(problem: Problem, tab, times: Tensor) -> EngineOutput:
    options = problem.options
    values = times.detach().cpu().numpy() if options.step_size is not None else None
    segment = None
    if options.adjoint == "checkpoint":
        segment = options.option("segment", SEGMENT)

    def forward(y0: Tensor, times: Tensor) -> Tensor:
        box["run"] = run_fixed(
            problem.field, tab, y0, times, options.step_size, options.n_steps,
            options.record_steps, values, segment,
        )
        return box["run"].ys

    box: dict = {}
    if options.adjoint == "backsolve":
        solver = Backsolve(
            problem.field, tab, None, forward, False, options.max_steps, None,
            options.step_size, options.n_steps,
        )
        ys = solver.apply(problem.y0, times)
    else:
        ys = forward(problem.y0, times)
    run = box["run"]
    batch = ys.shape[0]
    n_steps = run.grid.shape[0] - 1
    problem.counter.nfe_batch = tab.stages * n_steps
    bad = ~run.finite  # (n_steps, batch)
    any_bad = bad.any(dim=0)
    first = torch.argmax(bad.to(torch.int8), dim=0)
    failure = None
    if reads_values(bad) and bool(any_bad.any()):
        step = int(first[int(torch.nonzero(any_bad)[0])])
        grid = run.grid.detach().cpu()
        failure = nonfinite_step_message(
            step, n_steps, float(grid[step]), float(grid[step + 1])
        )
    counts = torch.full((batch,), n_steps, dtype=torch.int64, device=ys.device)
    return EngineOutput(
        ys=ys,
        stats={
            "nfe_forward": counts * tab.stages,
            "n_steps": counts,
            "n_accepted": counts,
            "n_rejected": torch.zeros_like(counts),
        },
        result=torch.where(any_bad, NONFINITE, 0),
        t_reached=torch.where(any_bad, run.grid[first], run.grid[-1]),
        steps=run.steps,
        failure=failure,
    )

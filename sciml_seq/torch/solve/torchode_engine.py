"""The torchode engine (``engine="torchode"``): ``AutoDiffAdjoint`` with per-sample steps.

Every controller setting maps onto torchode's ``PIDController`` (``dt0`` is
its solve's ``dt0``).  torchode counts steps per sample; its evaluation count
is the batch's (finished samples ride along), so a sample's ``nfe_forward`` is
the evaluations before the first step plus six per own attempt.  torchode
keeps its step internals to itself: no step records.  A failed sample's
``t_reached`` is the last output time torchode wrote (it reports no solver time).
"""

from __future__ import annotations

import torch

from ...stats import RESULTS
from .core import EngineOutput, Problem

NAMES = {"dopri5": "Dopri5", "tsit5": "Tsit5"}
"""Our method name -> torchode's class."""

PER_ATTEMPT = 6  # evaluations per attempt of torchode's FSAL Dopri5 / Tsit5


def available_methods() -> tuple[str, ...]:
    import torchode

    return tuple(m for m, name in NAMES.items() if hasattr(torchode, name))


def _status_codes():
    import torchode

    return {
        torchode.Status.SUCCESS.value: RESULTS.index("successful"),
        torchode.Status.REACHED_MAX_STEPS.value: RESULTS.index("max_steps_reached"),
        torchode.Status.REACHED_DT_MIN.value: RESULTS.index("dt_min_reached"),
        torchode.Status.INFINITE_NORM.value: RESULTS.index("nonfinite"),
        torchode.Status.GENERAL_ERROR.value: RESULTS.index("failed"),
    }


def solve(problem: Problem) -> EngineOutput:
    import torchode

    options = problem.options
    y0, times = problem.y0, problem.times
    batch = y0.shape[0]
    term = torchode.ODETerm(problem.field)
    step = getattr(torchode, NAMES[options.method])(term=term)
    controller = torchode.PIDController(
        atol=options.atol,
        rtol=options.rtol,
        pcoeff=options.pcoeff,
        icoeff=options.icoeff,
        dcoeff=options.dcoeff,
        term=term,
        dt_min=options.dtmin,
        dt_max=options.dtmax,
        safety=options.safety,
        factor_min=options.factormin,
        factor_max=options.factormax,
    )
    solver = torchode.AutoDiffAdjoint(step, controller, max_steps=options.max_steps)
    problem_ = torchode.InitialValueProblem(y0=y0, t_eval=times.to(y0.dtype).expand(batch, -1))
    dt0 = None if options.dt0 is None else torch.full((batch,), options.dt0, dtype=y0.dtype,
                                                       device=y0.device)
    sol = solver.solve(problem_, dt0=dt0)
    stats = sol.stats
    n_steps = stats["n_steps"].to(torch.int64)
    n_accepted = stats["n_accepted"].to(torch.int64)
    initial = problem.counter.nfe_batch - PER_ATTEMPT * n_steps.max()
    codes = _status_codes()
    status = sol.status.to(torch.int64)
    result = torch.zeros_like(status)
    for theirs, ours in codes.items():
        result = torch.where(status == theirs, ours, result)
    # torchode leaves the outputs it did not reach uninitialised (torch.empty):
    # ``n_initialized`` counts the ones it wrote.
    written = stats["n_initialized"].to(torch.int64).clamp(min=1)
    reached = torch.arange(times.shape[0], device=y0.device)[None, :] < written[:, None]
    ys = torch.where(reached[..., None], sol.ys, torch.inf)
    reached_index = written - 1
    return EngineOutput(
        ys=ys,
        stats={
            "nfe_forward": initial + PER_ATTEMPT * n_steps,
            "n_steps": n_steps,
            "n_accepted": n_accepted,
            "n_rejected": n_steps - n_accepted,
        },
        result=result,
        t_reached=times.to(y0.dtype)[reached_index],
        steps=None,
    )

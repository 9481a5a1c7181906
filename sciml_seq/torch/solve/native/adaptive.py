"""The native adaptive loop: per-sample steps, dense output at ``ts``, step records.

Each sample of the batch carries its own ``(tprev, tnext)``, controller state
and counts; a step attempt evaluates the batched field once per stage for
every sample and updates each sample by its own accept/reject decision (a
finished sample rides along with a zero step and is left unchanged).
Nothing in :meth:`AdaptiveLoop.attempt` reads a value on the host, so the
loop can run a fixed number of attempts without a device-to-host sync
(``check_every=None``), which is what CUDA-graph capture needs.

The step sequence is diffrax's: the same initial step (Hairer's heuristic),
PID controller (:mod:`.controller`), clipping to the end time and dense output
(:mod:`sciml_seq.tableaus`).  Under batch control (``control="batch"``) the
error norm is taken over the whole batch, which then shares one step
sequence (torchdiffeq's behaviour).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ....stats import RESULTS, StepRecord
from ....tableaus import TABLEAUS, Tableau
from ...cache import cacheable_tensor
from .controller import Controller, adapt, clip_floor, clip_to_end, initial_step
from .rk import FlatField, dense_output, error_estimate, error_ratio, rk_step, stiffness

SUCCESSFUL = RESULTS.index("successful")
MAX_STEPS = RESULTS.index("max_steps_reached")
DT_MIN = RESULTS.index("dt_min_reached")
NONFINITE = RESULTS.index("nonfinite")


@dataclass
class LoopState:
    """Per-sample state between attempts (every tensor has a leading batch axis)."""

    tprev: Tensor
    tnext: Tensor
    y: Tensor
    f: Tensor
    inv1: Tensor
    inv2: Tensor
    at_dtmin: Tensor | None
    done: Tensor
    result: Tensor
    n_steps: Tensor
    n_accepted: Tensor
    interior: Tensor | None  # (batch, n_times - 2, size): outputs strictly inside the span


@dataclass
class Record:
    """One attempt's internals, ``(batch,)`` each (see :class:`~sciml_seq.stats.StepRecord`)."""

    t: Tensor
    dt: Tensor
    error_ratio: Tensor
    accepted: Tensor
    stiffness: Tensor | None
    attempted: Tensor


class AdaptiveLoop:
    """The attempts of one adaptive solve over ``times`` (increasing, ``n_times >= 2``)."""

    def __init__(
        self,
        field: FlatField,
        tab: Tableau,
        ctrl: Controller,
        times: Tensor,
        record: bool,
    ) -> None:
        self.field = field
        self.tab = tab
        self.ctrl = ctrl
        self.times = times
        self.t_end = times[-1]
        self.floor = clip_floor(self.t_end)
        self.record = record
        self.inside = times[1:-1]
        self.weights = (
            interp_weights(tab.name, times.device, times.dtype) if times.shape[0] > 2 else None
        )

    @property
    def initial_evaluations(self) -> int:
        """Evaluations before the first attempt: ``f(t0, y0)`` and, without ``dt0``, one more."""
        return 1 + (self.ctrl.dt0 is None)

    @property
    def evaluations_per_attempt(self) -> int:
        return self.tab.stages - 1 if self.tab.fsal else self.tab.stages

    def start(self, y0: Tensor) -> LoopState:
        batch = y0.shape[0]
        t0 = self.times[0].expand(batch)
        f0 = self.field(t0, y0)
        if self.ctrl.dt0 is None:
            dt0 = initial_step(self.field, self.ctrl, t0, y0, f0)
        else:
            dt0 = torch.full_like(t0, self.ctrl.dt0).detach()
        dt0 = self.ctrl.clip_initial(dt0)
        ones = torch.ones_like(t0).detach()
        zeros = torch.zeros(batch, dtype=torch.int64, device=y0.device)
        interior = None
        if self.weights is not None:
            interior = y0.new_full((batch, self.inside.shape[0], y0.shape[1]), torch.inf)
        return LoopState(
            tprev=t0,
            tnext=torch.minimum(t0 + dt0, self.t_end),
            y=y0,
            f=f0,
            inv1=ones,
            inv2=ones,
            at_dtmin=None if self.ctrl.dtmin is None else torch.zeros_like(t0, dtype=torch.bool),
            done=torch.zeros_like(t0, dtype=torch.bool),
            result=zeros,
            n_steps=zeros,
            n_accepted=zeros,
            interior=interior,
        )

    def attempt(self, s: LoopState) -> tuple[LoopState, Record | None]:
        """One step attempt of every unfinished sample; reads nothing on the host."""
        tab, ctrl = self.tab, self.ctrl
        active = ~s.done
        t1 = torch.where(active, s.tnext, s.tprev)
        dt = t1 - s.tprev
        step = rk_step(self.field, tab, s.tprev, t1, s.y, s.f, dt)
        err = error_estimate(tab, step, dt)
        ratio = error_ratio(
            ctrl.part(err), ctrl.part(s.y), ctrl.part(step.y1), ctrl.rtol, ctrl.atol,
            ctrl.batch_control,
        )
        decision = adapt(ctrl, ratio.detach(), s.tprev, t1, s.inv1, s.inv2, s.at_dtmin)
        keep = decision.keep & active
        tprev = torch.minimum(torch.where(keep, t1, s.tprev), self.t_end)
        tnext = clip_to_end(tprev, decision.next_t1, self.t_end, self.floor, keep)
        done = s.done | (tprev >= self.t_end)
        # No progress: the step underflowed, or a rejected attempt would be repeated
        # unchanged (the smaller step rounds back to the same times), so the same
        # rejection would follow forever.  A failure, not a loop until max_steps.
        stalled = active & ~done & (~(tnext > tprev) | (~keep & ~(tnext - tprev < dt)))
        result = torch.where(
            stalled,
            torch.where(torch.isinf(ratio.detach()), NONFINITE, DT_MIN),
            s.result,
        )
        interior = s.interior
        if interior is not None:
            assert self.weights is not None
            inside = self.inside[None, :]
            covered = keep[:, None] & (inside > s.tprev[:, None]) & (inside <= t1[:, None])
            safe_dt = torch.where(active, dt, 1.0)
            theta = (inside - s.tprev[:, None]) / safe_dt[:, None]
            values = dense_output(tab, step, s.y, dt, theta, self.weights)
            interior = torch.where(covered[..., None], values, interior)
        keep_y = keep[:, None]
        new = LoopState(
            tprev=tprev,
            tnext=torch.where(active, tnext, s.tnext),
            y=torch.where(keep_y, step.y1, s.y),
            f=torch.where(keep_y, step.ks[-1], s.f) if tab.fsal else s.f,
            inv1=torch.where(active, decision.inv1, s.inv1),
            inv2=torch.where(active, decision.inv2, s.inv2),
            at_dtmin=decision.at_dtmin,
            done=done | stalled,
            result=result,
            n_steps=s.n_steps + active,
            n_accepted=s.n_accepted + keep,
            interior=interior,
        )
        record = None
        if self.record:
            zero = dt.new_zeros(())
            record = Record(
                t=torch.where(active, s.tprev, zero),
                dt=dt,
                error_ratio=torch.where(active, ratio, zero),
                accepted=keep,
                stiffness=(
                    torch.where(active, stiffness(tab, step), zero)
                    if tab.stiffness_stage is not None
                    else None
                ),
                attempted=active,
            )
        return new, record

    def run(self, s: LoopState, attempts: int) -> tuple[LoopState, list[Record]]:
        """``attempts`` attempts in a row (a checkpointed segment)."""
        records = []
        for _ in range(attempts):
            s, record = self.attempt(s)
            if record is not None:
                records.append(record)
        return s, records

    def finish(self, s: LoopState, y0: Tensor) -> tuple[LoopState, Tensor]:
        """Mark unfinished samples ``max_steps_reached``; the outputs ``(batch, n, size)``."""
        result = torch.where(~s.done, MAX_STEPS, s.result)
        s = replace(s, result=result)
        ok = (result == SUCCESSFUL)[:, None]
        final = torch.where(ok, s.y, torch.inf)
        parts = [y0[:, None, :]]
        if s.interior is not None:
            parts.append(s.interior)
        parts.append(final[:, None, :])
        return s, torch.cat(parts, dim=1)


@functools.lru_cache(maxsize=64)
def interp_weights(method: str, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The dense-output weights of ``method`` on ``device``, built once (no copy per solve;
    at most 64 method/device/dtype triples are kept, least recently used dropped)."""
    return cacheable_tensor(TABLEAUS[method].interp, device=device, dtype=dtype)


def stack_records(records: list[Record]) -> StepRecord | None:
    """Columns of per-attempt records as one :class:`~sciml_seq.stats.StepRecord`."""
    if not records:
        return None

    def column(name: str) -> Tensor | None:
        values = [getattr(r, name) for r in records]
        return None if values[0] is None else torch.stack(values, dim=1)

    return StepRecord(
        t=column("t"),
        dt=column("dt"),
        error_ratio=column("error_ratio"),
        accepted=column("accepted"),
        stiffness=column("stiffness"),
        attempted=column("attempted"),
    )

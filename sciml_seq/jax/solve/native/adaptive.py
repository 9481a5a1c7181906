"""The native adaptive loop of one example: dense output at ``ts``, step records.

The mirror of :mod:`sciml_seq.torch.solve.native.adaptive` for one example
(``jax.vmap`` batches it; each example then has its own steps, which is the
torch engine's per-sample control).  The attempts run in
``equinox.internal.while_loop`` (what diffrax uses), bounded by ``max_steps``:

- ``kind="checkpointed"`` (``adjoint="checkpoint"``): reverse-mode through
  binomial checkpoints of the loop state (memory ``O(log max_steps)`` states);
- ``kind="bounded"`` (``adjoint="direct"``): reverse-mode through a nest of
  bounded loops that keeps every attempt;
- ``kind="lax"``: forward only (the two halves of ``adjoint="backsolve"``).

Step records are buffers of length ``max_steps`` written at the attempt's
index (``while_loop(buffers=...)``: checkpointing does not copy them); the
columns after the last attempt keep their zeros.
"""

from __future__ import annotations

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jax import Array

from ....stats import StepRecord
from ....tableaus import Tableau
from ..core import DT_MIN, MAX_STEPS, NONFINITE, SUCCESSFUL, code, count, initial_step
from .controller import Controller, adapt, clip_floor, clip_to_end
from .rk import FlatField, dense_output, error_estimate, error_ratio, rk_step, stiffness


class LoopState(eqx.Module):
    """The state between attempts."""

    tprev: Array
    tnext: Array
    y: Array
    f: Array
    inv1: Array
    inv2: Array
    at_dtmin: Array | None
    done: Array
    result: Array
    n_steps: Array
    n_accepted: Array
    interior: Array | None  # (n_times - 2, size): outputs strictly inside the span
    records: StepRecord | None  # buffers (max_steps,)


class AdaptiveLoop:
    """The attempts of one adaptive solve over ``times`` (increasing, ``n_times >= 2``)."""

    def __init__(
        self,
        field: FlatField,
        tab: Tableau,
        ctrl: Controller,
        times: Array,
        record: bool,
        max_steps: int,
    ) -> None:
        self.field = field
        self.tab = tab
        self.ctrl = ctrl
        self.times = times
        self.t_end = times[-1]
        self.floor = clip_floor(self.t_end)
        self.record = record
        self.max_steps = max_steps
        self.inside = times[1:-1]
        self.weights = (
            jnp.asarray(tab.interp, dtype=times.dtype) if times.shape[0] > 2 else None
        )

    @property
    def initial_evaluations(self) -> int:
        """Evaluations before the first attempt: ``f(t0, y0)`` and, without ``dt0``, one more."""
        return 1 + (self.ctrl.dt0 is None)

    @property
    def evaluations_per_attempt(self) -> int:
        return self.tab.stages - 1 if self.tab.fsal else self.tab.stages

    def start(self, y0: Array) -> LoopState:
        ctrl = self.ctrl
        t0 = self.times[0]
        f0 = self.field(t0, y0)
        if ctrl.dt0 is None:
            dt0 = initial_step(
                self.field, t0, y0, f0, rtol=ctrl.rtol, atol=ctrl.atol, order=ctrl.order,
                norm=ctrl.rms,
            )
        else:
            dt0 = jnp.asarray(ctrl.dt0, t0.dtype)
        dt0 = ctrl.clip_initial(dt0)
        one = jnp.ones((), t0.dtype)
        zero = count(0)
        interior = None
        if self.weights is not None:
            interior = jnp.full((self.inside.shape[0], y0.shape[0]), jnp.inf, y0.dtype)
        return LoopState(
            tprev=t0,
            tnext=jnp.minimum(t0 + dt0, self.t_end),
            y=y0,
            f=f0,
            inv1=one,
            inv2=one,
            at_dtmin=None if ctrl.dtmin is None else jnp.zeros((), bool),
            done=jnp.zeros((), bool),
            result=code(SUCCESSFUL),
            n_steps=zero,
            n_accepted=zero,
            interior=interior,
            records=self._empty_records(t0.dtype) if self.record else None,
        )

    def _empty_records(self, dtype) -> StepRecord:
        n = self.max_steps
        zeros = jnp.zeros((n,), dtype)
        false = jnp.zeros((n,), bool)
        has_stiffness = self.tab.stiffness_stage is not None
        return StepRecord(
            t=zeros,
            dt=zeros,
            error_ratio=zeros,
            accepted=false,
            stiffness=zeros if has_stiffness else None,
            attempted=false,
        )

    def attempt(self, s: LoopState) -> LoopState:
        """One step attempt, or nothing once the solve is done.

        The loop stops at ``done``, but under ``jax.vmap`` it runs until every
        example is done and finished examples ride along: as in the torch
        engine, they take a zero step that changes nothing (and whose
        derivatives are finite, so gradients through the loop stay finite).
        """
        tab, ctrl = self.tab, self.ctrl
        active = ~s.done
        t1 = jnp.where(active, s.tnext, s.tprev)
        dt = t1 - s.tprev
        step = rk_step(self.field, tab, s.tprev, t1, s.y, s.f, dt)
        err = error_estimate(tab, step, dt)
        ratio = error_ratio(
            ctrl.part(err), ctrl.part(s.y), ctrl.part(step.y1), ctrl.rtol, ctrl.atol
        )
        fixed_ratio = jax.lax.stop_gradient(ratio)
        decision = adapt(ctrl, fixed_ratio, s.tprev, t1, s.inv1, s.inv2, s.at_dtmin)
        keep = decision.keep & active
        tprev = jnp.minimum(jnp.where(keep, t1, s.tprev), self.t_end)
        tnext = clip_to_end(tprev, decision.next_t1, self.t_end, self.floor, keep)
        done = s.done | (tprev >= self.t_end)
        # No progress: the step underflowed, or a rejected attempt would be repeated
        # unchanged (the smaller step rounds back to the same times).  A failure, not
        # a loop until max_steps.
        stalled = active & ~done & (~(tnext > tprev) | (~keep & ~(tnext - tprev < dt)))
        result = jnp.where(
            stalled, jnp.where(jnp.isinf(fixed_ratio), NONFINITE, DT_MIN), s.result
        ).astype(s.result.dtype)
        interior = s.interior
        if interior is not None:
            assert self.weights is not None
            inside = self.inside
            covered = keep & (inside > s.tprev) & (inside <= t1)
            theta = (inside - s.tprev) / jnp.where(active, dt, 1.0)
            values = dense_output(step, s.y, dt, theta, self.weights)
            interior = jnp.where(covered[:, None], values, interior)
        records = s.records
        if records is not None:
            i, zero = s.n_steps, jnp.zeros((), dt.dtype)

            def put(buffer: Array, value: Array) -> Array:
                return eqxi.buffer_at_set(buffer, i, value, pred=active)

            records = StepRecord(
                t=put(records.t, jnp.where(active, s.tprev, zero)),
                dt=put(records.dt, dt),
                error_ratio=put(records.error_ratio, jnp.where(active, ratio, zero)),
                accepted=put(records.accepted, keep),
                stiffness=(
                    None
                    if records.stiffness is None
                    else put(records.stiffness, jnp.where(active, stiffness(tab, step), zero))
                ),
                attempted=put(records.attempted, active),
            )
        return LoopState(
            tprev=tprev,
            tnext=jnp.where(active, tnext, s.tnext),
            y=jnp.where(keep, step.y1, s.y),
            f=jnp.where(keep, step.ks[-1], s.f) if tab.fsal else s.f,
            inv1=jnp.where(active, decision.inv1, s.inv1),
            inv2=jnp.where(active, decision.inv2, s.inv2),
            at_dtmin=decision.at_dtmin,
            done=done | stalled,
            result=result,
            n_steps=s.n_steps + active,
            n_accepted=s.n_accepted + keep,
            interior=interior,
            records=records,
        )

    def run(self, s: LoopState, kind: str) -> LoopState:
        """Attempts until done or ``max_steps`` (``kind``: see the module docstring)."""
        return eqxi.while_loop(
            lambda state: ~state.done,
            self.attempt,
            s,
            max_steps=self.max_steps,
            buffers=_record_buffers if self.record else None,
            kind=kind,
        )

    def finish(self, s: LoopState, y0: Array) -> tuple[LoopState, Array]:
        """Mark an unfinished solve ``max_steps_reached``; the outputs ``(n_times, size)``."""
        result = jnp.where(s.done, s.result, MAX_STEPS).astype(s.result.dtype)
        s = eqx.tree_at(lambda state: state.result, s, result)
        final = jnp.where(result == SUCCESSFUL, s.y, jnp.inf)
        parts = [y0[None]]
        if s.interior is not None:
            parts.append(s.interior)
        parts.append(final[None])
        return s, jnp.concatenate(parts)


def _record_buffers(state: LoopState) -> StepRecord:
    return state.records

"""The torchdiffeq engine (``engine="torchdiffeq"``): ``odeint`` / ``odeint_adjoint``.

One step sequence for the whole batch (its error norm is the batch's), so
every per-sample count is the batch's.  torchdiffeq's ``callback_*`` hooks
(part of its public API) count step attempts and, under
``record_steps=True``, record each attempt's start, size and acceptance;
torchdiffeq keeps its error ratio and any stiffness estimate to itself, so
``error_ratio`` and ``stiffness`` are ``None``.  Controller settings it honours:
``dt0`` (``first_step``), ``safety``, ``factormin`` (``dfactor``),
``factormax`` (``ifactor``); it steps with integral control only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import SolverError
from ...methods import fixed_grid
from ...solver import nonfinite_step_message
from ...stats import RESULTS, StepRecord
from .core import EngineOutput, FieldWrapper, Problem, per_sample, reads_values

NAMES = {
    "euler": "euler",
    "midpoint": "midpoint",
    "heun": "heun2",
    "rk4": "rk4",
    "bosh3": "bosh3",
    "dopri5": "dopri5",
    "dopri8": "dopri8",
}
"""Our method name -> torchdiffeq's."""

FIXED_STAGES = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
"""Evaluations per step of torchdiffeq's fixed-grid methods (``rk4``: the 3/8 rule)."""


def available_methods() -> tuple[str, ...]:
    """The shared method names the installed torchdiffeq provides."""
    from torchdiffeq._impl.odeint import SOLVERS

    return tuple(m for m, name in NAMES.items() if name in SOLVERS)


class _Hooked(FieldWrapper):
    """The wrapped field with torchdiffeq's step hooks (they count and record)."""

    adaptive = False

    def __init__(self, wrapped: FieldWrapper, max_steps: int, record: bool) -> None:
        super().__init__(
            wrapped.field, wrapped.counter, wrapped.state_shape, wrapped.dtype, wrapped.direction
        )
        self.max_steps = max_steps
        self.record = record
        self.n_steps = 0
        self.n_accepted = 0
        self.backward_steps = 0
        self.t_reached: Tensor | None = None
        self.attempts: list[tuple[Tensor, Tensor, bool]] = []
        self.pending: tuple[Tensor, Tensor] | None = None

    def callback_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self.n_steps += 1
        self.t_reached = t0.detach()
        if self.record:
            self.pending = (t0.detach(), dt.detach())
            if not self.adaptive:
                self._attempted(True)
        if self.n_steps > self.max_steps:
            raise SolverError(
                f"the solver reached max_steps={self.max_steps}; raise max_steps, loosen "
                "rtol/atol, or regularise the dynamics",
                t_reached=float(self.t_reached),
                n_steps=self.n_steps - 1,
            )

    def callback_step_adjoint(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self.backward_steps += 1
        if self.backward_steps > self.max_steps:
            raise SolverError(
                f"the adjoint (backward) solve exceeded max_steps={self.max_steps}",
                t_reached=float(t0.detach()),
                n_steps=self.backward_steps,
            )

    def _attempted(self, accepted: bool) -> None:
        if self.record and self.pending is not None:
            self.attempts.append((*self.pending, accepted))
            self.pending = None


class _HookedAdaptive(_Hooked):
    """Adds torchdiffeq's accept/reject hooks (only its adaptive solvers accept them)."""

    adaptive = True

    def callback_accept_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self.n_accepted += 1
        self.t_reached = (t0 + dt).detach()
        self._attempted(True)

    def callback_reject_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self._attempted(False)


def solve(problem: Problem) -> EngineOutput:
    import torchdiffeq

    options = problem.options
    adaptive = options.adaptive
    hooked = (_HookedAdaptive if adaptive else _Hooked)(
        problem.field, options.max_steps, options.record_steps
    )
    problem.counter.track_finite = not adaptive
    times = problem.times
    torch_options: dict = {}
    if adaptive:
        for ours, theirs in (
            ("dt0", "first_step"),
            ("safety", "safety"),
            ("factormin", "dfactor"),
            ("factormax", "ifactor"),
        ):
            if ours in options.changed_controller():
                torch_options[theirs] = getattr(options, ours)
    else:
        values = times.detach().cpu().numpy() if options.step_size is not None else None

        # Called with the forward times, and by the adjoint with each reversed interval;
        # built with tensor operations, so the outputs keep the gradient with respect to ts.
        def grid_constructor(func, y, t: Tensor) -> Tensor:
            grid_values = (
                t.detach().cpu().numpy() if options.step_size is not None else values
            )
            return fixed_grid(t, options.step_size, options.n_steps, xp=torch, values=grid_values)

        torch_options["grid_constructor"] = grid_constructor
    kwargs = dict(
        rtol=options.rtol, atol=options.atol, method=NAMES[options.method], options=torch_options
    )
    try:
        if options.adjoint == "backsolve":
            adjoint_options = {"norm": "seminorm"} if options.seminorm else None
            ys = torchdiffeq.odeint_adjoint(
                hooked, problem.y0, times, adjoint_params=tuple(hooked.parameters()),
                adjoint_options=adjoint_options, **kwargs,
            )
        else:
            ys = torchdiffeq.odeint(hooked, problem.y0, times, **kwargs)
    except AssertionError as err:  # torchdiffeq signals failures with assert
        reached = float("nan") if hooked.t_reached is None else float(hooked.t_reached)
        if "underflow in dt" in str(err):
            raise SolverError(
                "the step size underflowed; the dynamics may be stiff or blow up",
                t_reached=reached,
                n_steps=hooked.n_steps,
            ) from err
        if "non-finite values in state" in str(err):
            raise SolverError(
                "the state became NaN or inf during the solve",
                t_reached=reached,
                n_steps=hooked.n_steps,
            ) from err
        raise
    ys = ys.movedim(0, 1)
    batch, device = ys.shape[0], ys.device
    n_accepted = hooked.n_accepted if adaptive else hooked.n_steps
    result = torch.zeros(batch, dtype=torch.int64, device=device)
    failure = None
    if not adaptive:
        failure, result = _first_nonfinite(problem, hooked, result)
    return EngineOutput(
        ys=ys,
        stats={
            "nfe_forward": per_sample(problem.counter.nfe_batch, batch, device),
            "n_steps": per_sample(hooked.n_steps, batch, device),
            "n_accepted": per_sample(n_accepted, batch, device),
            "n_rejected": per_sample(hooked.n_steps - n_accepted, batch, device),
        },
        result=result,
        t_reached=times[-1].detach().expand(batch),
        steps=_record(hooked, batch) if options.record_steps else None,
        failure=failure,
    )


def _first_nonfinite(
    problem: Problem, hooked: _Hooked, result: Tensor
) -> tuple[str | None, Tensor]:
    """Name the fixed step whose evaluations first turned NaN/inf (one read after the solve)."""
    flags = problem.counter.finite
    if not flags or not reads_values(flags[0]):
        return None, result
    finite = torch.stack(flags)
    if bool(finite.all()):
        return None, result
    evaluation = int(torch.nonzero(~finite)[0])
    step = evaluation // FIXED_STAGES[problem.options.method]
    message = nonfinite_step_message(step, hooked.n_steps)
    return message, torch.full_like(result, RESULTS.index("nonfinite"))


def _record(hooked: _Hooked, batch: int) -> StepRecord | None:
    attempts = hooked.attempts
    if not attempts:
        return None
    t = torch.stack([a[0].reshape(()) for a in attempts]).expand(batch, -1)
    dt = torch.stack([a[1].reshape(()) for a in attempts]).expand(batch, -1)
    accepted = torch.tensor([a[2] for a in attempts], device=t.device).expand(batch, -1)
    return StepRecord(
        t=t, dt=dt, error_ratio=None, accepted=accepted, stiffness=None,
        attempted=torch.ones_like(accepted),
    )

"""The step-size controller of the native engine: diffrax's ``PIDController``, per sample.

``ratio`` below is the scaled error norm of a step attempt
(:func:`~sciml_seq.torch.solve.native.rk.error_ratio`), ``inv = 1 / ratio``.
With ``beta_1 = (icoeff + pcoeff + dcoeff) / order``, ``beta_2 = -(pcoeff + 2
dcoeff) / order`` and ``beta_3 = dcoeff / order`` the next step is

    dt_next = dt * clip(safety * inv_n^beta_1 * inv_{n-1}^beta_2 * inv_{n-2}^beta_3,
                        [1 if accepted else factormin, factormax if accepted else safety])

(diffrax's form (4): the errors of the last accepted steps, each scaled by its
own tolerance); the attempt is accepted when ``ratio < 1``.  The factor carries
no gradient (as in diffrax and torchdiffeq), the step itself does through the
times it starts and ends at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ....solver import SolveOptions
from ....tableaus import Tableau
from .rk import FlatField, mean_square


@dataclass(frozen=True)
class Controller:
    """The controller constants of one solve (Python floats; ``None``: not used)."""

    rtol: float
    atol: float
    order: int
    safety: float
    factormin: float
    factormax: float
    beta1: float
    beta2: float
    beta3: float
    dt0: float | None
    dtmin: float | None
    dtmax: float | None
    batch_control: bool
    norm_size: int | None = None  # measure errors on the first norm_size entries (seminorm)

    @classmethod
    def from_options(cls, options: SolveOptions, tab: Tableau, batch_control: bool) -> Controller:
        order = tab.order
        return cls(
            rtol=options.rtol,
            atol=options.atol,
            order=order,
            safety=options.safety,
            factormin=options.factormin,
            factormax=options.factormax,
            beta1=(options.icoeff + options.pcoeff + options.dcoeff) / order,
            beta2=-(options.pcoeff + 2 * options.dcoeff) / order,
            beta3=options.dcoeff / order,
            dt0=options.dt0,
            dtmin=options.dtmin,
            dtmax=options.dtmax,
            batch_control=batch_control,
        )

    def part(self, x: Tensor) -> Tensor:
        """The entries of a flat state ``(batch, size)`` that the error norm measures."""
        return x if self.norm_size is None else x[:, : self.norm_size]

    def rms(self, x: Tensor) -> Tensor:
        """Per-sample RMS norm of :meth:`part` ``(batch,)`` (the batch's under batch control)."""
        return torch.sqrt(mean_square(self.part(x), self.batch_control))

    def clip_initial(self, dt: Tensor) -> Tensor:
        if self.dtmax is not None:
            dt = torch.clamp(dt, max=self.dtmax)
        if self.dtmin is not None:
            dt = torch.clamp(dt, min=self.dtmin)
        return dt


@torch.no_grad()
def initial_step(
    field: FlatField, ctrl: Controller, t0: Tensor, y0: Tensor, f0: Tensor
) -> Tensor:
    """Hairer's first step (Hairer, Norsett & Wanner, II.4; diffrax's ``_select_initial_step``).

    One extra evaluation of the field.  Returns ``(batch,)``, without gradient.
    """
    scale = y0.abs() * ctrl.rtol + ctrl.atol  # entries outside ctrl.part are not measured
    d0 = ctrl.rms(y0 / scale)
    d1 = ctrl.rms(f0 / scale)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = torch.where(small, 1e-6, 0.01 * (d0 / torch.where(small, 1.0, d1)))
    f1 = field(t0 + h0, torch.addcmul(y0, h0[:, None], f0))
    d2 = ctrl.rms((f1 - f0) / scale) / h0
    max_d = torch.maximum(d1, d2)
    tiny = max_d <= 1e-15
    h1 = torch.where(
        tiny,
        torch.clamp(h0 * 1e-3, min=1e-6),
        (0.01 / torch.where(tiny, 1.0, max_d)) ** (1.0 / ctrl.order),
    )
    return torch.minimum(100 * h0, h1)


@dataclass
class Decision:
    """The controller's answer for one attempt: accept, the next step, its state."""

    keep: Tensor
    next_t0: Tensor
    next_t1: Tensor
    inv1: Tensor
    inv2: Tensor
    at_dtmin: Tensor | None


def adapt(
    ctrl: Controller,
    ratio: Tensor,
    t0: Tensor,
    t1: Tensor,
    inv1: Tensor,
    inv2: Tensor,
    at_dtmin: Tensor | None,
) -> Decision:
    """Accept or reject the attempt from ``t0`` to ``t1`` and propose the next one.

    ``ratio`` must carry no gradient; ``inv1``, ``inv2`` are the inverse
    errors of the two previous accepted steps (1 at the start).
    """
    keep = ratio < 1
    if at_dtmin is not None:
        keep = keep | at_dtmin
    inv = 1.0 / ratio
    factor = ctrl.safety * inv**ctrl.beta1 if ctrl.beta1 != 0 else torch.full_like(inv, ctrl.safety)
    if ctrl.beta2 != 0:
        factor = factor * inv1**ctrl.beta2
    if ctrl.beta3 != 0:
        factor = factor * inv2**ctrl.beta3
    one = factor.new_ones(())
    factor = torch.clamp(
        factor,
        min=torch.where(keep, one, one * ctrl.factormin),
        max=torch.where(keep, one * ctrl.factormax, one * ctrl.safety),
    )
    dt = (t1 - t0) * factor
    inv = torch.where((inv == 0) | torch.isinf(inv), 1.0, inv)
    if ctrl.dtmax is not None:
        dt = torch.clamp(dt, max=ctrl.dtmax)
    if ctrl.dtmin is not None:
        assert at_dtmin is not None
        dt = torch.where(at_dtmin & (factor == 1), dt.new_full((), ctrl.dtmin), dt)
        at_dtmin = dt <= ctrl.dtmin
        dt = torch.clamp(dt, min=ctrl.dtmin)
    next_t0 = torch.where(keep, t1, t0)
    return Decision(
        keep=keep,
        next_t0=next_t0,
        next_t1=next_t0 + dt,
        inv1=torch.where(keep, inv, inv1),
        inv2=torch.where(keep, inv1, inv2),
        at_dtmin=at_dtmin,
    )


def clip_floor(t_end: Tensor) -> Tensor:
    """``t_end`` less 100 units in the last place: a step landing above it lands on ``t_end``.

    diffrax's rule (it avoids slivers of steps that make dense output unstable).
    Computed as ``t_end - 100 * ulp`` with the spacing just below ``t_end``; it
    differs from 100 successive ``nextafter`` only within 100 ulps above a
    power of two.
    """
    t_end = t_end.detach()
    spacing = t_end - torch.nextafter(t_end, torch.full_like(t_end, -torch.inf))
    return t_end - 100 * spacing


def clip_to_end(
    tprev: Tensor, tnext: Tensor, t_end: Tensor, floor: Tensor, keep: Tensor
) -> Tensor:
    """diffrax's ``_clip_to_end``: a proposal past ``floor`` ends at ``t_end`` (or halfway)."""
    clipped = torch.where(keep, t_end, tprev + 0.5 * (t_end - tprev))
    return torch.where(tnext > floor, clipped, tnext)

"""The step-size controller of the native engine: diffrax's ``PIDController``, one example.

The mirror of :mod:`sciml_seq.torch.solve.native.controller` (read it for the
formulas): with ``inv = 1 / ratio`` the next step is ``dt * clip(safety *
inv^beta_1 * inv_{n-1}^beta_2 * inv_{n-2}^beta_3, ...)``; the attempt is
accepted when ``ratio < 1``.  The factor carries no gradient; the step does
through the times it starts and ends at.  The first step is Hairer's
(:func:`sciml_seq.jax.solve.core.initial_step`).
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ....solver import SolveOptions
from ....tableaus import Tableau


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
    norm_size: int | None = None  # measure errors on the first norm_size entries (seminorm)

    @classmethod
    def from_options(cls, options: SolveOptions, tab: Tableau) -> Controller:
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
        )

    def part(self, x: Array) -> Array:
        """The entries of a flat state ``(size,)`` that the error norm measures."""
        return x if self.norm_size is None else x[: self.norm_size]

    def rms(self, x: Array) -> Array:
        """The RMS norm of :meth:`part`."""
        return jnp.sqrt(jnp.mean(jnp.square(self.part(x))))

    def clip_initial(self, dt: Array) -> Array:
        if self.dtmax is not None:
            dt = jnp.minimum(dt, self.dtmax)
        if self.dtmin is not None:
            dt = jnp.maximum(dt, self.dtmin)
        return dt


class Decision(eqx.Module):
    """The controller's answer for one attempt: accept, the next step, its state."""

    keep: Array
    next_t0: Array
    next_t1: Array
    inv1: Array
    inv2: Array
    at_dtmin: Array | None


def adapt(
    ctrl: Controller,
    ratio: Array,
    t0: Array,
    t1: Array,
    inv1: Array,
    inv2: Array,
    at_dtmin: Array | None,
) -> Decision:
    """Accept or reject the attempt from ``t0`` to ``t1`` and propose the next one.

    ``ratio`` must carry no gradient; ``inv1``, ``inv2`` are the inverse
    errors of the two previous accepted steps (1 at the start).
    """
    keep = ratio < 1
    if at_dtmin is not None:
        keep = keep | at_dtmin
    inv = 1.0 / ratio
    factor = ctrl.safety * inv**ctrl.beta1 if ctrl.beta1 != 0 else jnp.full_like(inv, ctrl.safety)
    if ctrl.beta2 != 0:
        factor = factor * inv1**ctrl.beta2
    if ctrl.beta3 != 0:
        factor = factor * inv2**ctrl.beta3
    factor = jnp.minimum(
        jnp.maximum(factor, jnp.where(keep, 1.0, ctrl.factormin)),
        jnp.where(keep, ctrl.factormax, ctrl.safety),
    ).astype(t1.dtype)
    dt = (t1 - t0) * factor
    inv = jnp.where((inv == 0) | jnp.isinf(inv), 1.0, inv)
    if ctrl.dtmax is not None:
        dt = jnp.minimum(dt, ctrl.dtmax)
    if ctrl.dtmin is not None:
        assert at_dtmin is not None
        dt = jnp.where(at_dtmin & (factor == 1), ctrl.dtmin, dt)
        at_dtmin = dt <= ctrl.dtmin
        dt = jnp.maximum(dt, ctrl.dtmin)
    next_t0 = jnp.where(keep, t1, t0)
    return Decision(
        keep=keep,
        next_t0=next_t0,
        next_t1=next_t0 + dt,
        inv1=jnp.where(keep, inv, inv1),
        inv2=jnp.where(keep, inv1, inv2),
        at_dtmin=at_dtmin,
    )


def clip_floor(t_end: Array) -> Array:
    """``t_end`` less 100 units in the last place: a step landing above it lands on ``t_end``.

    diffrax's rule, computed as the torch engine computes it: ``t_end - 100 *
    ulp`` with the spacing just below ``t_end``.
    """
    t_end = jax.lax.stop_gradient(t_end)
    spacing = t_end - jnp.nextafter(t_end, jnp.asarray(-jnp.inf, t_end.dtype))
    return t_end - 100 * spacing


def clip_to_end(tprev: Array, tnext: Array, t_end: Array, floor: Array, keep: Array) -> Array:
    """diffrax's ``_clip_to_end``: a proposal past ``floor`` ends at ``t_end`` (or halfway)."""
    clipped = jnp.where(keep, t_end, tprev + 0.5 * (t_end - tprev))
    return jnp.where(tnext > floor, clipped, tnext)

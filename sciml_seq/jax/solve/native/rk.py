"""One explicit Runge--Kutta step of one example (the mirror of the torch engine's ``rk``).

``t`` and ``dt`` are scalars, states ``(size,)``.  The coefficients come from
:mod:`sciml_seq.tableaus` and every combination is taken in the order of
:mod:`sciml_seq.torch.solve.native.rk`, so the two engines agree to rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from ....tableaus import Tableau

FlatField = Callable[[Array, Array], Array]


def combine(ks: Sequence[Array], coeffs: Sequence[float]) -> Array | None:
    """``sum_j coeffs[j] * ks[j]``, skipping zero coefficients (``None`` if all are zero)."""
    total: Array | None = None
    for k, c in zip(ks, coeffs, strict=False):
        if c == 0.0:
            continue
        total = k * c if total is None else total + c * k
    return total


class Step(eqx.Module):
    """The stages of one step attempt.

    Attributes
    ----------
    ks: the stage derivatives ``k_0 .. k_{s-1}``, each ``(size,)``.
    y1: the candidate solution ``(size,)``.
    stage_input: for dopri5/tsit5, the input of stage ``s - 2`` (stiffness).
    """

    ks: list[Array]
    y1: Array
    stage_input: Array | None = None


def rk_step(
    field: FlatField, tab: Tableau, t: Array, t1: Array, y: Array, f0: Array, dt: Array
) -> Step:
    """Evaluate the stages from ``(t, y)`` to ``t1 = t + dt`` with first stage ``f0 = f(t, y)``.

    Stages at ``c_i == 1`` are evaluated at ``t1`` itself (as diffrax).  For
    FSAL methods the last stage input is the candidate ``y1`` and the last
    stage is ``f(t1, y1)``, the next step's ``f0``.
    """
    ks = [f0]
    stage_input = None
    y_stage = y
    for i in range(1, tab.stages):
        incr = combine(ks, tab.rows[i])
        y_stage = y if incr is None else y + dt * incr
        if i == tab.stiffness_stage:
            stage_input = y_stage
        c = float(tab.c[i])
        ks.append(field(t1 if c == 1.0 else t + c * dt, y_stage))
    if tab.fsal:
        y1 = y_stage
    else:
        incr = combine(ks, tab.b.tolist())
        y1 = y if incr is None else y + dt * incr
    return Step(ks=ks, y1=y1, stage_input=stage_input)


def error_estimate(tab: Tableau, step: Step, dt: Array) -> Array:
    """The embedded error ``dt * sum_i b_error[i] k_i``, ``(size,)``; NaN becomes inf."""
    err = combine(step.ks, tab.b_error.tolist())
    assert err is not None
    err = err * dt
    return jnp.where(jnp.isnan(err), jnp.inf, err)


def safe_sqrt(x: Array) -> Array:
    """``sqrt(x)`` with a zero (not NaN) gradient at ``x == 0``."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def error_ratio(err: Array, y0: Array, y1: Array, rtol: float, atol: float) -> Array:
    """The controller's scaled error ``rms(err / (atol + rtol * max(|y0|, |y1|)))``, a scalar.

    As diffrax's ``PIDController``: a candidate with a NaN is scaled by ``|y0|``
    alone.  Differentiable (safe at zero error).
    """
    y1 = jnp.where(jnp.any(jnp.isnan(y1)), y0, y1)
    scale = jnp.maximum(jnp.abs(y0), jnp.abs(y1)) * rtol + atol
    return safe_sqrt(jnp.mean(jnp.square(err / scale)))


def stiffness(tab: Tableau, step: Step) -> Array:
    """Hairer's ``|k_{s-1} - k_{s-2}| / |y1 - Y_{s-2}|`` (0 where ``y1 == Y_{s-2}``)."""
    assert step.stage_input is not None and tab.stiffness_stage is not None
    num = jnp.sum(jnp.square(step.ks[-1] - step.ks[tab.stiffness_stage]))
    den = jnp.sum(jnp.square(step.y1 - step.stage_input))
    positive = den > 0
    return jnp.where(positive, safe_sqrt(num) / safe_sqrt(jnp.where(positive, den, 1.0)), 0.0)


def dense_output(step: Step, y0: Array, dt: Array, theta: Array, weights: Array) -> Array:
    """The step's interpolant at ``theta (n,)``: ``(n, size)``.

    ``weights`` is the tableau's ``interp`` ``(P, s)`` in the state's dtype.
    """
    stages = jnp.stack(step.ks)  # (s, size)
    coeffs = jnp.einsum("ps,sd->pd", weights, stages) * dt
    powers = theta[:, None] ** jnp.arange(1, weights.shape[0] + 1, dtype=theta.dtype)
    return y0[None, :] + powers @ coeffs

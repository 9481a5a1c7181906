"""One explicit Runge--Kutta step on a batch, with per-sample step sizes.

Everything here is elementwise over the batch: ``t`` and ``dt`` have shape
``(batch,)``, states ``(batch, size)``.  The coefficients come from
:mod:`sciml_seq.tableaus` (the same numbers as the JAX engine).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ....tableaus import Tableau

FlatField = Callable[[Tensor, Tensor], Tensor]


def combine(ks: Sequence[Tensor], coeffs: Sequence[float]) -> Tensor | None:
    """``sum_j coeffs[j] * ks[j]``, skipping zero coefficients (``None`` if all are zero)."""
    total: Tensor | None = None
    for k, c in zip(ks, coeffs, strict=False):
        if c == 0.0:
            continue
        total = k * c if total is None else torch.add(total, k, alpha=c)
    return total


@dataclass
class Step:
    """The stages of one step attempt.

    Attributes
    ----------
    ks: the stage derivatives ``k_0 .. k_{s-1}``, each ``(batch, size)``.
    y1: the candidate solution ``(batch, size)``.
    stage_inputs: for FSAL methods, the input of stage ``s - 2`` (stiffness).
    """

    ks: list[Tensor]
    y1: Tensor
    stage_input: Tensor | None = None


def rk_step(
    field: FlatField, tab: Tableau, t: Tensor, t1: Tensor, y: Tensor, f0: Tensor, dt: Tensor
) -> Step:
    """Evaluate the stages from ``(t, y)`` to ``t1 = t + dt`` with first stage ``f0 = f(t, y)``.

    Stages at ``c_i == 1`` are evaluated at ``t1`` itself (not ``t + 1.0 * dt``),
    as diffrax does.

    For FSAL methods the last stage input *is* the candidate ``y1`` (the last
    row of ``a`` equals ``b``), so ``y1`` costs no extra combination and the
    last stage is ``f(t + dt, y1)``, the next step's ``f0``.
    """
    dtc = dt[:, None]
    ks = [f0]
    stage_input = None
    y_stage = y
    for i in range(1, tab.stages):
        incr = combine(ks, tab.rows[i])
        y_stage = y if incr is None else torch.addcmul(y, dtc, incr)
        if i == tab.stiffness_stage:
            stage_input = y_stage
        c = float(tab.c[i])
        ks.append(field(t1 if c == 1.0 else t + c * dt, y_stage))
    if tab.fsal:
        y1 = y_stage
    else:
        incr = combine(ks, tab.b.tolist())
        y1 = y if incr is None else torch.addcmul(y, dtc, incr)
    return Step(ks=ks, y1=y1, stage_input=stage_input)


def error_estimate(tab: Tableau, step: Step, dt: Tensor) -> Tensor:
    """The embedded error ``dt * sum_i b_error[i] k_i``, ``(batch, size)``; NaN becomes inf."""
    err = combine(step.ks, tab.b_error.tolist())
    assert err is not None
    err = err * dt[:, None]
    return torch.where(torch.isnan(err), torch.inf, err)


def mean_square(x: Tensor, batch_control: bool) -> Tensor:
    """Per-sample mean of squares ``(batch,)``; under batch control the batch's, broadcast."""
    ms = x.square().mean(dim=1)
    return ms.mean().expand(x.shape[0]) if batch_control else ms


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` with a zero (not NaN) gradient at ``x == 0``."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, 1.0)), 0.0)


def error_ratio(
    err: Tensor, y0: Tensor, y1: Tensor, rtol: float, atol: float, batch_control: bool
) -> Tensor:
    """The controller's scaled error ``rms(err / (atol + rtol * max(|y0|, |y1|)))``, ``(batch,)``.

    As diffrax's ``PIDController``: a sample whose candidate has a NaN is
    scaled by ``|y0|`` alone.  Differentiable (safe at zero error).
    """
    nan = torch.isnan(y1).any(dim=1, keepdim=True)
    y1 = torch.where(nan, y0, y1)
    scale = torch.maximum(y0.abs(), y1.abs()) * rtol + atol
    return safe_sqrt(mean_square(err / scale, batch_control))


def stiffness(tab: Tableau, step: Step) -> Tensor:
    """Hairer's ``|k_{s-1} - k_{s-2}| / |y1 - Y_{s-2}|`` per sample (0 where ``y1 == Y_{s-2}``)."""
    num = (step.ks[-1] - step.ks[tab.stiffness_stage]).square().sum(dim=1)
    den = (step.y1 - step.stage_input).square().sum(dim=1)
    positive = den > 0
    return torch.where(positive, safe_sqrt(num) / safe_sqrt(torch.where(positive, den, 1.0)), 0.0)


def dense_output(
    tab: Tableau, step: Step, y0: Tensor, dt: Tensor, theta: Tensor, weights: Tensor
) -> Tensor:
    """The step's interpolant at ``theta (batch, n)``: ``(batch, n, size)``.

    ``weights`` is ``tab.interp`` as a tensor ``(P, s)`` on the state's device.
    """
    stages = torch.stack(step.ks)  # (s, batch, size)
    coeffs = torch.einsum("ps,sbd->bpd", weights, stages) * dt[:, None, None]
    powers = theta[..., None] ** torch.arange(
        1, weights.shape[0] + 1, device=theta.device, dtype=theta.dtype
    )  # (batch, n, P)
    return y0[:, None, :] + torch.bmm(powers, coeffs)

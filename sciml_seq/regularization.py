"""Weights and schedules of the ``ODEBlock`` regularisers, and the local time draw (no framework).

A training loop adds ``regularizer_weight(name, progress) * value`` for each
regulariser the block reports (``BlockOutput.regularization``), with
``progress = step / total_steps`` in ``[0, 1]`` (:func:`training_progress`)::

    from sciml_seq.regularization import regularizer_weight, training_progress

    progress = training_progress(step, total_steps)
    loss = task_loss + sum(
        regularizer_weight(name, progress) * value.mean() for name, value in reg.items()
    )

Defaults (:data:`SCHEDULES`; ``docs/regularizers.md`` has the details)
-----------------------------------------------------------------------
==================  =============================  ==========================================
regulariser         weight                         source
==================  =============================  ==========================================
kinetic, jacobian   0.01, constant                 Finlay et al. 2020 (RNODE's run scripts:
                                                   ``--kinetic-energy 0.01 --jacobian-norm2
                                                   0.01``)
taylor              6e-5, constant                 Kelly et al. 2020, MNIST with K = 3
                                                   (``--reg r3 --lam 6e-5``)
error               100 -> 10, exponential         Pal et al. 2021 (MNIST: ``lambda0 = 100``,
                                                   ``lambda1 = 10``, decayed over the epochs)
stiffness           0.1, constant                  the issue's value (see the docs: Pal et
                                                   al.'s code weights its stiffness term 0.1
                                                   beside the error term)
local_error         2.5 -> 1.0, exponential        Pal et al. 2023, MNIST
local_stiffness     0.1, constant                  no published value (Pal et al. 2023 did
                                                   not present it); R_S's
==================  =============================  ==========================================

The exponential schedule is Pal et al.'s ``lambda(e) = lambda0 exp(-k e)``,
``k = log(lambda0 / lambda1) / E`` over epochs ``e = 0 .. E - 1``: with
``progress = e / E`` it is ``lambda0 (lambda1 / lambda0) ** progress``.

The papers normalise differently (a sum or a mean over the state entries, a
batch or a sample); ``docs/regularizers.md`` says what each default was applied
to.  Treat them as starting points, not as tuned values for another problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import check_choice, check_int, check_real
from .errors import OptionError
from .ode import REGULARIZERS

__all__ = ["SCHEDULES", "Schedule", "local_time", "regularizer_weight", "training_progress"]


@dataclass(frozen=True)
class Schedule:
    """A regulariser weight over training: ``start * (end / start) ** progress``.

    ``end == start`` is a constant weight.  ``source`` says where the numbers
    come from.
    """

    start: float
    end: float
    source: str

    def __post_init__(self) -> None:
        check_real("start", self.start, gt=0.0)
        check_real("end", self.end, gt=0.0)

    @property
    def constant(self) -> bool:
        """Whether the weight stays at ``start``."""
        return self.end == self.start

    def weight(self, progress: float) -> float:
        """The weight at ``progress`` in ``[0, 1]`` (the fraction of training done)."""
        progress = check_real("progress", progress, ge=0.0, le=1.0)
        if self.constant:
            return self.start
        return self.start * math.exp(progress * math.log(self.end / self.start))


SCHEDULES: dict[str, Schedule] = {
    "kinetic": Schedule(0.01, 0.01, "Finlay et al. 2020, RNODE run scripts (KE=0.01)"),
    "jacobian": Schedule(0.01, 0.01, "Finlay et al. 2020, RNODE run scripts (JF=0.01)"),
    "taylor": Schedule(6e-5, 6e-5, "Kelly et al. 2020, MNIST, K = 3 (--reg r3 --lam 6e-5)"),
    "error": Schedule(100.0, 10.0, "Pal et al. 2021, MNIST (lambda 100 -> 10, exponential)"),
    "stiffness": Schedule(0.1, 0.1, "issue 13; Pal et al. 2021 code: 0.1 beside the error term"),
    "local_error": Schedule(2.5, 1.0, "Pal et al. 2023, MNIST (2.5 -> 1.0, exponential)"),
    "local_stiffness": Schedule(0.1, 0.1, "no published value; the weight of R_S"),
}
"""The default weight schedule of every name of :data:`sciml_seq.ode.REGULARIZERS`."""

assert set(SCHEDULES) == set(REGULARIZERS)


def regularizer_weight(name: str, progress: float, weight: float | None = None) -> float:
    """The weight of regulariser ``name`` at ``progress`` (fraction of training done, [0, 1]).

    Parameters
    ----------
    name:
        A name of :data:`sciml_seq.ode.REGULARIZERS`.
    progress:
        ``step / total_steps`` (:func:`training_progress`) or the fraction of a
        time budget used.
    weight:
        A constant weight that replaces the default schedule (``>= 0``).

    Returns
    -------
    The default :data:`SCHEDULES` entry at ``progress``, or ``weight``.
    """
    name = check_choice("name", name, REGULARIZERS)
    progress = check_real("progress", progress, ge=0.0, le=1.0)
    if weight is not None:
        return check_real("weight", weight, ge=0.0)
    return SCHEDULES[name].weight(progress)


def training_progress(step: int, total_steps: int) -> float:
    """``step / total_steps``: the progress of 0-based ``step`` in ``[0, total_steps]``."""
    total_steps = check_int("total_steps", total_steps)
    step = check_int("step", step, low=0)
    if step > total_steps:
        raise OptionError(
            f"step: expected an integer in [0, total_steps={total_steps}]; got {step!r}"
        )
    return step / total_steps


def local_time(ts: Any, u: Any, xp: Any = np) -> tuple[Any, Any]:
    """The time ``t_r`` of local regularisation, inserted into the output times.

    ``t_r = ts[0] + u * (ts[-1] - ts[0])`` for ``u`` uniform in ``[0, 1)``: Pal et
    al. (2023)'s unbiased draw, ``t_r ~ U[t0, t1]``.  A ``t_r`` that equals an output
    time (it can after rounding, e.g. ``u = 0``) moves to the middle of the
    interval that starts there (the last interval for ``ts[-1]``), so that the times
    stay strictly monotone.

    Written once for numpy (PyTorch reads the times on the host) and
    ``jax.numpy`` (``xp=jnp``; ``u`` may be traced).

    Parameters
    ----------
    ts: ``(n,)`` strictly monotone output times, ``n >= 2`` (either direction).
    u: a scalar in ``[0, 1)``, in the dtype of ``ts``.
    xp: the array namespace, ``numpy`` or ``jax.numpy``.

    Returns
    -------
    ``(times, index)``: ``times (n + 1,)`` is ``ts`` with ``t_r`` inserted in
    order, ``times[index] == t_r``.
    """
    n = ts.shape[0]
    t = ts[0] + u * (ts[-1] - ts[0])
    forward = ts[-1] > ts[0]
    before = xp.where(forward, ts < t, ts > t)
    index = xp.sum(before)
    hit = xp.any(ts == t)
    start = xp.minimum(index, n - 2)
    t = xp.where(hit, (ts[start] + ts[start + 1]) / 2, t)
    index = xp.where(hit, start + 1, index)
    slots = xp.arange(n + 1)
    source = xp.clip(xp.where(slots < index, slots, slots - 1), 0, n - 1)
    times = xp.where(slots == index, t, ts[source])
    return times, index

"""Evaluation of time-dependent operators: one-shot at given lead times, autoregressive rollout.

Framework-free: the model enters as ``predict(x, lead) -> y`` on numpy arrays
(``x`` ``(batch, C, *grid)``, ``lead`` ``(batch,)``), e.g.
:func:`sciml_seq.train.predict.torch_predictor` or
:func:`sciml_seq.train.jax_loop.jax_predictor`.

* :func:`one_shot`: from ``u[:, start]`` straight to ``u[:, start + k]`` for each
  lead ``k`` (in steps), one model call with lead time ``t[start + k] - t[start]``;
* :func:`rollout`: ``n_steps`` repeated calls with the lead of ``step`` steps,
  each from the previous prediction, compared with ``u[:, start + s * step]``.

Both return an :class:`Evaluation` with per-sample relative L1 and L2 errors
(:func:`~sciml_seq.losses.relative_errors`, channel groups averaged) for
each lead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks import check_int
from ..errors import OptionError, ShapeError
from ..losses import relative_errors
from .metrics import summarize
from .pairs import check_trajectories

__all__ = ["Evaluation", "one_shot", "rollout"]

Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Evaluation:
    """Errors at ``K`` lead times for ``n`` trajectories.

    Attributes
    ----------
    lead_steps, lead_times:
        ``(K,)``: lead in steps and in time units.
    rel_l1, rel_l2:
        ``(K, n)`` per-sample relative errors.
    predictions:
        ``(K, n, C_out, *grid)`` (float32).
    """

    lead_steps: np.ndarray
    lead_times: np.ndarray
    rel_l1: np.ndarray
    rel_l2: np.ndarray
    predictions: np.ndarray

    def summary(self) -> list[dict[str, Any]]:
        """One dict per lead: steps, time, median/mean relative L1 and L2."""
        return [
            {"lead_steps": int(k), "lead_time": float(dt), **summarize(l1, l2)}
            for k, dt, l1, l2 in zip(
                self.lead_steps, self.lead_times, self.rel_l1, self.rel_l2, strict=True
            )
        ]


def _check_common(
    u: np.ndarray, t: np.ndarray, start: object, batch_size: object
) -> tuple[int, int]:
    """Check the trajectories, ``start`` (a time index of ``u``) and ``batch_size``."""
    check_trajectories(u, t)
    start = check_int("start", start, low=0, high=u.shape[1] - 1)
    return start, check_int("batch_size", batch_size)


def _call(predict: Predict, x: np.ndarray, lead: float, batch_size: int) -> np.ndarray:
    out = []
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        out.append(np.asarray(predict(chunk, np.full(len(chunk), lead, dtype=x.dtype))))
    return np.concatenate(out).astype(np.float32)


def _evaluation(steps, times, preds, truths, channel_slice_list) -> Evaluation:
    preds = np.stack(preds)
    errors: dict[int, list[np.ndarray]] = {1: [], 2: []}
    for pred, truth in zip(preds, truths, strict=True):
        pred = pred.astype(np.float64)
        for p, per_lead in errors.items():
            per_lead.append(relative_errors(pred, truth, channel_slice_list, p=p))
    l1, l2 = np.stack(errors[1]), np.stack(errors[2])
    return Evaluation(np.asarray(steps), np.asarray(times), l1, l2, preds)


def one_shot(
    predict: Predict,
    u: np.ndarray,
    t: np.ndarray,
    lead_steps: Sequence[int],
    *,
    start: int = 0,
    batch_size: int = 32,
    channel_slice_list: Sequence[int] | None = None,
) -> Evaluation:
    """Predict ``u[:, start + k]`` from ``u[:, start]`` in one call per ``k`` in ``lead_steps``.

    ``u``: ``(n, n_times, C, *grid)``; ``t``: ``(n_times,)``.
    """
    u, t = np.asarray(u), np.asarray(t)
    start, batch_size = _check_common(u, t, start, batch_size)
    lead_steps = [check_int(f"lead_steps[{i}]", k, low=0) for i, k in enumerate(lead_steps)]
    if any(start + k >= u.shape[1] for k in lead_steps):
        raise OptionError(
            f"lead_steps: expected start + k < n_times = {u.shape[1]} for every lead k "
            f"(start={start}); got {lead_steps}"
        )
    times = [t[start + k] - t[start] for k in lead_steps]
    preds = [_call(predict, u[:, start], dt, batch_size) for dt in times]
    truths = [u[:, start + k].astype(np.float64) for k in lead_steps]
    return _evaluation(lead_steps, times, preds, truths, channel_slice_list)


def rollout(
    predict: Predict,
    u: np.ndarray,
    t: np.ndarray,
    *,
    step: int = 1,
    n_steps: int | None = None,
    start: int = 0,
    batch_size: int = 32,
    channel_slice_list: Sequence[int] | None = None,
) -> Evaluation:
    """Autoregressive rollout from ``u[:, start]``, ``step`` time steps per model call.

    ``n_steps`` defaults to as many calls as the trajectory allows.  Needs
    ``C_out == C_in`` (the prediction is fed back).
    """
    u, t = np.asarray(u), np.asarray(t)
    start, batch_size = _check_common(u, t, start, batch_size)
    step = check_int("step", step)
    most = (u.shape[1] - 1 - start) // step
    n_steps = most if n_steps is None else check_int("n_steps", n_steps)
    if not 1 <= n_steps <= most:
        raise OptionError(
            f"n_steps: expected an integer in [1, {most}] (calls of {step} steps from "
            f"start={start} within {u.shape[1]} times); got {n_steps}"
        )
    state, preds, truths, times = u[:, start], [], [], []
    for s in range(1, n_steps + 1):
        now, before = start + s * step, start + (s - 1) * step
        state = _call(predict, state, t[now] - t[before], batch_size)
        if state.shape != u[:, now].shape:
            raise ShapeError(
                f"predict: a rollout needs outputs shaped like the inputs {u[:, now].shape}; "
                f"got {state.shape}"
            )
        preds.append(state)
        truths.append(u[:, now].astype(np.float64))
        times.append(t[now] - t[start])
    return _evaluation(
        [s * step for s in range(1, n_steps + 1)], times, preds, truths, channel_slice_list
    )

"""What a solve reports, shared by every engine: counts, outcome codes, step records."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["RESULTS", "SolveStats", "StepRecord", "result_name"]

RESULTS = ("successful", "max_steps_reached", "dt_min_reached", "nonfinite", "failed")
"""Outcome codes of a solve, by index: ``Solution.result`` holds the index.

- ``successful``: reached the last output time;
- ``max_steps_reached``: ``max_steps`` step attempts were not enough;
- ``dt_min_reached``: the step size fell below ``dtmin`` or underflowed;
- ``nonfinite``: the state or the vector field became NaN or infinite;
- ``failed``: any other failure an engine reports.
"""


def result_name(code: int) -> str:
    """The name of outcome ``code`` (an index of :data:`RESULTS`)."""
    return RESULTS[int(code)]


@dataclass(frozen=True)
class SolveStats:
    """What an ODE solve cost, with one meaning in every engine.

    Counts are **per sample**: integer arrays of shape ``(batch,)`` in torch,
    0-d for one JAX example (``(batch,)`` under ``jax.vmap``).  An engine that
    steps the batch as one system (torchdiffeq, SciPy in torch, native with
    ``control="batch"``) gives every sample the batch's count.  ``None`` means
    the engine does not report that count.

    Attributes
    ----------
    nfe_forward:
        Evaluations of the vector field at this sample's states in the forward
        solve: the initial-step heuristic, every stage of every step attempt
        (rejected ones included).
    nfe_backward:
        Vector-Jacobian products of the field in the backward pass (for
        ``adjoint="backsolve"`` one per adjoint-dynamics evaluation; for direct
        backprop one per recorded forward evaluation).  In torch it is a
        Python ``int`` for the batch, read live: zero until a backward pass has
        run.  ``None`` in JAX (XLA runs the backward pass).
    nfe_batch:
        Calls of the batched field in the forward solve, each evaluating every
        sample: what the batch cost.  With per-sample steps it is at least the
        largest ``nfe_forward`` (finished samples ride along until the batch is
        done).  A Python ``int`` in torch; ``None`` for one JAX example: under
        ``jax.vmap`` the batched loop runs the field ``max(nfe_forward)`` times
        (:meth:`batch_evaluations`).
    n_steps:
        Step attempts, accepted plus rejected.
    n_accepted, n_rejected:
        Accepted and rejected step attempts.
    """

    nfe_forward: Any
    nfe_backward: Any
    n_steps: Any
    n_accepted: Any
    n_rejected: Any
    nfe_batch: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The counts by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def mean(self, name: str = "nfe_forward") -> float:
        """The mean over samples of count ``name`` (a float; NaN when not reported).

        Accepts the counts of every engine: Python ints, numpy, torch (any device)
        and JAX arrays.
        """
        value = getattr(self, name)
        if value is None:
            return float("nan")
        if hasattr(value, "cpu"):  # torch: reading it is one device-to-host copy
            value = value.detach().cpu()
        return float(np.mean(np.asarray(value, dtype=np.float64)))

    def batch_evaluations(self) -> int:
        """Calls of the batched field: ``nfe_batch``, or ``max(nfe_forward)`` without it.

        The second form is exact for per-sample counts that come out of
        ``jax.vmap`` (a batched while loop evaluates every lane until the last
        one finishes).
        """
        if self.nfe_batch is not None:
            return int(self.nfe_batch)
        return int(_max(self.nfe_forward))


def _max(value: Any) -> Any:
    return value.max() if hasattr(value, "max") else value


@dataclass(frozen=True)
class StepRecord:
    """Per-step internals of an adaptive solve (``SolveOptions(record_steps=True)``).

    One column per step attempt: arrays of shape ``(batch, n_attempts)`` in
    torch; for one JAX example buffers of shape ``(max_steps,)`` for adaptive
    and SciPy solves and ``(n_steps,)`` for fixed-step methods (a leading
    ``batch`` axis under ``jax.vmap``).  Columns where ``attempted`` is False are padding
    (that sample had finished, or the buffer is longer than the solve) and
    hold zeros.  In the native engines every field is differentiable through
    the steps where gradients are direct (``error_ratio`` and ``stiffness``
    carry the gradient of the solve; the controller itself uses them without
    gradient, as diffrax does).  A field an engine cannot report is ``None``.

    Attributes
    ----------
    t: the time the attempt started from.
    dt: its step size (``t + dt`` is where it would land).
    error_ratio: the scaled error norm the controller compares with 1:
        ``rms(err / (atol + rtol * max(|y0|, |y1|)))`` per sample.
    accepted: whether the attempt was accepted.
    stiffness: Hairer's stiffness estimate ``|k_s - k_{s-1}| / |y_s - y_{s-1}|``
        (Euclidean norms over the state) from the last two stages of the FSAL
        pairs dopri5 and tsit5, which share a stage time; ``dt * stiffness``
        near the method's stability limit (3.3 for both) signals stiffness.
        ``None`` for other methods.
    attempted: whether the column is a step attempt of this sample.
    """

    t: Any
    dt: Any
    error_ratio: Any
    accepted: Any
    stiffness: Any
    attempted: Any

    def as_dict(self) -> dict[str, Any]:
        """The fields by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

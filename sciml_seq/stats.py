"""Solver statistics, shared by every backend."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class SolveStats:
    """What an ODE solve cost.

    Each count is a Python ``int`` when the whole batch shares one step
    sequence (torchdiffeq, fixed-step methods in torch), or an integer array:
    per sample, shape ``(batch,)``, when the backend steps each sample on its
    own (torchode; diffrax under ``vmap``), and 0-d for one JAX example.
    ``None`` means the backend does not report that count (diffrax does not
    report its backward pass, so ``nfe_backward`` is ``None`` in JAX).

    Attributes
    ----------
    nfe_forward:
        Vector-field evaluations in the forward solve, including the ones made
        to pick the first step and rejected attempts.
    nfe_backward:
        Vector-field vector-Jacobian products in the backward pass (for
        ``adjoint="backsolve"`` one per adjoint-dynamics evaluation; for direct
        backprop one per recorded forward evaluation).  In torch it is read
        live: zero until a backward pass has run, then its count.
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

    def as_dict(self) -> dict[str, Any]:
        """The counts by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

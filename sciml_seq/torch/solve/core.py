"""What every PyTorch engine shares: the problem, the field wrapper, the solution, the checks.

An engine module (``native``, ``torchdiffeq_engine``, ``torchode_engine``,
``host``) exposes ``solve(problem: Problem) -> EngineOutput`` and imports only
this module and lower ones; :mod:`sciml_seq.torch.solve` dispatches to it by
the engine's name.

Conventions the engines rely on:

- ``problem.y0`` is flat, ``(batch, size)``; ``problem.field`` takes and
  returns flat states (it reshapes for the user's field, counts, checks).
- ``problem.times`` increase: a decreasing ``ts`` is solved as ``s = -t`` with
  the field ``-f(-s, y)``, which the wrapper applies (``direction``).
- ``EngineOutput.ys`` is ``(batch, n_times, size)``; counts are per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ...errors import DeviceError, DTypeError, NonFiniteError, ShapeError
from ...methods import check_times
from ...solver import SolveOptions
from ...stats import SolveStats, StepRecord

Field = Callable[[Tensor, Tensor], Tensor]
"""``field(t, y) -> dy/dt`` with ``t: (batch,)`` and ``y: (batch, *state)``."""


def reads_values(tensor: Tensor) -> bool:
    """Whether checks may read ``tensor``'s values (a host sync on a GPU).

    False while a CUDA graph is being captured (reading would break the
    capture; the checks ran in the warm-up calls) and for tensors without data
    (the ``meta`` device, used to show that a solve needs no host sync).
    """
    if tensor.is_meta:
        return False
    return not (tensor.is_cuda and torch.cuda.is_current_stream_capturing())


class Counter:
    """Host-side counts of one solve that need no device read.

    ``nfe_batch`` counts calls of the batched field in the forward solve;
    ``nfe_backward`` grows with each vector-Jacobian product of the field in a
    backward pass (not counted inside ``torch.compile``d code, whose backward
    runs as traced).  ``finite`` (when ``track_finite``) collects one 0-d bool per
    call: whether that call's output was finite (read once, after the solve).
    """

    def __init__(self, track_finite: bool = False) -> None:
        self.forward_phase = True
        self.nfe_batch = 0
        self.nfe_backward = 0
        self.track_finite = track_finite
        self.finite: list[Tensor] = []


class _CountVJP(torch.autograd.Function):
    """Identity whose backward counts one vector-Jacobian product of the field."""

    @staticmethod
    def forward(ctx, out: Tensor, counter: Counter) -> Tensor:  # type: ignore[override]
        ctx.counter = counter
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        ctx.counter.nfe_backward += 1
        return grad, None


class FieldWrapper(nn.Module):
    """The user's field as the engines see it: flat states, direction, counts, checks.

    Registered as a submodule so that adjoints find the field's parameters.
    ``forward(t, y)`` takes ``t`` of shape ``(batch,)`` or ``()`` and a flat
    ``y (batch, size)``; it calls ``field(direction * t, y.reshape(batch,
    *state))`` and returns ``direction * dy/dt``, flat.
    """

    def __init__(
        self,
        field: Field,
        counter: Counter,
        state_shape: torch.Size,
        dtype: torch.dtype,
        direction: int = 1,
    ) -> None:
        super().__init__()
        self.field = field
        self.counter = counter
        self.state_shape = state_shape
        self.dtype = dtype
        self.direction = direction

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        counter = self.counter
        # Under torch.compile the counts are left to the engine (a counter bumped in
        # traced code would be a guard that recompiles at every call).
        compiling = torch.compiler.is_compiling()
        if counter.forward_phase and not compiling:
            counter.nfe_batch += 1
        batch = y.shape[0]
        y_state = y.reshape(batch, *self.state_shape)
        t_batch = t.to(self.dtype).expand(batch) if t.ndim == 0 else t.to(self.dtype)
        if self.direction < 0:
            t_batch = -t_batch
        out = self.field(t_batch, y_state)
        if not isinstance(out, Tensor) or out.shape != y_state.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ShapeError(
                f"field(t, y): expected dy/dt with the shape of y {tuple(y_state.shape)}; got {got}"
            )
        if out.dtype != self.dtype:
            raise DTypeError(
                f"field(t, y) returned dtype {out.dtype} for a state of dtype {self.dtype}; "
                "cast the field (e.g. field.to(y0.dtype)) or y0 so that they match"
            )
        if self.direction < 0:
            out = -out
        if counter.track_finite and counter.forward_phase:
            counter.finite.append(torch.isfinite(out).all())
        if torch.is_grad_enabled() and out.requires_grad and not compiling:
            out = _CountVJP.apply(out, counter)
        return out.reshape(y.shape)


@dataclass
class Problem:
    """One solve as an engine receives it.

    Attributes
    ----------
    field: the wrapped field (flat states, increasing time).
    y0: ``(batch, size)`` initial state.
    times: ``(n_times,)`` increasing output times (``ts`` or ``-ts``), ``n_times >= 2``.
    options: the checked options, adjoint resolved.
    counter: host-side counts.
    user_field: the field as the user gave it (host engines need its parameters).
    state_shape: the user's state shape ``(*state)``.
    """

    field: FieldWrapper
    y0: Tensor
    times: Tensor
    options: SolveOptions
    counter: Counter
    user_field: Field
    state_shape: torch.Size


@dataclass
class EngineOutput:
    """What an engine returns.

    Attributes
    ----------
    ys: ``(batch, n_times, size)``.
    stats: per-sample counts (``nfe_forward``, ``n_steps``, ``n_accepted``,
        ``n_rejected``), each an integer tensor ``(batch,)`` or ``None``.
    result: ``(batch,)`` int64 outcome codes (:data:`sciml_seq.stats.RESULTS`).
    t_reached: ``(batch,)`` the (engine) time each sample reached.
    steps: the step record, or ``None``.
    failure: for a failed solve, a message that says more than the outcome
        code (e.g. which step produced NaN), else ``None``.
    """

    ys: Tensor
    stats: dict[str, Tensor | None]
    result: Tensor
    t_reached: Tensor
    steps: StepRecord | None = None
    failure: str | None = None


@dataclass
class Solution:
    """The result of :func:`sciml_seq.torch.solve`.

    Attributes
    ----------
    ys: states at ``ts``, shape ``(batch, n_times, *state)``.
    ts: the output times, shape ``(n_times,)``.
    result: ``(batch,)`` int64 outcome codes, indices of
        :data:`sciml_seq.stats.RESULTS` (0: successful); with ``throw=False`` a
        failed sample's outputs after ``t_reached`` are ``inf``.
    t_reached: ``(batch,)`` the time each sample reached.
    steps: per-step records (``record_steps=True``), else ``None``.
    """

    ys: Tensor
    ts: Tensor
    result: Tensor
    t_reached: Tensor
    steps: StepRecord | None = None
    _counts: dict[str, Any] = field(default_factory=dict, repr=False)
    _counter: Counter | None = field(default=None, repr=False)

    @property
    def stats(self) -> SolveStats:
        """Counts of this solve; ``nfe_backward`` grows when a backward pass runs."""
        counter = self._counter
        return SolveStats(
            nfe_backward=0 if counter is None else counter.nfe_backward,
            nfe_batch=0 if counter is None else counter.nfe_batch,
            **self._counts,
        )


def check_inputs(field: Field, y0: Tensor, ts: Tensor) -> int:
    """Validate ``y0`` and ``ts`` (and the field's parameter dtypes); return the time direction.

    Value checks (finite, monotone) are skipped where values cannot be read
    (:func:`reads_values`).
    """
    if not isinstance(y0, Tensor) or y0.ndim < 2 or y0.numel() == 0:
        got = tuple(y0.shape) if isinstance(y0, Tensor) else type(y0).__name__
        raise ShapeError(
            f"y0: expected a tensor of shape (batch, *state) with batch >= 1 and a non-empty "
            f"state; got {got}"
        )
    if not y0.is_floating_point():
        raise DTypeError(f"y0: expected a floating-point tensor; got dtype {y0.dtype}")
    if not isinstance(ts, Tensor) or not ts.is_floating_point():
        raise DTypeError(
            f"ts: expected a floating-point tensor; got {getattr(ts, 'dtype', type(ts).__name__)}"
        )
    if ts.device != y0.device:
        raise DeviceError(f"ts: expected a tensor on y0's device ({y0.device}); got {ts.device}")
    if torch.finfo(ts.dtype).bits < torch.finfo(y0.dtype).bits:
        raise DTypeError(
            f"ts is {ts.dtype} but y0 is {y0.dtype}: times would lose precision; pass ts in "
            f"{y0.dtype}"
        )
    if isinstance(field, nn.Module):
        for name, param in field.named_parameters():
            if param.device != y0.device:
                raise DeviceError(
                    f"y0: expected a tensor on the field's device ({param.device}, parameter "
                    f"{name!r}); got {y0.device} (move one of them with .to(device))"
                )
            if param.is_floating_point() and param.dtype != y0.dtype:
                raise DTypeError(
                    f"field parameter {name!r} is {param.dtype} but y0 is {y0.dtype}; "
                    "convert one of them (e.g. field.to(y0.dtype))"
                )
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ShapeError(f"ts: expected a 1-D tensor of at least 1 time point; got shape "
                         f"{tuple(ts.shape)}")
    if not reads_values(ts):  # taken as increasing: a captured solve must be given them so
        return 1
    direction = check_times(ts.detach().cpu().numpy(), "ts")
    if reads_values(y0) and not bool(torch.isfinite(y0).all()):
        raise NonFiniteError("y0: expected finite values; got NaN or inf")
    return direction


def per_sample(count: int, batch: int, device: torch.device) -> Tensor:
    """A count shared by the whole batch, as the per-sample ``(batch,)`` int64 tensor."""
    return torch.full((batch,), count, dtype=torch.int64, device=device)

"""PyTorch bridge to the host engines (:mod:`sciml_seq.host`): SciPy and Julia, any field.

:func:`solve` is what :func:`sciml_seq.torch.solve` dispatches to when the
engine is ``"scipy"`` or ``"julia"``.  The field becomes a
:class:`~sciml_seq.host.fields.HostField`:

- a ``TimeMLP`` (the class itself): its :class:`~sciml_seq.host.mlp.MLPFieldSpec`,
  evaluated in numpy (SciPy) or natively in Julia, with no torch call per
  evaluation (the fast path);
- any other field whose state is ``(batch, *state)``: a
  :class:`~sciml_seq.torch.solve.host.field.TorchField` (:mod:`.field`) that calls the
  field through torch on every evaluation and vector-Jacobian product.  Each
  such call is a framework call plus copies (host <-> device on a GPU), and a
  float32 field carries float32 rounding inside the float64 host solve.

The solve runs in float64 on the CPU: ``y0`` and the field's flat inputs
(:func:`flat_params`) are moved there *outside* the autograd Function, so
autograd moves the gradients back to the caller's device and dtype.  The
backward pass calls the engine's continuous adjoint (``backend.backward``);
gradients reach ``y0`` and every parameter (and tensor attribute that requires
grad) of the field, not the output times ``ts``.  With ``record_steps=True``
SciPy's accepted steps come back as :class:`~sciml_seq.stats.StepRecord`
(``t``, ``dt``, ``accepted``; SciPy reports no rejected attempts).

Engines that embed a runtime which must only be entered from the main thread
(Julia) are refused on other threads with a clear error, both when solving and
when the backward pass runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ....errors import ShapeError
from ....host.fields import HostField
from ....host.mlp import mlp_spec_of
from ....host.protocol import HostBackend, HostSolution
from ....host.registry import backend_class, get_backend
from ....host.threads import check_main_thread
from ....solver import SolveOptions
from ....stats import StepRecord
from ..core import Counter, EngineOutput, Field, Problem, per_sample
from .field import TorchField, differentiable_inputs

__all__ = ["TorchField", "check_problem", "flat_params", "host_field", "solve"]


def flat_params(field: Field) -> Tensor:
    """The field's differentiable inputs as one differentiable vector (the host's ``p``).

    For a ``TimeMLP`` this is the layout of :mod:`sciml_seq.host.mlp` and equals
    ``torch.nn.utils.parameters_to_vector(field.parameters())``.
    """
    inputs = differentiable_inputs(field)
    if not inputs:
        return torch.zeros(0)
    return torch.cat([value.reshape(-1) for _, value in inputs])


def host_field(field: Field, y0: Tensor) -> HostField:
    """The :class:`~sciml_seq.host.fields.HostField` of ``field`` for states like ``y0``.

    A ``TimeMLP``'s numpy spec (``y0`` must be ``(batch, features)``), else a
    :class:`TorchField` on ``y0``'s device and dtype.
    """
    spec = mlp_spec_of(field)
    if spec is None:
        return TorchField(field, tuple(y0.shape[1:]), y0.dtype, y0.device)
    if y0.ndim != 2 or y0.shape[1] != spec.features:
        raise ShapeError(
            f"y0: expected shape (batch, {spec.features}) for a TimeMLP; got {tuple(y0.shape)}"
        )
    return spec


class _HostSolve(torch.autograd.Function):
    """``ys = backend.forward(field, y0, p, ts)`` with ``backend.backward`` as its derivative."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        y0: Tensor,
        p: Tensor,
        ts: Tensor,
        backend: HostBackend,
        field: HostField,
        options: SolveOptions,
        counter: Counter,
        box: dict,
    ) -> Tensor:
        differentiable = bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        solution = backend.forward(
            field, y0.numpy(), p.numpy(), ts.numpy(), options, differentiable=differentiable
        )
        ctx.backend, ctx.handle, ctx.counter = backend, solution.handle, counter
        box["solution"] = solution
        if solution.stats.nfe_forward is not None:
            counter.nfe_batch = solution.stats.nfe_forward
        return torch.from_numpy(np.ascontiguousarray(solution.ys))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_ys: Tensor):  # type: ignore[override]
        backend = ctx.backend
        if backend.requires_main_thread:
            check_main_thread(backend.name)
        grad_y0, grad_p, stats = backend.backward(ctx.handle, grad_ys.numpy())
        if stats.nfe_backward is not None:
            ctx.counter.nfe_backward += stats.nfe_backward
        grads = (torch.from_numpy(grad_y0), torch.from_numpy(np.asarray(grad_p)))
        return (*grads, None, None, None, None, None, None)


def check_problem(field: Field, y0: Tensor, options: SolveOptions) -> None:
    """Any field: a ``TimeMLP`` needs ``(batch, features)`` states; the engine checks
    what it cannot do with the field (e.g. Julia: ``Rodas5P`` on a callback field)."""
    backend_class(options.engine).check_field(host_field(field, y0), options)


def _step_record(solution: HostSolution, direction: int, like: Tensor) -> StepRecord | None:
    """SciPy's accepted steps in engine time (increasing), ``(batch, n_accepted)``."""
    if solution.step_times is None:
        return None
    engine_times = direction * solution.step_times
    batch = like.shape[0]

    def rows(values: np.ndarray, dtype: torch.dtype) -> Tensor:
        return torch.as_tensor(values, device=like.device).to(dtype).expand(batch, -1)

    n = engine_times.shape[0] - 1
    true = np.ones(n, dtype=bool)
    return StepRecord(
        t=rows(engine_times[:-1], like.dtype),
        dt=rows(np.diff(engine_times), like.dtype),
        error_ratio=None,
        accepted=rows(true, torch.bool),
        stiffness=None,
        attempted=rows(true, torch.bool),
    )


def solve(problem: Problem) -> EngineOutput:
    """Solve on a host engine (``problem.options.engine``: ``"scipy"`` or ``"julia"``).

    Stats: ``nfe_forward``, ``n_accepted`` (and, where the engine reports them,
    ``n_steps``/``n_rejected``; ``None`` otherwise) from the engine;
    ``nfe_backward`` grows when the backward pass runs.
    """
    options = problem.options
    field = problem.user_field
    y0 = problem.y0
    # y0 as the user gave it: (batch, *state)
    hosted = host_field(field, y0.reshape(y0.shape[0], *problem.state_shape))
    backend = get_backend(options.engine)  # check_problem ran backend.check_field
    if backend.requires_main_thread:
        check_main_thread(options.engine)
    box: dict[str, Any] = {}
    cpu64 = dict(device="cpu", dtype=torch.float64)
    direction = problem.field.direction
    ys = _HostSolve.apply(
        y0.to(**cpu64),
        flat_params(field).to(**cpu64),
        problem.times.detach().to(**cpu64) * direction,
        backend,
        hosted,
        options,
        problem.counter,
        box,
    )
    batch, device = y0.shape[0], y0.device
    solution: HostSolution = box["solution"]
    counts = {
        name: None if value is None else per_sample(value, batch, device)
        for name, value in (
            (name, getattr(solution.stats, name))
            for name in ("nfe_forward", "n_steps", "n_accepted", "n_rejected")
        )
    }
    return EngineOutput(
        ys=ys.to(device=device, dtype=y0.dtype),
        stats=counts,
        result=torch.zeros(batch, dtype=torch.int64, device=device),
        t_reached=problem.times.detach().to(y0.dtype)[-1].expand(batch),
        steps=_step_record(solution, direction, y0) if options.record_steps else None,
    )

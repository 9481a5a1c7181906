"""PyTorch bridge to the host backends (:mod:`sciml_seq.host`): SciPy and Julia.

:func:`solve` is what :func:`sciml_seq.torch.solve` dispatches to when the
engine is ``"scipy"`` or ``"julia"``.  The solve runs in float64 on the CPU:
``y0`` and the field's flat parameters (:func:`flat_params`) are moved there
*outside* the autograd Function, so autograd moves the gradients back to the
caller's device and dtype.  The backward pass calls the backend's continuous
adjoint (``backend.backward``); gradients reach ``y0`` and every parameter of
the ``TimeMLP``, not the output times ``ts``.

Backends that embed a runtime which must only be entered from the main thread
(Julia) are refused on other threads with a clear error, both when solving and
when the backward pass runs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ...errors import ShapeError
from ...host.interface import (
    HostBackend,
    HostOptions,
    check_main_thread,
    get_backend,
    named_params_of,
    spec_from_module,
)
from ...solver import SolveOptions
from .core import Counter, EngineOutput, Field, Problem, per_sample


def flat_params(field: torch.nn.Module) -> Tensor:
    """The ``TimeMLP``'s parameters as one differentiable vector in the host layout.

    Equals ``torch.nn.utils.parameters_to_vector(field.parameters())``; see
    :mod:`sciml_seq.host.interface` for the layout.
    """
    return torch.cat([q.reshape(-1) for q in named_params_of(field).values()])


class _HostSolve(torch.autograd.Function):
    """``ys = backend.forward(y0, p, ts)`` with ``backend.backward`` as its derivative."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        y0: Tensor,
        p: Tensor,
        ts: Tensor,
        backend: HostBackend,
        options: HostOptions,
        counter: Counter,
        box: dict,
    ) -> Tensor:
        differentiable = bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        ys, handle, stats = backend.forward(
            y0.numpy(), p.numpy(), ts.numpy(), options, differentiable=differentiable
        )
        ctx.backend, ctx.handle, ctx.counter = backend, handle, counter
        box["stats"] = stats
        if stats.nfe_forward is not None:
            counter.nfe_batch = stats.nfe_forward
        return torch.from_numpy(np.ascontiguousarray(ys))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_ys: Tensor):  # type: ignore[override]
        backend = ctx.backend
        if backend.requires_main_thread:
            check_main_thread(backend.name)
        grad_y0, grad_p, stats = backend.backward(ctx.handle, grad_ys.numpy())
        if stats.nfe_backward is not None:
            ctx.counter.nfe_backward += stats.nfe_backward
        return torch.from_numpy(grad_y0), torch.from_numpy(grad_p), None, None, None, None, None


def host_options(options: SolveOptions) -> HostOptions:
    """The host backends' view of ``options`` (SciPy's ``first_step``/``max_step`` are
    ``dt0``/``dtmax``)."""
    extra = dict(options.engine_options)
    if options.engine == "scipy":
        if options.dt0 is not None:
            extra["first_step"] = options.dt0
        if options.dtmax is not None:
            extra["max_step"] = options.dtmax
    return HostOptions(
        method=options.method,
        rtol=options.rtol,
        atol=options.atol,
        step_size=options.step_size,
        n_steps=options.n_steps,
        max_steps=options.max_steps,
        adjoint=options.adjoint,
        backend_options=extra,
    )


def check_problem(field: Field, y0: Tensor, options: SolveOptions) -> None:
    """Host engines solve ``TimeMLP`` fields on ``(batch, features)`` states."""
    spec = spec_from_module(field)
    if y0.ndim != 2 or y0.shape[1] != spec.features:
        raise ShapeError(f"y0: expected shape (batch, {spec.features}); got {tuple(y0.shape)}")


def solve(problem: Problem) -> EngineOutput:
    """Solve on a host engine (``problem.options.engine``: ``"scipy"`` or ``"julia"``).

    Stats: ``nfe_forward``, ``n_accepted`` (and, where the backend reports them,
    ``n_steps``/``n_rejected``; ``None`` otherwise) from the backend;
    ``nfe_backward`` grows when the backward pass runs.
    """
    options = problem.options
    field = problem.user_field
    spec = spec_from_module(field)
    host = get_backend(options.engine, spec)
    checked = host.check_options(host_options(options))
    if host.requires_main_thread:
        check_main_thread(options.engine)
    y0 = problem.y0
    box: dict = {}
    cpu64 = dict(device="cpu", dtype=torch.float64)
    ys = _HostSolve.apply(
        y0.to(**cpu64),
        flat_params(field).to(**cpu64),
        problem.times.detach().to(**cpu64) * problem.field.direction,
        host,
        checked,
        problem.counter,
        box,
    )
    batch = y0.shape[0]
    stats = box["stats"]
    device = y0.device
    counts = {
        name: None if getattr(stats, name) is None else per_sample(getattr(stats, name), batch,
                                                                     device)
        for name in ("nfe_forward", "n_steps", "n_accepted", "n_rejected")
    }
    return EngineOutput(
        ys=ys.to(device=device, dtype=y0.dtype),
        stats=counts,
        result=torch.zeros(batch, dtype=torch.int64, device=device),
        t_reached=problem.times.detach().to(y0.dtype)[-1].expand(batch),
    )


__all__ = ["check_problem", "flat_params", "host_options", "solve"]

"""PyTorch bridge to the host backends (:mod:`sciml_seq.host`): SciPy and Julia.

:func:`solve_host` is what :func:`sciml_seq.torch.solve` dispatches to when
``backend`` is ``"scipy"`` or ``"julia"``; it returns the same
:class:`~sciml_seq.torch.solve.Solution`.  The solve runs in float64 on the CPU:
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

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ShapeError
from ..host.interface import (
    HostBackend,
    HostOptions,
    check_main_thread,
    get_backend,
    named_params_of,
    spec_from_module,
)
from .solve import Field, Solution, _check_inputs, _Counter


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
        counter: _Counter,
    ) -> Tensor:
        differentiable = bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        ys, handle, stats = backend.forward(
            y0.numpy(), p.numpy(), ts.numpy(), options, differentiable=differentiable
        )
        ctx.backend, ctx.handle, ctx.counter = backend, handle, counter
        counter.nfe_forward = stats.nfe_forward
        counter.n_steps = stats.n_steps
        counter.n_accepted = stats.n_accepted
        counter.n_rejected = stats.n_rejected
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
        return torch.from_numpy(grad_y0), torch.from_numpy(grad_p), None, None, None, None


def solve_host(
    field: Field,
    y0: Tensor,
    ts: Tensor,
    *,
    backend: str,
    method: str,
    rtol: float,
    atol: float,
    step_size: float | None,
    n_steps: int | None,
    max_steps: int,
    adjoint: str,
    backend_options: Mapping[str, Any] | None = None,
) -> Solution:
    """Solve on a host backend; the arguments mean what they mean in :func:`solve`.

    ``field`` must be a :class:`~sciml_seq.torch.TimeMLP` and ``y0`` of shape
    ``(batch, features)``.  ``method`` is one of the backend's names
    (:func:`sciml_seq.host.host_methods`); ``adjoint`` one of its continuous
    adjoints, ``"direct"``/``"checkpoint"`` selecting its default.

    Stats: ``nfe_forward``, ``n_accepted`` (and, where the backend reports them,
    ``n_steps``/``n_rejected``; ``None`` otherwise) from the backend;
    ``nfe_backward`` grows when the backward pass runs.
    """
    spec = spec_from_module(field)
    host = get_backend(backend, spec)
    options = host.check_options(
        HostOptions(
            method=method,
            rtol=rtol,
            atol=atol,
            step_size=step_size,
            n_steps=n_steps,
            max_steps=max_steps,
            adjoint=adjoint,
            backend_options=backend_options,
        )
    )
    _check_inputs(field, y0, ts)
    if y0.ndim != 2 or y0.shape[1] != spec.features:
        raise ShapeError(f"y0 must have shape (batch, {spec.features}), got {tuple(y0.shape)}")
    if host.requires_main_thread:
        check_main_thread(backend)
    counter = _Counter(max_steps)
    cpu64 = dict(device="cpu", dtype=torch.float64)
    ys = _HostSolve.apply(
        y0.to(**cpu64),
        flat_params(field).to(**cpu64),
        ts.detach().to(**cpu64),
        host,
        options,
        counter,
    )
    counter.forward_phase = False
    return Solution(ys=ys.to(device=y0.device, dtype=y0.dtype), ts=ts, _counter=counter)


__all__ = ["flat_params", "solve_host"]

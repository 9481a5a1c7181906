"""``adjoint="backsolve"`` for the native engine: the continuous adjoint solved backwards.

The forward solve keeps no graph (O(1) memory in the number of steps).  The
backward pass solves, interval by interval from the last output time to the
first, the augmented system in reversed time ``s = -t``::

    dy/ds = -f(t, y),   da/ds = a^T df/dy,   dg/ds = a^T df/dtheta

from ``y = ys[i]`` (reset to the forward output at each output time, as
torchdiffeq's ``odeint_adjoint``), adding ``grad_ys[i]`` to ``a`` at each
output time.  The whole batch with the parameter integral ``g`` is stepped
as one system (its error norm is the batch's), with the engine's own method
and controller; ``seminorm=True`` measures the error on ``(y, a)`` only
(Kidger, Chen and Lyons, "Hey, that's not an ODE", ICML 2021), which usually
takes fewer backward steps.  Fixed-step methods step the forward grid
backwards.

Gradients with respect to the output times come from ``dL/dt_i = g_i .
f(t_i, y_i)`` for ``i >= 1`` and ``dL/dt_0 = -a(t_0) . f(t_0, y_0)`` (the
adjoint identity ``d/dt (a . f) = a . df/dt`` along the trajectory), so the
field needs no derivative in ``t``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor

from ....errors import SolverError
from ....tableaus import Tableau
from ..core import FieldWrapper, reads_values
from .adaptive import AdaptiveLoop
from .controller import Controller
from .fixed import run_fixed

Forward = Callable[[Tensor, Tensor], Tensor]
"""``forward(y0, times) -> ys (batch, n_times, size)``, run without gradient."""


class Backsolve:
    """The backward half of one backsolve solve (the forward half is ``forward``)."""

    def __init__(
        self,
        field: FieldWrapper,
        tab: Tableau,
        ctrl: Controller | None,
        forward: Forward,
        seminorm: bool,
        max_steps: int,
        check_every: int | None,
        step_size: float | None,
        n_steps: int | None,
    ) -> None:
        self.field = field
        self.tab = tab
        self.ctrl = ctrl
        self.forward = forward
        self.seminorm = seminorm
        self.max_steps = max_steps
        self.check_every = check_every
        self.step_size = step_size
        self.n_steps = n_steps
        self.params = tuple(p for p in field.parameters() if p.requires_grad)

    def apply(self, y0: Tensor, times: Tensor) -> Tensor:
        """The outputs ``(batch, n_times, size)``, differentiable through the adjoint."""
        return _BacksolveFunction.apply(self, y0, times, *self.params)

    # -- the backward pass --------------------------------------------------------------

    def _augmented(self, batch: int, size: int) -> Callable[[Tensor, Tensor], Tensor]:
        """The augmented field on one flat system ``z = [y, a, g]`` of shape ``(1, N)``."""
        field, params, n = self.field, self.params, batch * size

        def rates(s: Tensor, z: Tensor) -> Tensor:
            y = z[0, :n].reshape(batch, size)
            a = z[0, n : 2 * n].reshape(batch, size)
            t = (-s).expand(batch)
            with torch.enable_grad():
                y_ = y.detach().requires_grad_(True)
                f = field(t, y_)
                vjps = torch.autograd.grad(f, (y_, *params), a, allow_unused=True)
            pieces = [-f.detach().reshape(-1), vjps[0].reshape(-1)]
            for p, v in zip(params, vjps[1:], strict=True):
                pieces.append((torch.zeros_like(p) if v is None else v).reshape(-1))
            return torch.cat(pieces)[None]

        return rates

    def _integrate(self, rates, z0: Tensor, span: Tensor, norm_size: int) -> Tensor:
        """Solve the augmented system over ``span = [s0, s1]`` (increasing); the end state."""
        if self.ctrl is None:  # fixed steps: the forward grid of this interval, backwards
            run = run_fixed(
                rates, self.tab, z0, span, self.step_size, self.n_steps, record=False,
                values=span.detach().cpu().numpy() if self.step_size is not None else None,
            )
            return run.ys[:, -1]
        ctrl = dataclasses.replace(
            self.ctrl, batch_control=False, norm_size=norm_size if self.seminorm else None
        )
        loop = AdaptiveLoop(rates, self.tab, ctrl, span, record=False)
        state = loop.start(z0)
        every = self.check_every
        left = self.max_steps
        while left > 0:
            chunk = min(every or left, left)
            state, _ = loop.run(state, chunk)
            left -= chunk
            if every is not None and reads_values(z0) and bool(state.done.all()):
                break
        state, ys = loop.finish(state, z0)
        if reads_values(z0) and not bool(state.done.all()):
            raise SolverError(
                f"the adjoint (backward) solve reached max_steps={self.max_steps}; raise "
                "max_steps, loosen rtol/atol, or use seminorm=True",
                t_reached=float(-state.tprev[0]),
                n_steps=int(state.n_steps[0]),
            )
        return ys[:, -1]

    def backward(
        self, ys: Tensor, times: Tensor, grad_ys: Tensor, need_times: bool
    ) -> tuple[Tensor, Tensor | None, list[Tensor]]:
        batch, n_times, size = ys.shape
        n = batch * size
        n_params = sum(p.numel() for p in self.params)
        rates = self._augmented(batch, size)
        a = grad_ys[:, -1]
        g = ys.new_zeros(n_params)
        grad_times = torch.zeros_like(times) if need_times else None
        for i in range(n_times - 1, 0, -1):
            if grad_times is not None:
                f_i = self.field(times[i].expand(batch), ys[:, i])
                grad_times[i] = (f_i * grad_ys[:, i]).sum()
            z0 = torch.cat([ys[:, i].reshape(-1), a.reshape(-1), g.new_zeros(n_params)])[None]
            span = torch.stack([-times[i], -times[i - 1]])
            z1 = self._integrate(rates, z0, span, 2 * n)[0]
            a = z1[n : 2 * n].reshape(batch, size)
            g = g + z1[2 * n :]
            if i > 1:
                a = a + grad_ys[:, i - 1]
        if grad_times is not None:
            f_0 = self.field(times[0].expand(batch), ys[:, 0])
            grad_times[0] = -(a * f_0).sum()
        grad_y0 = a + grad_ys[:, 0]
        grads, offset = [], 0
        for p in self.params:
            grads.append(g[offset : offset + p.numel()].reshape(p.shape))
            offset += p.numel()
        return grad_y0, grad_times, grads


class _BacksolveFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, solver: Backsolve, y0: Tensor, times: Tensor, *params: Tensor):  # type: ignore[override]
        ys = solver.forward(y0, times)
        ctx.solver = solver
        ctx.save_for_backward(ys, times)
        return ys

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_ys: Tensor):  # type: ignore[override]
        solver: Backsolve = ctx.solver
        ys, times = ctx.saved_tensors
        grad_y0, grad_times, grads = solver.backward(ys, times, grad_ys, ctx.needs_input_grad[2])
        return (None, grad_y0, grad_times, *grads)


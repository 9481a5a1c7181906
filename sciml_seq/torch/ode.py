"""Continuous-depth blocks: ``ODEBlock`` and its fixed-depth twin ``ResidualStack``.

Mirrors :mod:`sciml_seq.jax.ode`: same constructor arguments, same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import OptionError, ShapeError
from ..methods import fixed_grid
from ..ode import (
    INTEGRALS,
    LOCAL_REGULARIZERS,
    STEP_REGULARIZERS,
    TAYLOR_ORDER,
    check_block_engine,
    check_block_options,
    check_block_regularizers,
    check_stack_layers,
)
from ..regularization import local_time
from ..solver import SolveOptions, solve_options
from ..stats import SolveStats, StepRecord
from .cache import cacheable_tensor
from .checks import check_module_input
from .regularizers import local_regularization, step_regularization, total_derivative
from .solve import Solution, solve


@dataclass
class BlockOutput:
    """What :meth:`ODEBlock.solve` returns.

    Attributes
    ----------
    ys: the final state ``(batch, *state)``, or the states at ``ts``
        ``(batch, n_times, *state)`` when times were given.
    regularization: ``{name: (batch,)}`` integrals of the block's regularisers.
    t_end: the end time integrated to (random under STEER in training).
    solution: the underlying :class:`~sciml_seq.torch.solve.Solution` (its ``ys``
        include the state at ``local_time`` when one was drawn).
    local_time: the time ``t_r`` of the local regularisers, or ``None`` (not drawn:
        none asked for, or evaluation mode).

    The same fields and properties as :class:`sciml_seq.jax.BlockOutput`.
    """

    ys: Tensor
    regularization: dict[str, Tensor]
    t_end: float
    solution: Solution
    local_time: float | None = None

    @property
    def stats(self) -> SolveStats:
        """Solver statistics; ``nfe_backward`` fills in after a backward pass."""
        return self.solution.stats

    @property
    def steps(self) -> StepRecord | None:
        """The solve's step records when it recorded them (``record_steps=True``,
        set by ``"error"``/``"stiffness"``), else ``None``."""
        return self.solution.steps


class _Regularized(nn.Module):
    """The field on an augmented flat state ``[h, integrals...]`` (RNODE, TayNODE)."""

    def __init__(
        self,
        field: nn.Module,
        state_shape: torch.Size,
        regularizers: tuple[str, ...],
        noise,
        taylor_order: int,
    ) -> None:
        super().__init__()
        self.field = field
        self.state_shape = state_shape
        self.regularizers = regularizers
        self.noise = noise
        self.taylor_order = taylor_order
        self.size = math.prod(state_shape)

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        h = y[:, : self.size].reshape(y.shape[0], *self.state_shape)
        rates = []
        if "jacobian" in self.regularizers:
            # Under no_grad (e.g. the forward pass of adjoint="backsolve") a view of a
            # state that requires grad still says requires_grad but is cut off the graph.
            connected = torch.is_grad_enabled() and h.requires_grad
            with torch.enable_grad():
                if not connected:
                    h = h.detach().requires_grad_(True)
                dh = self.field(t, h)
                (eps_jac,) = torch.autograd.grad(dh, h, self.noise, create_graph=True)
        else:
            dh = self.field(t, h)
        for name in self.regularizers:
            if name == "taylor":
                rate = total_derivative(self.field, t, h, self.taylor_order, velocity=dh)
            else:
                rate = dh if name == "kinetic" else eps_jac
            rates.append(rate.pow(2).flatten(1).sum(1))
        return torch.cat([dh.flatten(1), torch.stack(rates, dim=1)], dim=1)


class ODEBlock(nn.Module):
    """Integrate ``dh/dt = field(t, h)`` over ``[0, t_end]``: a layer whose depth is time.

    Parameters
    ----------
    field:
        Vector field module, ``field(t, h)`` with ``t: (batch,)``, ``h: (batch, *state)``.
    t_end:
        Integration time ``T`` (the block's "depth").
    solver, **options:
        The :class:`~sciml_seq.solver.SolveOptions` of the solve, or its fields as
        keywords (``method="rk4", n_steps=8``); checked here, at construction.
    regularizers:
        Any of :data:`sciml_seq.ode.REGULARIZERS` (``docs/regularizers.md``); their
        values come back in :attr:`BlockOutput.regularization` and
        :attr:`last_regularization`, per sample ``(batch,)``, for the loss
        (weights: :mod:`sciml_seq.regularization`):

        - ``"kinetic"``, ``"jacobian"`` (RNODE) and ``"taylor"`` (TayNODE's
          ``int ||d^K h/dt^K||^2 dt``): integrals along the solve, accumulated by
          augmenting the state (their channels enter the error norm);
        - ``"error"``, ``"stiffness"`` (Pal et al., 2021): ``R_E``, ``R_S`` summed
          over the accepted steps, from the step records (the block sets
          ``record_steps=True``); native engine, adaptive method,
          ``adjoint="direct"`` or ``"checkpoint"``;
        - ``"local_error"``, ``"local_stiffness"`` (Pal et al., 2023): the same
          estimates for one step from a random time ``t_r ~ U[ts[0], ts[-1]]``
          drawn in training mode from torch's global generator (after STEER's
          draw; :attr:`BlockOutput.local_time`); zero in evaluation mode; any
          adjoint of the native engine.
    steer:
        STEER (Ghosh et al., 2020): in training mode, final-state solves
        (``ts=None``) end at ``t_end + U(-steer, steer)``; evaluation uses ``t_end``.
    taylor_order:
        ``K`` of ``"taylor"``: 2 or 3 in PyTorch (exact nested forward-mode
        JVPs); default 3 (Kelly et al.'s MNIST and latent-ODE runs).

    Shapes: ``forward(h0)`` maps ``(batch, *state)`` to ``(batch, *state)``;
    ``forward(h0, ts)`` with ``ts: (n_times,)`` returns ``(batch, n_times, *state)``.
    After each call :attr:`last_stats` holds the solver statistics (of the solve;
    the local regularisers' step costs ``1 + stages`` more evaluations).
    """

    def __init__(
        self,
        field: nn.Module,
        *,
        t_end: float = 1.0,
        regularizers: Sequence[str] = (),
        steer: float = 0.0,
        taylor_order: int = TAYLOR_ORDER,
        solver: SolveOptions | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self.regularizers = check_block_options(t_end, steer, regularizers)
        self.solver = solve_options(solver, **options).for_framework("torch")
        self.taylor_order = check_block_regularizers(
            self.solver, self.regularizers, taylor_order, "torch"
        )
        check_block_engine(self.solver, self.regularizers)
        if any(name in STEP_REGULARIZERS for name in self.regularizers):
            self.solver = self.solver.replace(record_steps=True)
        self.field = field
        self.t_end = float(t_end)
        self.steer = float(steer)
        self._spans: dict[tuple, Tensor] = {}
        self.last_output: BlockOutput | None = None

    def solve(self, h0: Tensor, ts: Tensor | None = None) -> BlockOutput:
        """Solve and return the states with statistics and regularisation values."""
        if not isinstance(h0, Tensor) or h0.ndim < 2:
            got = tuple(h0.shape) if isinstance(h0, Tensor) else type(h0).__name__
            raise ShapeError(f"h0 must be a tensor of shape (batch, *state), got {got}")
        check_module_input("h0", h0, self.field)
        t_end = self.t_end
        if ts is None:
            if self.training and self.steer > 0:
                t_end += self.steer * (2 * float(torch.rand(())) - 1)
                times = torch.tensor([0.0, t_end], dtype=h0.dtype, device=h0.device)
            else:  # kept per device and dtype: no host-to-device copy per call
                times = self._span(h0.device, h0.dtype)
        else:
            times = ts
        local = tuple(n for n in self.regularizers if n in LOCAL_REGULARIZERS)
        index = None
        if local and self.training and times.shape[0] >= 2:
            host = times.detach().cpu().numpy()
            u = np.asarray(float(torch.rand((), dtype=torch.float64)), dtype=host.dtype)
            host, index = local_time(host, u)
            index = int(index)
            times = torch.as_tensor(host, dtype=times.dtype, device=times.device)
        batch, state_shape = h0.shape[0], h0.shape[1:]
        integrals = tuple(n for n in self.regularizers if n in INTEGRALS)
        field, y0 = self.field, h0
        if integrals:
            noise = torch.randn_like(h0) if "jacobian" in integrals else None
            field = _Regularized(self.field, state_shape, integrals, noise, self.taylor_order)
            y0 = torch.cat([h0.flatten(1), h0.new_zeros(batch, len(integrals))], dim=1)
        solution = solve(field, y0, times, solver=self.solver)
        ys = solution.ys
        values: dict[str, Tensor] = {}
        if index is not None:
            values.update(
                local_regularization(
                    field, ys[:, index], times[index], times[-1], self.solver, local
                )
            )
            keep = [i for i in range(times.shape[0]) if i != index]
            ys = ys[:, keep]
        elif local:  # evaluation mode: not drawn
            values.update({name: h0.new_zeros(batch) for name in local})
        on_records = tuple(n for n in self.regularizers if n in STEP_REGULARIZERS)
        if on_records:
            values.update(step_regularization(solution.steps, on_records))
        if integrals:
            size = math.prod(state_shape)
            values.update({n: ys[:, -1, size + i] for i, n in enumerate(integrals)})
            ys = ys[..., :size].reshape(batch, ys.shape[1], *state_shape)
        out = BlockOutput(
            ys=ys[:, -1] if ts is None else ys,
            regularization={name: values[name] for name in self.regularizers},
            t_end=t_end if ts is None else float(ts[-1]),
            solution=solution,
            local_time=None if index is None else float(times[index]),
        )
        self.last_output = out
        return out

    def forward(self, h0: Tensor, ts: Tensor | None = None) -> Tensor:
        return self.solve(h0, ts).ys

    def _span(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        """``[0, t_end]`` on ``device``, built once (a CUDA graph may replay the solve)."""
        key = (device, dtype)
        if key not in self._spans:
            self._spans[key] = cacheable_tensor([0.0, self.t_end], device=device, dtype=dtype)
        return self._spans[key]

    @property
    def last_stats(self) -> SolveStats | None:
        """Statistics of the last call (``None`` before the first)."""
        return None if self.last_output is None else self.last_output.stats

    @property
    def last_regularization(self) -> dict[str, Tensor] | None:
        """Regularisation integrals of the last call, ``{name: (batch,)}``."""
        return None if self.last_output is None else self.last_output.regularization


class ResidualStack(nn.Module):
    """A residual network ``h <- h + dt * f_k(t_k, h)``, ``k = 0..n_layers-1``: Euler's grid.

    With ``dt = t_end / n_layers`` and ``t_k = k * dt`` this is forward Euler
    with ``n_layers`` steps on ``[0, t_end]``.

    - **Weight-tied**, ``ResidualStack(field, n_layers)``: ``f_k = field`` for
      every layer; equals ``ODEBlock(field, method="euler", n_steps=n_layers)``
      (same grid, same operations).  Parameters: ``field.*``.
    - **Untied**, ``ResidualStack([f_0, ..., f_{L-1}])``: layer ``k`` has its own
      field ``f_k``, ``n_layers = L`` (``n_layers`` may be omitted; given, it
      must equal ``L``).  Euler on the piecewise field that is ``f_k`` on
      ``[t_k, t_{k+1})``.  Parameters: ``fields.{k}.*`` (an ``nn.ModuleList``).

    The other attribute is ``None`` (``fields`` when tied, ``field`` when untied).

    Shapes: ``(batch, *state) -> (batch, *state)``; each field is called as
    ``f_k(t, h)`` with ``t: (batch,)`` and ``h: (batch, *state)`` and returns
    ``dh/dt`` of the shape of ``h``.
    """

    def __init__(
        self,
        field: nn.Module | Sequence[nn.Module],
        n_layers: int | None = None,
        *,
        t_end: float = 1.0,
    ) -> None:
        super().__init__()
        check_block_options(t_end, 0.0, ())
        untied = isinstance(field, list | tuple | nn.ModuleList)
        self.n_layers = check_stack_layers(field, n_layers, untied)
        if untied:
            for k, f in enumerate(field):
                if not isinstance(f, nn.Module):
                    raise OptionError(
                        f"field[{k}]: expected an nn.Module (untied fields are registered in "
                        f"an nn.ModuleList); got {type(f).__name__}"
                    )
        self.field = None if untied else field
        self.fields = nn.ModuleList(field) if untied else None
        self.t_end = float(t_end)
        self.grid = fixed_grid(np.array([0.0, t_end]), None, self.n_layers)
        self._grids: dict[tuple, Tensor] = {}

    @property
    def last_stats(self) -> SolveStats:
        """The fixed cost of a call: one evaluation per layer, and one VJP per layer backwards."""
        n = self.n_layers
        return SolveStats(nfe_forward=n, nfe_backward=n, n_steps=n, n_accepted=n, n_rejected=0)

    def forward(self, h: Tensor) -> Tensor:
        key = (h.device, h.dtype)
        if key not in self._grids:  # built once per device and dtype
            self._grids[key] = cacheable_tensor(self.grid, device=h.device, dtype=h.dtype)
        grid = self._grids[key]
        fields = [self.field] * self.n_layers if self.fields is None else self.fields
        for k, field in enumerate(fields):
            h = h + (grid[k + 1] - grid[k]) * field(grid[k].expand(h.shape[0]), h)
        return h

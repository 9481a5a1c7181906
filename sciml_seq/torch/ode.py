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
from ..ode import check_block_engine, check_block_options, check_stack_layers
from ..solver import SolveOptions, solve_options
from ..stats import SolveStats
from .cache import cacheable_tensor
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
    solution: the underlying :class:`~sciml_seq.torch.solve.Solution`.
    """

    ys: Tensor
    regularization: dict[str, Tensor]
    t_end: float
    solution: Solution

    @property
    def stats(self) -> SolveStats:
        """Solver statistics; ``nfe_backward`` fills in after a backward pass."""
        return self.solution.stats


class _Regularized(nn.Module):
    """The field on an augmented flat state ``[h, integrals...]`` (RNODE)."""

    def __init__(
        self, field: nn.Module, state_shape: torch.Size, regularizers: tuple[str, ...], noise
    ) -> None:
        super().__init__()
        self.field = field
        self.state_shape = state_shape
        self.regularizers = regularizers
        self.noise = noise
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
        Any of ``("kinetic", "jacobian")`` (:data:`sciml_seq.ode.REGULARIZERS`);
        their integrals come back in :attr:`BlockOutput.regularization` and
        :attr:`last_regularization`, per sample, for the loss.
    steer:
        STEER (Ghosh et al., 2020): in training mode, final-state solves
        (``ts=None``) end at ``t_end + U(-steer, steer)``; evaluation uses ``t_end``.

    Shapes: ``forward(h0)`` maps ``(batch, *state)`` to ``(batch, *state)``;
    ``forward(h0, ts)`` with ``ts: (n_times,)`` returns ``(batch, n_times, *state)``.
    After each call :attr:`last_stats` holds the solver statistics.
    """

    def __init__(
        self,
        field: nn.Module,
        *,
        t_end: float = 1.0,
        regularizers: Sequence[str] = (),
        steer: float = 0.0,
        solver: SolveOptions | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self.regularizers = check_block_options(t_end, steer, regularizers)
        self.solver = solve_options(solver, **options).for_framework("torch")
        check_block_engine(self.solver, self.regularizers)
        self.field = field
        self.t_end = float(t_end)
        self.steer = float(steer)
        self._spans: dict[tuple, Tensor] = {}
        self.last_output: BlockOutput | None = None

    def solve(self, h0: Tensor, ts: Tensor | None = None) -> BlockOutput:
        """Solve and return the states with statistics and regularisation integrals."""
        if not isinstance(h0, Tensor) or h0.ndim < 2:
            got = tuple(h0.shape) if isinstance(h0, Tensor) else type(h0).__name__
            raise ShapeError(f"h0 must be a tensor of shape (batch, *state), got {got}")
        t_end = self.t_end
        if ts is None:
            if self.training and self.steer > 0:
                t_end += self.steer * (2 * float(torch.rand(())) - 1)
                times = torch.tensor([0.0, t_end], dtype=h0.dtype, device=h0.device)
            else:  # kept per device and dtype: no host-to-device copy per call
                times = self._span(h0.device, h0.dtype)
        else:
            times = ts
        batch, state_shape = h0.shape[0], h0.shape[1:]
        field, y0 = self.field, h0
        if self.regularizers:
            noise = torch.randn_like(h0) if "jacobian" in self.regularizers else None
            field = _Regularized(self.field, state_shape, self.regularizers, noise)
            y0 = torch.cat([h0.flatten(1), h0.new_zeros(batch, len(self.regularizers))], dim=1)
        solution = solve(field, y0, times, solver=self.solver)
        ys = solution.ys
        regularization: dict[str, Tensor] = {}
        if self.regularizers:
            size = math.prod(state_shape)
            integrals = ys[:, -1, size:]
            regularization = {n: integrals[:, i] for i, n in enumerate(self.regularizers)}
            ys = ys[..., :size].reshape(batch, times.shape[0], *state_shape)
        out = BlockOutput(
            ys=ys[:, -1] if ts is None else ys,
            regularization=regularization,
            t_end=t_end if ts is None else float(times[-1]),
            solution=solution,
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

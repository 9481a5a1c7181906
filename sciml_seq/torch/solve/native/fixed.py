"""The native fixed-step loop: Runge--Kutta steps on :func:`sciml_seq.methods.fixed_grid`.

The grid is built from ``ts`` with tensor operations, so outputs carry the
gradient with respect to ``ts`` (the step sizes and stage times depend on
them).  Every output time is a grid point: outputs are states, not
interpolations.  One 0-d finiteness flag per step is kept on the device and
read once after the loop, to name the first step that produced NaN or inf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ....methods import fixed_grid, grid_counts
from ....stats import StepRecord
from ....tableaus import Tableau
from .rk import FlatField, rk_step


@dataclass
class FixedRun:
    """The outputs and what the steps left behind."""

    ys: Tensor  # (batch, n_times, size)
    grid: Tensor  # (n_steps + 1,)
    finite: Tensor  # (n_steps, batch): whether each step's result was finite
    steps: StepRecord | None


def run_fixed(
    field: FlatField,
    tab: Tableau,
    y0: Tensor,
    times: Tensor,
    step_size: float | None,
    n_steps: int | None,
    record: bool,
    values: np.ndarray | None,
    segment: int | None = None,
) -> FixedRun:
    """Step from ``times[0]`` over the grid; ``values``: concrete times (for ``step_size``).

    With ``segment`` (and gradients enabled) the steps run in checkpointed
    segments of that many steps (``adjoint="checkpoint"``).
    """
    counts = (
        [n_steps] * (times.shape[0] - 1)
        if n_steps is not None
        else grid_counts(values, step_size, None)
    )
    grid = fixed_grid(times, step_size, n_steps, xp=torch, counts=counts)
    outputs_at = set(np.cumsum(counts).tolist())
    batch = y0.shape[0]
    total = grid.shape[0] - 1

    def steps(y: Tensor, first: int, last: int) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        outputs, finite = [], []
        for n in range(first, last):
            t, t1 = grid[n].expand(batch), grid[n + 1].expand(batch)
            y = rk_step(field, tab, t, t1, y, field(t, y), t1 - t).y1
            finite.append(torch.isfinite(y).all(dim=1))
            if n + 1 in outputs_at:
                outputs.append(y)
        return y, outputs, finite

    y, outputs, finite = y0, [y0], []
    size = total if segment is None or not torch.is_grad_enabled() else segment
    for first in range(0, total, size):
        last = min(first + size, total)
        if size < total:
            y, chunk_outputs, chunk_finite = checkpoint(steps, y, first, last, use_reentrant=False)
        else:
            y, chunk_outputs, chunk_finite = steps(y, first, last)
        outputs.extend(chunk_outputs)
        finite.extend(chunk_finite)
    records = None
    if record:
        starts = grid[:-1].expand(batch, -1)
        true = torch.ones_like(starts, dtype=torch.bool)
        records = StepRecord(
            t=starts,
            dt=(grid[1:] - grid[:-1]).expand(batch, -1),
            error_ratio=None,
            accepted=true,
            stiffness=None,
            attempted=true,
        )
    return FixedRun(
        ys=torch.stack(outputs, dim=1), grid=grid, finite=torch.stack(finite), steps=records
    )

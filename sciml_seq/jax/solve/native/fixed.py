"""The native fixed-step loop: Runge--Kutta steps on :func:`sciml_seq.methods.fixed_grid`.

The mirror of :mod:`sciml_seq.torch.solve.native.fixed` for one example: a
``lax.scan`` over the grid (:func:`~sciml_seq.jax.solve.core.step_grid`, built
from the times with ``jax.numpy``, so outputs carry the gradient with respect
to them).  Every output time is a grid point: outputs are states, not
interpolations.  One finiteness flag per step names the first step that
produced NaN or inf.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ....stats import StepRecord
from ....tableaus import Tableau
from ..core import grid_steps, step_grid
from .rk import FlatField, rk_step

UNROLL = 2
"""Grids of at most this many steps are unrolled (they compile faster; longer ones loop)."""


class FixedRun(eqx.Module):
    """The outputs and what the steps left behind."""

    ys: Array  # (n_times, size)
    grid: Array  # (n_steps + 1,)
    finite: Array  # (n_steps,): whether each step's result was finite
    steps: StepRecord | None


def run_fixed(
    field: FlatField,
    tab: Tableau,
    y0: Array,
    times: Array,
    n_steps: int | None,
    counts: tuple[int, ...] | None,
    record: bool,
    remat: bool = False,
) -> FixedRun:
    """Step from ``times[0]`` over the grid (``n_steps`` per interval, or ``counts``).

    ``remat``: recompute each step's stages in the backward pass instead of
    keeping them (``adjoint="checkpoint"``; the same gradient).
    """
    grid = step_grid(times, n_steps, counts)

    def step(y: Array, ends: tuple[Array, Array]) -> tuple[Array, tuple[Array, Array]]:
        t, t1 = ends
        y1 = rk_step(field, tab, t, t1, y, field(t, y), t1 - t).y1
        return y1, (y1, jnp.all(jnp.isfinite(y1)))

    if remat:
        step = jax.checkpoint(step)
    n = grid.shape[0] - 1
    unroll = n if n <= UNROLL else 1
    _, (states, finite) = jax.lax.scan(step, y0, (grid[:-1], grid[1:]), unroll=unroll)
    ends = np.cumsum(grid_steps(times.shape[0], n_steps, counts)) - 1
    ys = jnp.concatenate([y0[None], states[ends]])
    steps = None
    if record:
        true = jnp.ones(n, bool)
        steps = StepRecord(
            t=grid[:-1],
            dt=grid[1:] - grid[:-1],
            error_ratio=None,
            accepted=true,
            stiffness=None,
            attempted=true,
        )
    return FixedRun(ys=ys, grid=grid, finite=finite, steps=steps)

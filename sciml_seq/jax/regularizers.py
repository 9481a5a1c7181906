"""The solver-heuristic, local and Taylor regularisers of :class:`~sciml_seq.jax.ODEBlock`.

The mirror of :mod:`sciml_seq.torch.regularizers` for one example (read it for
the definitions and sources; ``docs/regularizers.md`` has the details):

- :func:`step_regularization`: ``R_E``, ``R_S`` (Pal et al., 2021) from a solve's
  step records;
- :func:`local_regularization`: the same for one step attempt from ``t_r``
  (Pal et al., 2023);
- :func:`total_derivative`: ``d^K h / dt^K`` along the solution by Taylor mode
  (``jax.experimental.jet``), the rate of TayNODE's ``R_K`` (Kelly et al., 2020).
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jax import Array
from jax.experimental.jet import jet

from ..solver import SolveOptions
from ..stats import StepRecord
from ..tableaus import TABLEAUS
from .solve.core import FieldWrapper
from .solve.native.adaptive import AdaptiveLoop
from .solve.native.controller import Controller

__all__ = ["local_regularization", "step_regularization", "total_derivative"]

Field = Callable[[Array, Array], Array]


def step_regularization(steps: StepRecord, names: tuple[str, ...]) -> dict[str, Array]:
    """``R_E = sum_j E_j |dt_j|`` and ``R_S = sum_j S_j |dt_j|`` over the accepted steps.

    Pal et al. (2021); see :func:`sciml_seq.torch.regularizers.step_regularization`.
    The records are the buffers of one example, ``(max_steps,)``; padding counts
    nothing.
    Differentiable where the records are (native engine, ``adjoint="checkpoint"``
    or ``"direct"``).

    Returns
    -------
    ``{name: scalar}`` for ``name`` in ``names`` (``"error"``, ``"stiffness"``).
    """
    out = {}
    length = jnp.abs(steps.dt)
    for name in names:
        estimate = steps.error_ratio if name == "error" else steps.stiffness
        out[name] = jnp.sum(jnp.where(steps.accepted, estimate * length, 0.0))
    return out


def local_regularization(
    field: Field,
    y: Array,
    t: Array | float,
    t_end: Array | float,
    solver: SolveOptions,
    names: tuple[str, ...],
) -> dict[str, Array]:
    """``E |dt|`` and ``S |dt|`` of the native engine's first step attempt from ``(t, y)``.

    Pal et al. (2023), Algorithm 1; see
    :func:`sciml_seq.torch.regularizers.local_regularization` (same step: Hairer's
    initial step size or ``dt0``, clipped to the span, one attempt).  ``t`` may be
    traced; ``t_end < t`` integrates backwards.

    Parameters
    ----------
    field: ``field(t, y)`` with a scalar ``t`` and ``y`` of the shape of ``y``.
    y: ``(*state)``, the state at ``t``.
    t, t_end: the step's start and the end of the span.
    solver: the block's solve options.
    names: which of ``"local_error"``, ``"local_stiffness"`` to return.

    Returns
    -------
    ``{name: scalar}``.
    """
    t = jnp.asarray(t, y.dtype)
    t_end = jnp.asarray(t_end, y.dtype)
    direction = jnp.where(t_end > t, 1, -1).astype(jnp.int32)
    tab = TABLEAUS[solver.method]
    ctrl = Controller.from_options(solver, tab)
    times = jnp.stack([t, t_end]) * direction
    loop = AdaptiveLoop(FieldWrapper(field, direction, y.shape), tab, ctrl, times, True, 1)
    record = loop.attempt(loop.start(y.reshape(-1))).records
    length = jnp.abs(record.dt[0])
    out = {}
    for name in names:
        estimate = record.error_ratio if name == "local_error" else record.stiffness
        out[name] = estimate[0] * length
    return out


def total_derivative(
    field: Field, t: Array, h: Array, order: int, velocity: Array | None = None
) -> Array:
    """``d^K h / dt^K`` along the solution of ``dh/dt = field(t, h)`` through ``(t, h)``.

    Taylor mode on the autonomous system ``z = (h, t)``, ``dz/dt = g(z) = (f(t, h),
    1)`` (as Kelly et al.'s code): with the derivatives ``z_1 .. z_k`` of the
    solution at ``z_0``, ``jet(g, (z_0,), ((z_1, ..., z_k),))`` returns ``z_2 ..
    z_{k+1}``; ``K - 1`` such calls give ``z_K``.  Any ``K >= 1``; differentiable
    in ``h`` and the field's arrays.

    Parameters
    ----------
    field: ``field(t, h)`` with a scalar ``t`` and ``h: (*state)``.
    t: a scalar time.
    h: ``(*state)``.
    order: ``K``.
    velocity: ``field(t, h)`` if already computed.

    Returns
    -------
    ``(*state)``.
    """
    shape = h.shape

    def g(z: Array) -> Array:
        rate = field(z[-1], z[:-1].reshape(shape)).reshape(-1)
        return jnp.concatenate([rate, jnp.ones((1,), z.dtype)])

    z0 = jnp.concatenate([h.reshape(-1), jnp.asarray(t, h.dtype).reshape(1)])
    f = field(t, h) if velocity is None else velocity
    series = [jnp.concatenate([f.reshape(-1), jnp.ones((1,), h.dtype)])]
    for _ in range(order - 1):
        _, out = jet(g, (z0,), (tuple(series),))
        series.append(out[-1])
    return series[-1][:-1].reshape(shape)

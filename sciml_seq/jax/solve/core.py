"""What every JAX engine shares: the problem, the field wrapper, the solution, the checks.

An engine module (``native``, ``diffrax_engine``, ``host``) exposes
``solve(problem: Problem) -> EngineOutput``, called inside the front end's
``jit``, and imports only this module and lower ones; :mod:`sciml_seq.jax.solve`
dispatches to it by the engine's name.

Conventions the engines rely on (the mirror of :mod:`sciml_seq.torch.solve.core`):

- JAX acts on one example: ``problem.y0`` is flat, ``(size,)``; ``problem.field``
  takes and returns flat states (it reshapes for the user's field).
- ``problem.times`` increase and are in the state's dtype: a decreasing ``ts``
  is solved as ``s = -t`` with the field ``-f(-s, y)``, which the wrapper applies.
- ``EngineOutput.ys`` is ``(n_times, size)``; counts are 0-d integer arrays
  (``(batch,)`` under ``jax.vmap``).

Also here, because both JAX engines use them: Hairer's initial step
(:func:`initial_step`) and the fixed-step grid (:func:`step_grid`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
from jax import Array

from ...errors import DTypeError, NonFiniteError, ShapeError
from ...methods import check_times, fixed_grid
from ...solver import SolveOptions
from ...stats import RESULTS, SolveStats, StepRecord

Field = Callable[[Array, Array], Array]
"""``field(t, y) -> dy/dt`` with ``t`` a scalar in ``y``'s dtype and ``y: (*state)``."""

SUCCESSFUL = RESULTS.index("successful")
MAX_STEPS = RESULTS.index("max_steps_reached")
DT_MIN = RESULTS.index("dt_min_reached")
NONFINITE = RESULTS.index("nonfinite")
FAILED = RESULTS.index("failed")


def _register_pytrees() -> None:
    """Make :class:`SolveStats` and :class:`StepRecord` pytrees (``None`` fields are empty)."""
    for cls in (SolveStats, StepRecord):
        names = [f.name for f in dataclasses.fields(cls)]
        try:
            jax.tree_util.register_dataclass(cls, data_fields=names, meta_fields=[])
        except ValueError:  # already registered (module reloaded)
            pass


_register_pytrees()


def is_traced(x: Any) -> bool:
    """Whether ``x`` is a tracer."""
    return isinstance(x, jax.core.Tracer)


def concrete(x: Any) -> np.ndarray | None:
    """The values of ``x`` as numpy, or ``None`` where they cannot be read (under ``jit``).

    Tracers of eager transformations (``jax.grad`` without ``jit``) have values.
    """
    if not is_traced(x):
        return np.asarray(x)
    try:
        return jax.extend.core.concrete_or_error(np.asarray, x)
    except jax.errors.ConcretizationTypeError:
        return None


def count(x: Any) -> Array:
    """``x`` as a count: an array of the default integer dtype (not weakly typed)."""
    return jnp.asarray(x, dtype=jnp.result_type(int))


def code(x: Any) -> Array:
    """``x`` as an outcome code (an int32 index of :data:`sciml_seq.stats.RESULTS`)."""
    return jnp.asarray(x, dtype=jnp.int32)


Direction = int | Array
"""``1`` or ``-1``; an int32 array when the times are traced (decided at run time)."""


class FieldWrapper(eqx.Module):
    """The user's field as the engines see it: flat states and increasing time.

    ``wrapper(s, y)`` takes a scalar ``s`` and a flat ``y (size,)``; it calls
    ``field(direction * s, y.reshape(state_shape))`` and returns ``direction *
    dy/dt``, flat.  A module, so that the field's arrays are its leaves
    (``adjoint="backsolve"`` differentiates them).
    """

    field: Field
    direction: Direction
    state_shape: tuple[int, ...] = eqx.field(static=True)

    def __call__(self, s: Array, y: Array) -> Array:
        d = self.direction
        t = s if isinstance(d, int) and d == 1 else d * s
        out = self.field(t.astype(y.dtype), y.reshape(self.state_shape)).reshape(-1)
        return out if isinstance(d, int) and d == 1 else d * out


def directed(x: Array, direction: Direction) -> Array:
    """``direction * x`` (no operation for the static direction ``1``)."""
    return x if isinstance(direction, int) and direction == 1 else direction * x


@dataclass
class Problem:
    """One solve as an engine receives it (inside the front end's ``jit``).

    Attributes
    ----------
    field: the wrapped field (flat states, increasing time).
    y0: ``(size,)`` initial state.
    times: ``(n_times,)`` increasing output times (``ts`` or ``-ts``) in the
        state's dtype, ``n_times >= 2``.
    ts: the output times as the user gave them (host engines take them).
    direction: ``1``/``-1`` (or an int32 array when ``ts`` is traced).
    options: the checked options, adjoint resolved.
    counts: fixed-step methods with ``step_size``: the steps of each output
        interval (static, from the concrete times); else ``None``.
    user_field: the field as the user gave it (host engines need its arrays).
    """

    field: FieldWrapper
    y0: Array
    times: Array
    ts: Array
    direction: Direction
    options: SolveOptions
    counts: tuple[int, ...] | None
    user_field: Field


class StepFailure(eqx.Module):
    """The first fixed step whose result was not finite: its index and its ends."""

    step: Array
    t0: Array
    t1: Array


class EngineOutput(eqx.Module):
    """What an engine returns.

    Attributes
    ----------
    ys: ``(n_times, size)``.
    stats: :class:`~sciml_seq.stats.SolveStats` (counts of this example).
    result: int32 outcome code (:data:`sciml_seq.stats.RESULTS`).
    t_reached: the (engine) time reached.
    steps: step records, or ``None``.
    failure: fixed-step methods: where a step first went non-finite (read only
        when ``result`` says ``nonfinite``), else ``None``.
    """

    ys: Array
    stats: SolveStats
    result: Array
    t_reached: Array
    steps: StepRecord | None = None
    failure: StepFailure | None = None


class Solution(eqx.Module):
    """The result of :func:`sciml_seq.jax.solve` (a pytree: return it from ``jit``/``vmap``).

    Attributes
    ----------
    ys: states at ``ts``, shape ``(n_times, *state)``; ``ys[0] == y0``.  A failed
        adaptive solve (``throw=False``) holds ``inf`` at the times it did not reach.
    ts: the output times, shape ``(n_times,)``.
    stats: :class:`~sciml_seq.stats.SolveStats`; integer scalars (arrays of shape
        ``(batch,)`` under ``jax.vmap``); ``nfe_backward`` and ``nfe_batch`` are
        ``None`` (XLA runs the backward pass; under ``vmap`` the batch costs
        ``max(nfe_forward)`` evaluations).
    result: int32 outcome code, an index of :data:`sciml_seq.stats.RESULTS`
        (``0``: successful; :func:`sciml_seq.stats.result_name` names it).
    t_reached: the time the solve reached (``ts[-1]`` on success).
    steps: per-step records (``record_steps=True``,
        :class:`~sciml_seq.stats.StepRecord`), else ``None``.  Adaptive methods:
        arrays of length ``max_steps`` indexed by attempt, zeros after the last
        attempt (``attempted`` is False there); fixed methods: one column per
        grid step.
    """

    ys: Array
    ts: Array
    stats: SolveStats
    result: Array
    t_reached: Array
    steps: StepRecord | None = None


def check_inputs(field: Field, y0: Any, ts: Any) -> tuple[Array, Array, int | None]:
    """Validate ``y0``, ``ts`` and the field's output; return them with the time direction.

    The direction is ``1``/``-1`` for times whose values can be read and ``None``
    under ``jit`` (a runtime check then guards their order, and the engines read the
    direction off the values).  A traced ``y0`` is checked for NaN/inf with the
    solve's outcome (one runtime check: each costs a device-to-host round trip
    on a GPU).
    """
    y0, ts = jnp.asarray(y0), jnp.asarray(ts)
    if y0.ndim < 1 or y0.size == 0:
        raise ShapeError(
            f"y0: expected an array of shape (*state) with at least one axis and one entry; "
            f"got shape {y0.shape}"
        )
    if not jnp.issubdtype(y0.dtype, jnp.floating):
        raise DTypeError(f"y0: expected a floating-point array; got dtype {y0.dtype}")
    if not jnp.issubdtype(ts.dtype, jnp.floating):
        raise DTypeError(f"ts: expected a floating-point array; got dtype {ts.dtype}")
    if jnp.finfo(ts.dtype).bits < jnp.finfo(y0.dtype).bits:
        raise DTypeError(
            f"ts is {ts.dtype} but y0 is {y0.dtype}: times would lose precision; pass ts in "
            f"{y0.dtype}"
        )
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ShapeError(
            f"ts: expected a 1-D array of at least 1 time point; got shape {ts.shape}"
        )
    _check_field(field, y0)
    values = concrete(ts)
    if values is None:
        steps = jnp.diff(ts)
        ordered = jnp.all(steps > 0) | jnp.all(steps < 0)
        ts = eqx.error_if(
            ts,
            ~(jnp.all(jnp.isfinite(ts)) & ordered),
            "ts: expected finite, strictly increasing or strictly decreasing times",
        )
        direction = None
    else:
        direction = check_times(values, "ts")
    y0_values = concrete(y0)
    if y0_values is not None and not np.all(np.isfinite(y0_values)):
        raise NonFiniteError("y0: expected finite values; got NaN or inf")
    return y0, ts, direction


def _check_field(field: Field, y0: Array) -> None:
    out = jax.eval_shape(
        field, jax.ShapeDtypeStruct((), y0.dtype), jax.ShapeDtypeStruct(y0.shape, y0.dtype)
    )
    if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != y0.shape:
        got = out.shape if isinstance(out, jax.ShapeDtypeStruct) else type(out).__name__
        raise ShapeError(f"field(t, y): expected dy/dt with the shape of y {y0.shape}; got {got}")
    if out.dtype != y0.dtype:
        raise DTypeError(
            f"field(t, y) returned dtype {out.dtype} for a state of dtype {y0.dtype}; "
            "cast the field's parameters or y0 so that they match"
        )


# -- shared by the engines -------------------------------------------------------------


def rms(x: Array) -> Array:
    """The RMS norm of ``x`` (every entry)."""
    return jnp.sqrt(jnp.mean(jnp.square(x)))


def initial_step(
    field: Callable[[Array, Array], Array],
    t0: Array,
    y0: Array,
    f0: Array,
    *,
    rtol: float,
    atol: float,
    order: int,
    norm: Callable[[Array], Array] = rms,
) -> Array:
    """Hairer's first step (Hairer, Norsett & Wanner, II.4; diffrax's ``_select_initial_step``).

    One extra evaluation of the field; ``norm`` measures the scaled state (the
    seminorm of a backsolve measures part of it).  The mirror of
    :func:`sciml_seq.torch.solve.native.controller.initial_step`.  Returns a
    scalar without gradient.
    """
    t0, y0, f0 = jax.lax.stop_gradient((t0, y0, f0))
    scale = jnp.abs(y0) * rtol + atol
    d0 = norm(y0 / scale)
    d1 = norm(f0 / scale)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = jnp.where(small, 1e-6, 0.01 * (d0 / jnp.where(small, 1.0, d1)))
    f1 = field(t0 + h0, y0 + h0 * f0)
    d2 = norm((f1 - f0) / scale) / h0
    max_d = jnp.maximum(d1, d2)
    tiny = max_d <= 1e-15
    h1 = jnp.where(
        tiny,
        jnp.maximum(h0 * 1e-3, 1e-6),
        (0.01 / jnp.where(tiny, 1.0, max_d)) ** (1.0 / order),
    )
    return jax.lax.stop_gradient(jnp.minimum(100 * h0, h1))


def step_grid(times: Array, n_steps: int | None, counts: tuple[int, ...] | None) -> Array:
    """The grid of a fixed-step solve: :func:`sciml_seq.methods.fixed_grid` of ``times``.

    ``n_steps`` per interval, or ``counts[i]`` steps on interval ``i`` (what
    ``step_size`` gives on the concrete times, counted before ``jit``).
    Differentiable in ``times``.
    """
    return fixed_grid(times, None, n_steps, xp=jnp, counts=None if n_steps else counts)


def grid_steps(n_times: int, n_steps: int | None, counts: tuple[int, ...] | None) -> list[int]:
    """Steps per output interval of :func:`step_grid`."""
    return [n_steps] * (n_times - 1) if n_steps is not None else list(counts or ())

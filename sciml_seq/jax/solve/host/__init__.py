"""JAX bridge to the host engines (:mod:`sciml_seq.host`): SciPy and Julia, any field.

:func:`solve` is what :func:`sciml_seq.jax.solve` dispatches to when the engine
is ``"scipy"`` or ``"julia"`` (the mirror of :mod:`sciml_seq.torch.solve.host`).
The field becomes a :class:`~sciml_seq.host.fields.HostField`:

- a ``TimeMLP`` (the class itself): its :class:`~sciml_seq.host.mlp.MLPFieldSpec`,
  evaluated in numpy (SciPy) or natively in Julia, with no JAX call per
  evaluation (the fast path); ``y0`` must be ``(features,)``;
- any other field: a :class:`~sciml_seq.jax.solve.host.field.JaxField`
  (:mod:`.field`) that calls the field through JAX on every evaluation.

The solve is a ``jax.custom_vjp`` whose forward and backward passes are
``jax.pure_callback`` calls into the engine (float64 on the host, cast back to
the input dtype), so it works under ``jit``, ``grad`` and ``vmap``.  Under
``vmap`` the callback runs once per example (``vmap_method="sequential"``):
each example is its own solve, with its own statistics.  Nothing is kept
between the passes (a pure callback must not hold state), so the backward
callback re-solves the forward problem (with dense output) and then runs the
engine's adjoint: one extra forward solve per gradient.  Gradients reach ``y0``
and the field's floating-point arrays; the output times are constants
(``stop_gradient``), as in the torch bridge.  A failed solve comes back as an
outcome code (``max_steps_reached`` or ``failed``) with NaN outputs and
gradients.  With ``record_steps=True`` SciPy's accepted steps come back as a
:class:`~sciml_seq.stats.StepRecord` of length ``max_steps`` (``t``, ``dt``,
``accepted``; zeros after the last step).

Engines that must be entered from the main thread (Julia) are refused on other
threads when the solve is called; callbacks run where XLA runs them (the calling
thread on the CPU platform and, as seen on an H100, on the GPU platform too), and
the Julia engine checks again there.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ....errors import ShapeError, SolverError
from ....host.fields import HostField
from ....host.mlp import mlp_spec_of, named_params_of
from ....host.protocol import HostBackend
from ....host.registry import backend_class, get_backend
from ....host.threads import check_main_thread
from ....solver import SolveOptions
from ....stats import SolveStats, StepRecord
from ..core import FAILED, MAX_STEPS, SUCCESSFUL, EngineOutput, Field, Problem, code, directed
from .field import JaxField, flat_inputs

__all__ = ["JaxField", "check_problem", "flat_params", "host_field", "solve"]

_COUNTS = ("nfe_forward", "n_steps", "n_accepted", "n_rejected")


def flat_params(field: Field) -> Array:
    """The field's differentiable inputs as one vector (the host's ``p``).

    A ``TimeMLP``'s arrays in the layout of :mod:`sciml_seq.host.mlp`; any other
    field's floating-point arrays in ``ravel_pytree`` order (:class:`JaxField`).
    """
    if mlp_spec_of(field) is None:
        return flat_inputs(field)
    return jnp.concatenate([jnp.ravel(a) for a in named_params_of(field).values()])


def host_field(field: Field, y0: Array) -> HostField:
    """The :class:`~sciml_seq.host.fields.HostField` of ``field`` for a state like ``y0``."""
    spec = mlp_spec_of(field)
    if spec is None:
        return JaxField(field, tuple(y0.shape), y0.dtype)
    if y0.shape != (spec.features,):
        raise ShapeError(f"y0: expected shape ({spec.features},) for a TimeMLP; got {y0.shape}")
    return spec


def check_problem(field: Field, y0: Array, options: SolveOptions) -> None:
    """Refuse before tracing what the engine cannot do with the field, or on this thread."""
    engine = backend_class(options.engine)
    engine.check_field(host_field(field, y0), options)
    if engine.requires_main_thread:
        check_main_thread(options.engine)


def _forward_numpy(host: HostBackend, field: HostField, options: SolveOptions, y0, p, ts):
    """One example through ``host.forward``: ``(ys, counts, result, t_reached, step_times)``."""
    dtype = np.asarray(y0).dtype
    count_dtype = np.dtype(jnp.result_type(int))
    y0 = np.asarray(y0, dtype=np.float64)
    ts64 = np.asarray(ts, dtype=np.float64)
    step_times = np.full(options.max_steps + 1, np.nan)
    try:
        solution = host.forward(
            field, y0[None], np.asarray(p, dtype=np.float64), ts64, options, differentiable=False
        )
        counts = [getattr(solution.stats, name) for name in _COUNTS]
        result, t_reached = SUCCESSFUL, ts64[-1]
        ys = solution.ys[0]
        if solution.step_times is not None:
            n = min(solution.step_times.shape[0], step_times.shape[0])
            step_times[:n] = solution.step_times[:n]
    except SolverError as err:  # reported as values: raising in a pure callback is undefined
        ys = np.full((ts64.shape[0], y0.shape[0]), np.nan)
        counts = [None, None, err.n_steps, None]  # host max_steps count accepted steps
        result = MAX_STEPS if getattr(err, "reason", "") == "max_steps" else FAILED
        t_reached = err.t_reached
    counts = np.array([-1 if c is None else int(c) for c in counts], dtype=count_dtype)
    return (
        ys.astype(dtype),
        counts,
        np.asarray(result, dtype=np.int32),
        np.asarray(t_reached, dtype=dtype),
        step_times.astype(dtype),
    )


def _backward_numpy(host: HostBackend, field: HostField, options: SolveOptions, y0, p, ts,
                    grad_ys):
    """One example: re-solve forward, then ``host.backward``; NaN gradients on failure."""
    y0_dtype, p_dtype = np.asarray(y0).dtype, np.asarray(p).dtype
    try:
        solution = host.forward(
            field,
            np.asarray(y0, dtype=np.float64)[None],
            np.asarray(p, dtype=np.float64),
            np.asarray(ts, dtype=np.float64),
            options,
        )
        grad_y0, grad_p, _ = host.backward(
            solution.handle, np.asarray(grad_ys, dtype=np.float64)[None]
        )
        grad_y0 = grad_y0[0]
    except SolverError:
        grad_y0 = np.full(np.shape(y0), np.nan)
        grad_p = np.full(np.shape(p), np.nan)
    return grad_y0.astype(y0_dtype), np.asarray(grad_p).astype(p_dtype)


def _host_solve(host: HostBackend, field: HostField, options: SolveOptions):
    """The custom-VJP solve ``run(y0, p, ts)`` of one example (see the module doc)."""

    def call_forward(y0: Array, p: Array, ts: Array):
        shapes = (
            jax.ShapeDtypeStruct((ts.shape[0], y0.shape[0]), y0.dtype),
            jax.ShapeDtypeStruct((len(_COUNTS),), jnp.result_type(int)),
            jax.ShapeDtypeStruct((), jnp.int32),
            jax.ShapeDtypeStruct((), y0.dtype),
            jax.ShapeDtypeStruct((options.max_steps + 1,), y0.dtype),
        )
        callback = functools.partial(_forward_numpy, host, field, options)
        return jax.pure_callback(callback, shapes, y0, p, ts, vmap_method="sequential")

    @jax.custom_vjp
    def run(y0: Array, p: Array, ts: Array):
        return call_forward(y0, p, ts)

    def fwd(y0: Array, p: Array, ts: Array):
        return call_forward(y0, p, ts), (y0, p, ts)

    def bwd(residuals, cotangents):
        y0, p, ts = residuals
        shapes = (
            jax.ShapeDtypeStruct(y0.shape, y0.dtype),
            jax.ShapeDtypeStruct(p.shape, p.dtype),
        )
        callback = functools.partial(_backward_numpy, host, field, options)
        grad_y0, grad_p = jax.pure_callback(
            callback, shapes, y0, p, ts, cotangents[0], vmap_method="sequential"
        )
        return grad_y0, grad_p, jnp.zeros_like(ts)

    run.defvjp(fwd, bwd)
    return run


def _step_record(step_times: Array, direction: Any) -> StepRecord:
    """SciPy's accepted steps in engine time, zeros after the last (``max_steps`` long)."""
    times = directed(step_times, direction)
    valid = jnp.isfinite(times)
    accepted = valid[1:]
    zero = jnp.zeros((), times.dtype)
    return StepRecord(
        t=jnp.where(accepted, times[:-1], zero),
        dt=jnp.where(accepted, times[1:] - times[:-1], zero),
        error_ratio=None,
        accepted=accepted,
        stiffness=None,
        attempted=accepted,
    )


def solve(problem: Problem) -> EngineOutput:
    """Solve one example on a host engine (``problem.options.engine``).

    Stats: ``nfe_forward``/``n_accepted`` (and ``n_steps``/``n_rejected`` where the
    engine reports them; ``None`` otherwise).
    """
    options = problem.options
    field = problem.user_field
    y0 = problem.y0
    host = get_backend(options.engine)  # check_problem ran the engine's check_field
    hosted = host_field(field, y0.reshape(problem.field.state_shape))
    run = _host_solve(host, hosted, options)
    p = flat_params(field)
    ys, counts, result, t_reached, step_times = run(y0, p, jax.lax.stop_gradient(problem.ts))
    stats = SolveStats(
        nfe_backward=None,
        **{name: (counts[i] if name in host.reported else None) for i, name in enumerate(_COUNTS)},
    )
    return EngineOutput(
        ys=ys,
        stats=stats,
        result=code(result),
        t_reached=directed(t_reached, problem.direction),  # engine time, as the others
        steps=_step_record(step_times, problem.direction) if options.record_steps else None,
    )

"""JAX bridge to the host engines (:mod:`sciml_seq.host`): SciPy and Julia.

:func:`solve` is what :func:`sciml_seq.jax.solve` dispatches to when the engine
is ``"scipy"`` or ``"julia"``.  The solve is a ``jax.custom_vjp`` whose forward
and backward passes are ``jax.pure_callback`` calls into the backend (float64
on the host, cast back to the input dtype), so it works under ``jit``, ``grad``
and ``vmap``.  Under ``vmap`` the callback runs once per example
(``vmap_method="sequential"``): each example is its own solve, and statistics
come back per example.  Nothing is kept between the passes (a pure callback
must not hold state), so the backward callback re-solves the forward problem
(with dense output) and then runs the backend's adjoint: one extra forward
solve per gradient.  Gradients reach ``y0`` and the ``TimeMLP``'s arrays; the
output times are constants (``stop_gradient``), as in the torch bridge.

Backends that must be entered from the main thread (Julia) are refused on other
threads when the solve is called; callbacks run where XLA runs them (the calling
thread on the CPU platform and, as seen on an H100, on the GPU platform too), and
the Julia backend checks again there.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ...errors import ShapeError, SolverError
from ...host.interface import (
    HostBackend,
    HostOptions,
    MLPFieldSpec,
    check_main_thread,
    get_backend,
    named_params_of,
    spec_from_module,
)
from ...solver import SolveOptions
from ...stats import SolveStats
from .core import FAILED, MAX_STEPS, SUCCESSFUL, EngineOutput, Field, Problem, code

_COUNTS = ("nfe_forward", "n_steps", "n_accepted", "n_rejected")


def flat_params(field: Any) -> Array:
    """The ``TimeMLP``'s arrays as one differentiable vector in the host layout."""
    return jnp.concatenate([jnp.ravel(a) for a in named_params_of(field).values()])


def host_options(options: SolveOptions) -> HostOptions:
    """The host backends' view of ``options`` (SciPy's ``first_step``/``max_step`` are
    ``dt0``/``dtmax``), as the torch bridge builds it."""
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


def _forward_numpy(host: HostBackend, options: HostOptions, y0, p, ts):
    """One example through ``host.forward``: ``(ys, counts, result, t_reached)`` as numpy."""
    dtype = np.asarray(y0).dtype
    count_dtype = np.dtype(jnp.result_type(int))
    y0 = np.asarray(y0, dtype=np.float64)
    ts64 = np.asarray(ts, dtype=np.float64)
    try:
        ys, _, stats = host.forward(
            y0[None], np.asarray(p, dtype=np.float64), ts64, options, differentiable=False
        )
        counts = [getattr(stats, name) for name in _COUNTS]
        result, t_reached = SUCCESSFUL, ts64[-1]
        ys = ys[0]
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
    )


def _backward_numpy(host: HostBackend, options: HostOptions, y0, p, ts, grad_ys):
    """One example: re-solve forward, then ``host.backward``; NaN gradients on failure."""
    y0_dtype, p_dtype = np.asarray(y0).dtype, np.asarray(p).dtype
    try:
        _, handle, _ = host.forward(
            np.asarray(y0, dtype=np.float64)[None],
            np.asarray(p, dtype=np.float64),
            np.asarray(ts, dtype=np.float64),
            options,
        )
        grad_y0, grad_p, _ = host.backward(handle, np.asarray(grad_ys, dtype=np.float64)[None])
        grad_y0 = grad_y0[0]
    except SolverError:
        grad_y0 = np.full(np.shape(y0), np.nan)
        grad_p = np.full(np.shape(p), np.nan)
    return grad_y0.astype(y0_dtype), np.asarray(grad_p).astype(p_dtype)


@functools.lru_cache(maxsize=64)
def host_function(engine: str, spec: MLPFieldSpec, options: HostOptions):
    """``(backend, run)``: the custom-VJP solve ``run(y0, p, ts) -> (ys, counts, result,
    t_reached)`` of one example (cached; ``host_function.cache_clear()`` forgets backends)."""
    host = get_backend(engine, spec)

    def call_forward(y0: Array, p: Array, ts: Array):
        shapes = (
            jax.ShapeDtypeStruct((ts.shape[0], y0.shape[0]), y0.dtype),
            jax.ShapeDtypeStruct((len(_COUNTS),), jnp.result_type(int)),
            jax.ShapeDtypeStruct((), jnp.int32),
            jax.ShapeDtypeStruct((), y0.dtype),
        )
        callback = functools.partial(_forward_numpy, host, options)
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
        callback = functools.partial(_backward_numpy, host, options)
        grad_y0, grad_p = jax.pure_callback(
            callback, shapes, y0, p, ts, cotangents[0], vmap_method="sequential"
        )
        return grad_y0, grad_p, jnp.zeros_like(ts)

    run.defvjp(fwd, bwd)
    return host, run


def _checked(options: SolveOptions, field: Field) -> tuple[MLPFieldSpec, HostOptions]:
    spec = spec_from_module(field)
    return spec, get_backend(options.engine, spec).check_options(host_options(options))


def check_problem(field: Field, y0: Array, options: SolveOptions) -> None:
    """Host engines solve ``TimeMLP`` fields on ``(features,)`` states, from the main
    thread where the backend needs it (checked before tracing)."""
    spec, checked = _checked(options, field)
    if y0.shape != (spec.features,):
        raise ShapeError(f"y0: expected shape ({spec.features},); got {y0.shape}")
    if host_function(options.engine, spec, checked)[0].requires_main_thread:
        check_main_thread(options.engine)


def solve(problem: Problem) -> EngineOutput:
    """Solve one example on a host engine (``problem.options.engine``).

    Stats: ``nfe_forward``/``n_accepted`` (and ``n_steps``/``n_rejected`` where the
    backend reports them; ``None`` otherwise).
    """
    options = problem.options
    field = problem.user_field
    host, run = host_function(options.engine, *_checked(options, field))
    y0 = problem.y0
    ys, counts, result, t_reached = run(
        y0, flat_params(field), jax.lax.stop_gradient(problem.ts)
    )
    stats = SolveStats(
        nfe_backward=None,
        **{name: (counts[i] if name in host.reported else None) for i, name in enumerate(_COUNTS)},
    )
    # The engine time (increasing) reached, as the other engines report it.
    engine_t = t_reached if isinstance(problem.direction, int) and problem.direction == 1 else (
        problem.direction * t_reached
    )
    return EngineOutput(ys=ys, stats=stats, result=code(result), t_reached=engine_t)


__all__ = ["check_problem", "flat_params", "host_function", "host_options", "solve"]

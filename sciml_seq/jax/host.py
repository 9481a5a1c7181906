"""JAX bridge to the host backends (:mod:`sciml_seq.host`): SciPy and Julia.

:func:`solve_host` is what :func:`sciml_seq.jax.solve` dispatches to when
``backend`` is ``"scipy"`` or ``"julia"``; it returns the same
:class:`~sciml_seq.jax.solve.Solution`.

The solve is a ``jax.custom_vjp`` whose forward and backward passes are
``jax.pure_callback`` calls into the backend (float64 on the host, cast back to
the input dtype), so it works under ``jit``, ``grad`` and ``vmap``.  Under
``vmap`` the callback runs once per example (``vmap_method="sequential"``):
each example is its own solve, and statistics come back per example, as
diffrax's do.  Nothing is kept between the passes — a pure callback must not
hold state — so the backward callback re-solves the forward problem (with
dense output) and then runs the backend's adjoint: one extra forward solve per
gradient.  Gradients reach ``y0`` and the ``TimeMLP``'s arrays; the output times
are treated as constants (``stop_gradient``), as in the torch front end.

Backends that must be entered from the main thread (Julia) are refused on other
threads when the solve is called; callbacks run where XLA runs them (the calling
thread on the CPU platform and, as seen on an H100, on the GPU platform too), and
the Julia backend checks again there.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..errors import ShapeError, SolverError
from ..host.interface import (
    HostBackend,
    HostOptions,
    MLPFieldSpec,
    check_main_thread,
    get_backend,
    named_params_of,
    spec_from_module,
)
from ..stats import SolveStats
from .solve import Field, Solution, _check_inputs, _is_traced

_COUNTS = ("nfe_forward", "n_steps", "n_accepted", "n_rejected")
_OK, _MAX_STEPS, _FAILED = 0, 1, 2


def flat_params(field: Any) -> Array:
    """The ``TimeMLP``'s arrays as one differentiable vector in the host layout."""
    return jnp.concatenate([jnp.ravel(a) for a in named_params_of(field).values()])


def _forward_numpy(host: HostBackend, options: HostOptions, y0, p, ts):
    """One example through ``host.forward``: ``(ys, counts, status, t_reached)`` as numpy."""
    dtype = np.asarray(y0).dtype
    count_dtype = np.dtype(jnp.result_type(int))
    y0 = np.asarray(y0, dtype=np.float64)
    ts64 = np.asarray(ts, dtype=np.float64)
    try:
        ys, _, stats = host.forward(
            y0[None], np.asarray(p, dtype=np.float64), ts64, options, differentiable=False
        )
        counts = [getattr(stats, name) for name in _COUNTS]
        status, t_reached = _OK, ts64[-1]
        ys = ys[0]
    except SolverError as err:  # reported as values: raising in a pure callback is undefined
        ys = np.full((ts64.shape[0], y0.shape[0]), np.nan)
        counts = [None, None, err.n_steps, None]
        status = _MAX_STEPS if getattr(err, "reason", "") == "max_steps" else _FAILED
        t_reached = err.t_reached
    counts = np.array([-1 if c is None else int(c) for c in counts], dtype=count_dtype)
    return (
        ys.astype(dtype),
        counts,
        np.asarray(status, dtype=np.int32),
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
def _host_function(backend: str, spec: MLPFieldSpec, options: HostOptions):
    """The custom-VJP solve ``(y0, p, ts) -> (ys, counts, status, t_reached)`` for one example."""
    host = get_backend(backend, spec)

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


def solve_host(
    field: Field,
    y0: Any,
    ts: Any,
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
    throw: bool = True,
) -> Solution:
    """Solve one example on a host backend; the arguments mean what they mean in :func:`solve`.

    ``field`` must be a :class:`~sciml_seq.jax.TimeMLP` and ``y0`` of shape
    ``(features,)``.  Stats: ``nfe_forward``/``n_accepted`` (and
    ``n_steps``/``n_rejected`` where the backend reports them; ``None``
    otherwise) as integer arrays, ``nfe_backward`` is ``None``.
    """
    spec = spec_from_module(field)
    options = get_backend(backend, spec).check_options(
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
    host, run = _host_function(backend, spec, options)
    y0, ts = _check_inputs(field, jnp.asarray(y0), jnp.asarray(ts))
    if y0.shape != (spec.features,):
        raise ShapeError(f"y0 must have shape ({spec.features},), got {y0.shape}")
    if host.requires_main_thread:
        check_main_thread(backend)
    ys, counts, status, t_reached = run(y0, flat_params(field), jax.lax.stop_gradient(ts))
    stats = SolveStats(
        nfe_backward=None,
        **{name: (counts[i] if name in host.reported else None) for i, name in enumerate(_COUNTS)},
    )
    R = diffrax.RESULTS
    result = R.where(
        status == _OK,
        R.successful,
        R.where(status == _MAX_STEPS, R.max_steps_reached, R.dt_min_reached),
    )
    solution = Solution(ys=ys, ts=ts, stats=stats, result=result, t_reached=t_reached)
    if not throw:
        return solution
    max_steps_msg = (
        f"the {backend} solve exceeded max_steps={max_steps}; raise max_steps, loosen "
        "rtol/atol, or use a stiff method"
    )
    failed_msg = f"the {backend} solver failed (step size too small); try a stiff method"
    if _is_traced(status):
        checked = eqx.error_if(ys, status == _MAX_STEPS, max_steps_msg)
        checked = eqx.error_if(checked, status == _FAILED, failed_msg)
        return eqx.tree_at(lambda s: s.ys, solution, checked)
    if int(status) != _OK:
        raise SolverError(
            max_steps_msg if int(status) == _MAX_STEPS else failed_msg,
            t_reached=float(t_reached),
            n_steps=int(counts[2]),
        )
    return solution


__all__ = ["flat_params", "solve_host"]

"""The SciPy host backend: ``scipy.integrate`` solvers forward, the continuous adjoint backward.

Always available (SciPy is a core dependency), float64, and the way to reach
stiff solvers (Radau, BDF, LSODA) from an ``ODEBlock``::

    ODEBlock(field, backend="scipy", method="Radau", rtol=1e-8, atol=1e-10)

SciPy's own step options go through ``backend_options`` (:data:`BACKEND_OPTIONS`)::

    ODEBlock(field, backend="scipy", backend_options={"max_step": 0.05})

Forward: the batch is solved as ONE stacked system of size ``batch *
features`` (one step sequence for the whole batch, as torchdiffeq), stepping
SciPy's ``OdeSolver`` classes (the solvers behind ``scipy.integrate.solve_ivp``)
in a loop so that ``max_steps`` is enforced, and keeping every step's dense
output (an ``OdeSolution``).  Outputs at ``ts`` are read from the dense output,
as ``solve_ivp(t_eval=ts)`` does.  Implicit methods get the analytic Jacobian of
the MLP (block diagonal over the batch; sparse for Radau/BDF, banded for LSODA).

Backward, for each output interval from the last to the first, the adjoint
``a = dL/dy`` and the parameter integral ``g`` solve

    da/dt = -a^T df/dy,   dg/dt = -a^T df/dp

backwards with the same method and tolerances, adding ``grad_ys`` at each output
time.  ``adjoint="interpolating"`` (default) reads the state ``y(t)`` from the
forward dense output; ``"backsolve"`` re-solves ``dy/dt = f`` backwards alongside
and resets ``y`` to the forward output at each output time (torchdiffeq's
``odeint_adjoint``).  Vector-Jacobian products are hand-written numpy
(:func:`sciml_seq.host.interface.mlp_field_vjp`).  The Newton iterations of
implicit methods on the adjoint use the block-diagonal part of its Jacobian
(``-df/dy^T``, and ``df/dy`` for the re-solved state); this affects only their
convergence rate, not the solution.

Statistics: ``nfe_forward`` is SciPy's ``nfev``; ``n_accepted`` the accepted
steps; SciPy does not report rejected step attempts, so ``n_steps`` and
``n_rejected`` are ``None``.  ``nfe_backward`` counts adjoint right-hand-side
evaluations (one VJP each).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.integrate
import scipy.sparse

from ..checks import check_int, check_real, format_choices
from ..errors import NonFiniteError, OptionError, ShapeError, SolverError
from ..methods import check_times
from ..stats import SolveStats
from .interface import (
    HostOptions,
    MLPFieldSpec,
    OptionCheck,
    check_backend_option_values,
    mlp_field,
    mlp_field_jacobian,
    mlp_field_vjp,
    normalise_adjoint,
)

SHARED_NAMES = {"dopri5": "RK45", "bosh3": "RK23", "dopri8": "DOP853"}
"""Our shared method names that SciPy provides, and SciPy's class for each."""

SCIPY_NAMES = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
"""SciPy's own method names (also accepted in lower case: ``"dop853"``, ``"radau"``)."""

IMPLICIT = ("Radau", "BDF", "LSODA")
"""Methods that use a Jacobian (LSODA switches to BDF when it detects stiffness)."""

BACKEND_OPTIONS: dict[str, OptionCheck] = {
    "first_step": functools.partial(check_real, gt=0.0),
    "max_step": functools.partial(check_real, gt=0.0),
}
"""The SciPy backend's own options (``backend_options``), passed to SciPy's solver class
(every method takes them) in the forward and in each adjoint solve:

- ``first_step``: the initial step size (default: SciPy's heuristic);
- ``max_step``: the largest step size allowed (default: unbounded).
"""


def _canonical(method: str) -> str | None:
    if method in SHARED_NAMES:
        return SHARED_NAMES[method]
    for name in SCIPY_NAMES:
        if method in (name, name.lower()):
            return name
    return None


@dataclass
class ScipyHandle:
    """What :meth:`ScipyBackend.backward` needs from the forward solve."""

    p: np.ndarray
    ts: np.ndarray
    ys: np.ndarray  # (B, T, F)
    dense: scipy.integrate.OdeSolution
    options: HostOptions


def _integrate(
    fun: Callable,
    t0: float,
    t1: float,
    z0: np.ndarray,
    options: HostOptions,
    jac: Callable | None,
    band: int | None,
    phase: str,
    dense: bool,
) -> tuple[np.ndarray, scipy.integrate.OdeSolution | None, int, int]:
    """Step SciPy's solver from ``t0`` to ``t1``: ``(z(t1), dense output, nfev, accepted)``."""
    kwargs: dict[str, Any] = dict(
        rtol=options.rtol, atol=options.atol, **dict(options.backend_options)
    )
    if options.method in IMPLICIT and jac is not None:
        kwargs["jac"] = jac
        if options.method == "LSODA":
            kwargs["lband"] = kwargs["uband"] = band
    solver = getattr(scipy.integrate, options.method)(fun, t0, z0, t1, **kwargs)
    times = [t0]
    interpolants = []
    while solver.status == "running":
        message = solver.step()
        if solver.status == "failed":
            err = SolverError(
                f"scipy {options.method} failed in the {phase} solve: {message}",
                t_reached=float(solver.t),
                n_steps=len(times) - 1,
            )
            err.reason = "failed"
            raise err
        if dense:
            interpolants.append(solver.dense_output())
        times.append(solver.t)
        if solver.status == "running" and len(times) - 1 >= options.max_steps:
            err = SolverError(
                f"the {phase} solve exceeded max_steps={options.max_steps} accepted steps; "
                "raise max_steps, loosen rtol/atol, or use a stiff method (Radau, BDF, LSODA)",
                t_reached=float(solver.t),
                n_steps=len(times) - 1,
            )
            err.reason = "max_steps"
            raise err
    solution = scipy.integrate.OdeSolution(times, interpolants) if dense else None
    return np.array(solver.y), solution, int(solver.nfev), len(times) - 1


def _block_jacobian(blocks: np.ndarray, size: int, method: str) -> Any:
    """Block-diagonal ``(size, size)`` Jacobian with ``blocks (N, F, F)`` leading, zeros after.

    Sparse CSC for Radau/BDF, LSODA's packed banded form (bandwidth ``F - 1``).
    """
    n, f, _ = blocks.shape
    r, c = np.meshgrid(np.arange(f), np.arange(f), indexing="ij")
    base = (np.arange(n) * f)[:, None, None]
    if method == "LSODA":
        packed = np.zeros((2 * f - 1, size))
        packed[np.broadcast_to(f - 1 + r - c, blocks.shape), base + c] = blocks
        return packed
    rows = np.broadcast_to(base + r, blocks.shape).reshape(-1)
    cols = np.broadcast_to(base + c, blocks.shape).reshape(-1)
    return scipy.sparse.csc_matrix((blocks.reshape(-1), (rows, cols)), shape=(size, size))


class ScipyBackend:
    """:class:`~sciml_seq.host.interface.HostBackend` over ``scipy.integrate`` (see module doc)."""

    name: ClassVar[str] = "scipy"
    methods: ClassVar[tuple[str, ...]] = (
        *SHARED_NAMES,
        *SCIPY_NAMES,
        *(m.lower() for m in SCIPY_NAMES),
    )
    adjoints: ClassVar[tuple[str, ...]] = ("interpolating", "backsolve")
    requires_main_thread: ClassVar[bool] = False
    reported: ClassVar[tuple[str, ...]] = ("nfe_forward", "n_accepted")

    def __init__(self, spec: MLPFieldSpec) -> None:
        self.spec = spec

    # -- options ----------------------------------------------------------------------

    @classmethod
    def check_options(cls, options: HostOptions) -> HostOptions:
        method = _canonical(options.method) if isinstance(options.method, str) else None
        if method is None:
            raise OptionError(
                f"method: expected one of {format_choices(cls.methods)} with backend='scipy' "
                f"(shared names map to SciPy's: {SHARED_NAMES}; the stiff solvers are Radau, "
                f"BDF and LSODA); got {options.method!r}"
            )
        if options.step_size is not None or options.n_steps is not None:
            raise OptionError(
                "backend='scipy' has adaptive methods only: it takes rtol/atol, not "
                f"step_size={options.step_size!r} / n_steps={options.n_steps!r}"
            )
        return dataclasses.replace(
            options,
            method=method,
            rtol=check_real("rtol", options.rtol, gt=0.0),
            atol=check_real("atol", options.atol, gt=0.0),
            max_steps=check_int("max_steps", options.max_steps),
            adjoint=normalise_adjoint(options.adjoint, cls.adjoints, cls.name),
            backend_options=check_backend_option_values(
                cls.name, options.backend_options, BACKEND_OPTIONS
            ),
        )

    # -- helpers ----------------------------------------------------------------------

    def _check_arrays(self, u0, p, ts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u0 = np.ascontiguousarray(u0, dtype=np.float64)
        p = np.ascontiguousarray(p, dtype=np.float64)
        ts = np.ascontiguousarray(ts, dtype=np.float64)
        if u0.ndim != 2 or u0.shape[1] != self.spec.features:
            raise ShapeError(f"u0 must have shape (batch, {self.spec.features}), got {u0.shape}")
        if p.shape != (self.spec.n_params,):
            raise ShapeError(f"p must have shape ({self.spec.n_params},), got {p.shape}")
        check_times(ts, "ts")
        if not (np.all(np.isfinite(u0)) and np.all(np.isfinite(p))):
            raise NonFiniteError("u0 and p must be finite")
        return u0, p, ts

    def _jacobian(self, p: np.ndarray, t: float, y: np.ndarray) -> np.ndarray:
        return mlp_field_jacobian(self.spec, p, t, y)

    # -- forward / backward -----------------------------------------------------------

    def forward(
        self,
        u0: np.ndarray,
        p: np.ndarray,
        ts: np.ndarray,
        options: HostOptions,
        *,
        differentiable: bool = True,
    ) -> tuple[np.ndarray, ScipyHandle | None, SolveStats]:
        options = self.check_options(options)
        u0, p, ts = self._check_arrays(u0, p, ts)
        spec = self.spec
        batch, features = u0.shape
        size = batch * features

        def fun(t: float, y: np.ndarray) -> np.ndarray:
            return mlp_field(spec, p, t, y.reshape(batch, features)).reshape(-1)

        def jac(t: float, y: np.ndarray) -> Any:
            blocks = self._jacobian(p, t, y.reshape(batch, features))
            return _block_jacobian(blocks, size, options.method)

        _, dense, nfev, accepted = _integrate(
            fun, ts[0], ts[-1], u0.reshape(-1), options, jac, features - 1, "forward", True
        )
        ys = dense(ts).reshape(batch, features, ts.shape[0]).transpose(0, 2, 1).copy()
        ys[:, 0] = u0
        stats = SolveStats(
            nfe_forward=nfev, nfe_backward=None, n_steps=None, n_accepted=accepted, n_rejected=None
        )
        handle = ScipyHandle(p=p, ts=ts, ys=ys, dense=dense, options=options)
        return ys, (handle if differentiable else None), stats

    def backward(
        self, handle: ScipyHandle, grad_ys: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, SolveStats]:
        spec, p, ts, options = self.spec, handle.p, handle.ts, handle.options
        batch, n_times, features = handle.ys.shape
        grad_ys = np.asarray(grad_ys, dtype=np.float64)
        if grad_ys.shape != handle.ys.shape:
            raise ShapeError(f"grad_ys must have shape {handle.ys.shape}, got {grad_ys.shape}")
        size, n_params = batch * features, p.shape[0]
        backsolve = options.adjoint == "backsolve"
        n_state = size if backsolve else 0  # the re-solved state leads the augmented vector

        def state(t: float, z: np.ndarray) -> np.ndarray:
            y = z[:size] if backsolve else handle.dense(t)
            return y.reshape(batch, features)

        def fun(t: float, z: np.ndarray) -> np.ndarray:
            a = z[n_state : n_state + size].reshape(batch, features)
            f, vjp_y, vjp_p = mlp_field_vjp(spec, p, t, state(t, z), a)
            parts = [-vjp_y.reshape(-1), -vjp_p]
            if backsolve:
                parts.insert(0, f.reshape(-1))
            return np.concatenate(parts)

        def jac(t: float, z: np.ndarray) -> Any:
            j = self._jacobian(p, t, state(t, z))
            blocks = -j.transpose(0, 2, 1)
            if backsolve:
                blocks = np.concatenate([j, blocks])
            return _block_jacobian(blocks, n_state + size + n_params, options.method)

        a = grad_ys[:, -1].reshape(-1).copy()
        g = np.zeros(n_params)
        nfe, accepted = 0, 0
        for k in range(n_times - 1, 0, -1):
            parts = [a, g]
            if backsolve:
                parts.insert(0, handle.ys[:, k].reshape(-1))
            z, _, nfev, steps = _integrate(
                fun,
                ts[k],
                ts[k - 1],
                np.concatenate(parts),
                options,
                jac,
                features - 1,
                "adjoint (backward)",
                False,
            )
            nfe += nfev
            accepted += steps
            a = z[n_state : n_state + size] + grad_ys[:, k - 1].reshape(-1)
            g = z[n_state + size :]
        stats = SolveStats(
            nfe_forward=None, nfe_backward=nfe, n_steps=None, n_accepted=accepted, n_rejected=None
        )
        return a.reshape(batch, features), g.copy(), stats


__all__ = [
    "BACKEND_OPTIONS",
    "IMPLICIT",
    "SCIPY_NAMES",
    "SHARED_NAMES",
    "ScipyBackend",
    "ScipyHandle",
]

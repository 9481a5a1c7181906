"""The SciPy host engine: ``scipy.integrate`` solvers forward, the continuous adjoint backward.

Always available (SciPy is a core dependency), float64, any field (a
:class:`~sciml_seq.host.fields.HostField`), and the way to reach stiff solvers
(Radau, BDF, LSODA) from an ``ODEBlock``::

    ODEBlock(field, engine="scipy", method="Radau", rtol=1e-8, atol=1e-10, dtmax=0.05)

Options (:class:`~sciml_seq.solver.SolveOptions`, checked when built):
``method`` (shared names map to SciPy's classes, :data:`sciml_seq.engines.SCIPY_METHODS`),
``rtol``/``atol``, ``max_steps`` (accepted steps per solve, forward and each
adjoint solve), ``adjoint`` (``"interpolating"``, the default, or
``"backsolve"``), ``dt0`` -> SciPy's ``first_step`` and ``dtmax`` -> its
``max_step``, in the forward solve and in every adjoint solve (``first_step``
is cut to the length of an interval shorter than it, which SciPy requires).

Forward: the batch is solved as ONE stacked system of size ``batch * features``
(one step sequence for the whole batch, as torchdiffeq), stepping SciPy's
``OdeSolver`` classes (the solvers behind ``scipy.integrate.solve_ivp``) in a
loop so that ``max_steps`` is enforced, and keeping every step's dense output
(an ``OdeSolution``).  Outputs at ``ts`` are read from the dense output, as
``solve_ivp(t_eval=ts)`` does.  Implicit methods get the Jacobian of the field,
block diagonal over the batch (sparse for Radau/BDF, banded for LSODA): the
field's own (:class:`~sciml_seq.host.mlp.MLPFieldSpec`: analytic), else
assembled exactly from ``F`` vector-Jacobian products per Jacobian evaluation
(:func:`~sciml_seq.host.fields.jacobian_from_vjp`).

Backward, for each output interval from the last to the first, the adjoint
``a = dL/dy`` and the parameter integral ``g`` solve

    da/dt = -a^T df/dy,   dg/dt = -a^T df/dp

backwards with the same method and tolerances, adding ``grad_ys`` at each output
time.  ``adjoint="interpolating"`` reads the state ``y(t)`` from the forward
dense output; ``"backsolve"`` re-solves ``dy/dt = f`` backwards alongside and
resets ``y`` to the forward output at each output time (torchdiffeq's
``odeint_adjoint``).  The Newton iterations of implicit methods on the adjoint
use the block-diagonal part of its Jacobian (``-df/dy^T``, and ``df/dy`` for the
re-solved state); this affects only their convergence rate, not the solution.

Cost of a callback field (any field but ``MLPFieldSpec``): every evaluation
below is a call into the framework plus copies between numpy and its arrays.

Statistics: ``nfe_forward`` counts evaluations of the field in the forward
solve (SciPy's ``nfev``, plus one per vector-Jacobian product that assembles a
Jacobian); ``n_accepted`` the accepted steps; SciPy does not report rejected
step attempts, so ``n_steps`` and ``n_rejected`` are ``None``.  ``nfe_backward``
counts the field's vector-Jacobian products in the backward pass.
:attr:`HostSolution.step_times` holds the accepted step boundaries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.integrate
import scipy.sparse

from ..engines import SCIPY_IMPLICIT, SCIPY_METHODS
from ..errors import ShapeError, SolverError
from ..solver import SolveOptions
from ..stats import SolveStats
from .fields import HostField, field_jacobian
from .protocol import HostSolution, check_engine, host_inputs, resolved_adjoint

__all__ = ["ScipyBackend", "ScipyHandle"]


class _Counted:
    """``field`` with its evaluations counted (a VJP evaluates the field once too)."""

    def __init__(self, field: HostField) -> None:
        self.field = field
        self.features = field.features
        self.n_params = field.n_params
        self.evaluations = 0
        self.vjps = 0
        self.jacobian = field.jacobian  # the field's own: not an evaluation of f

    def f(self, t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        self.evaluations += 1
        return self.field.f(t, y, p)

    def vjp(self, t, y, p, a):
        self.vjps += 1
        return self.field.vjp(t, y, p, a)


@dataclass
class ScipyHandle:
    """What :meth:`ScipyBackend.backward` needs from the forward solve."""

    field: HostField
    p: np.ndarray
    ts: np.ndarray
    ys: np.ndarray  # (B, T, F)
    dense: scipy.integrate.OdeSolution
    options: SolveOptions


@dataclass(frozen=True)
class _Settings:
    """SciPy's view of the options."""

    method: str
    rtol: float
    atol: float
    max_steps: int
    first_step: float | None
    max_step: float | None

    @classmethod
    def of(cls, options: SolveOptions) -> _Settings:
        return cls(
            method=SCIPY_METHODS[options.method],
            rtol=options.rtol,
            atol=options.atol,
            max_steps=options.max_steps,
            first_step=options.dt0,
            max_step=options.dtmax,
        )

    @property
    def implicit(self) -> bool:
        return self.method in SCIPY_IMPLICIT


def _integrate(
    fun: Callable,
    t0: float,
    t1: float,
    z0: np.ndarray,
    settings: _Settings,
    jac: Callable | None,
    band: int,
    phase: str,
    dense: bool,
) -> tuple[np.ndarray, scipy.integrate.OdeSolution | None, int, list[float]]:
    """Step SciPy's solver from ``t0`` to ``t1``: ``(z(t1), dense output, nfev, step times)``."""
    kwargs: dict[str, Any] = dict(rtol=settings.rtol, atol=settings.atol)
    if settings.first_step is not None:
        kwargs["first_step"] = min(settings.first_step, abs(t1 - t0))
    if settings.max_step is not None:
        kwargs["max_step"] = settings.max_step
    if settings.implicit:
        kwargs["jac"] = jac
        if settings.method == "LSODA":
            kwargs["lband"] = kwargs["uband"] = band
    solver = getattr(scipy.integrate, settings.method)(fun, t0, z0, t1, **kwargs)
    times = [t0]
    interpolants = []
    while solver.status == "running":
        message = solver.step()
        if solver.status == "failed":
            err = SolverError(
                f"scipy {settings.method} failed in the {phase} solve: {message}",
                t_reached=float(solver.t),
                n_steps=len(times) - 1,
            )
            err.reason = "failed"
            raise err
        if dense:
            interpolants.append(solver.dense_output())
        times.append(solver.t)
        if solver.status == "running" and len(times) - 1 >= settings.max_steps:
            err = SolverError(
                f"the {phase} solve reached max_steps={settings.max_steps} accepted steps; "
                "raise max_steps, loosen rtol/atol, or use a stiff method (Radau, BDF, LSODA)",
                t_reached=float(solver.t),
                n_steps=len(times) - 1,
            )
            err.reason = "max_steps"
            raise err
    solution = scipy.integrate.OdeSolution(times, interpolants) if dense else None
    return np.array(solver.y), solution, int(solver.nfev), times


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
    """:class:`~sciml_seq.host.protocol.HostBackend` over ``scipy.integrate`` (see module doc)."""

    name: ClassVar[str] = "scipy"
    requires_main_thread: ClassVar[bool] = False
    reported: ClassVar[tuple[str, ...]] = ("nfe_forward", "n_accepted")

    @classmethod
    def check_field(cls, field: HostField, options: SolveOptions) -> None:
        """Any field: only the engine of ``options`` is checked."""
        check_engine(options, cls.name)

    def forward(
        self,
        field: HostField,
        y0: np.ndarray,
        p: np.ndarray,
        ts: np.ndarray,
        options: SolveOptions,
        *,
        differentiable: bool = True,
    ) -> HostSolution:
        check_engine(options, self.name)
        y0, p, ts = host_inputs(field, y0, p, ts)
        settings = _Settings.of(options)
        batch, features = y0.shape
        size = batch * features
        counted = _Counted(field)

        def fun(t: float, y: np.ndarray) -> np.ndarray:
            return counted.f(t, y.reshape(batch, features), p).reshape(-1)

        def jac(t: float, y: np.ndarray) -> Any:
            blocks = field_jacobian(counted, t, y.reshape(batch, features), p)
            return _block_jacobian(blocks, size, settings.method)

        _, dense, _, times = _integrate(
            fun, ts[0], ts[-1], y0.reshape(-1), settings, jac, features - 1, "forward", True
        )
        ys = dense(ts).reshape(batch, features, ts.shape[0]).transpose(0, 2, 1).copy()
        ys[:, 0] = y0
        stats = SolveStats(
            nfe_forward=counted.evaluations + counted.vjps,
            nfe_backward=None,
            n_steps=None,
            n_accepted=len(times) - 1,
            n_rejected=None,
        )
        handle = ScipyHandle(field=field, p=p, ts=ts, ys=ys, dense=dense, options=options)
        return HostSolution(
            ys=ys,
            stats=stats,
            handle=handle if differentiable else None,
            step_times=np.array(times, dtype=np.float64),
        )

    def backward(
        self, handle: ScipyHandle, grad_ys: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, SolveStats]:
        p, ts = handle.p, handle.ts
        settings = _Settings.of(handle.options)
        field = _Counted(handle.field)
        batch, n_times, features = handle.ys.shape
        grad_ys = np.asarray(grad_ys, dtype=np.float64)
        if grad_ys.shape != handle.ys.shape:
            raise ShapeError(f"grad_ys: expected shape {handle.ys.shape}; got {grad_ys.shape}")
        size, n_params = batch * features, p.shape[0]
        backsolve = resolved_adjoint(handle.options) == "backsolve"
        n_state = size if backsolve else 0  # the re-solved state leads the augmented vector

        def state(t: float, z: np.ndarray) -> np.ndarray:
            y = z[:size] if backsolve else handle.dense(t)
            return y.reshape(batch, features)

        def fun(t: float, z: np.ndarray) -> np.ndarray:
            a = z[n_state : n_state + size].reshape(batch, features)
            f, vjp_y, vjp_p = field.vjp(t, state(t, z), p, a)
            parts = [-vjp_y.reshape(-1), -vjp_p]
            if backsolve:
                parts.insert(0, f.reshape(-1))
            return np.concatenate(parts)

        def jac(t: float, z: np.ndarray) -> Any:
            j = field_jacobian(field, t, state(t, z), p)
            blocks = -j.transpose(0, 2, 1)
            if backsolve:
                blocks = np.concatenate([j, blocks])
            return _block_jacobian(blocks, n_state + size + n_params, settings.method)

        a = grad_ys[:, -1].reshape(-1).copy()
        g = np.zeros(n_params)
        accepted = 0
        for k in range(n_times - 1, 0, -1):
            parts = [a, g]
            if backsolve:
                parts.insert(0, handle.ys[:, k].reshape(-1))
            z, _, _, times = _integrate(
                fun,
                ts[k],
                ts[k - 1],
                np.concatenate(parts),
                settings,
                jac,
                features - 1,
                "adjoint (backward)",
                False,
            )
            accepted += len(times) - 1
            a = z[n_state : n_state + size] + grad_ys[:, k - 1].reshape(-1)
            g = z[n_state + size :]
        stats = SolveStats(
            nfe_forward=None,
            nfe_backward=field.vjps,
            n_steps=None,
            n_accepted=accepted,
            n_rejected=None,
        )
        return a.reshape(batch, features), g.copy(), stats

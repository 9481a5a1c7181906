"""The host-engine protocol: :class:`HostBackend`, what it returns, and its input checks.

A host engine (SciPy, Julia) solves ``dy/dt = f(t, y; p)`` for a
:class:`~sciml_seq.host.fields.HostField` on float64 numpy arrays and pulls
output cotangents back with a continuous adjoint::

    backend = get_backend("scipy")                        # sciml_seq.host.registry
    sol = backend.forward(field, y0, p, ts, options)      # HostSolution
    grad_y0, grad_p, stats = backend.backward(sol.handle, grad_ys)

``options`` is a :class:`~sciml_seq.solver.SolveOptions` of that engine,
checked when it was built: a backend maps the method name to its own, reads
``rtol``/``atol``/``max_steps``/``adjoint``/``dt0``/``dtmax`` (and the engine's
``engine_options``) and checks nothing the options checked already.  What it
does check is what depends on the field (:meth:`HostBackend.check_field`) and
on the arrays (:func:`host_inputs`).

The framework bridges (:mod:`sciml_seq.torch.solve.host`,
:mod:`sciml_seq.jax.solve.host`) turn the pair into a ``torch.autograd.Function``
and a ``jax.custom_vjp``.  Shapes: ``y0`` is ``(B, F)``, ``p`` is ``(P,)``,
``ts`` is ``(T,)``, ``T >= 2`` (strictly monotone; decreasing integrates backwards), ``ys``
and ``grad_ys`` are ``(B, T, F)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..errors import NonFiniteError, OptionError, ShapeError
from ..methods import check_times
from ..solver import SolveOptions
from ..stats import SolveStats
from .fields import HostField

__all__ = ["HostBackend", "HostSolution", "check_engine", "host_inputs", "resolved_adjoint"]


@dataclass
class HostSolution:
    """What :meth:`HostBackend.forward` returns.

    Attributes
    ----------
    ys: ``(B, T, F)`` float64, the states at ``ts`` (``ys[:, 0] == y0``).
    stats: the counts of the forward solve (:class:`~sciml_seq.stats.SolveStats`,
        Python ints or ``None`` where the backend does not report one).
    handle: what :meth:`HostBackend.backward` needs; ``None`` unless the solve
        was ``differentiable``.
    step_times: the accepted step boundaries ``t_0, ..., t_n`` in the direction
        of ``ts``, ``(n_accepted + 1,)``, where the backend reports them
        (SciPy), else ``None``.
    """

    ys: np.ndarray
    stats: SolveStats
    handle: Any = None
    step_times: np.ndarray | None = None


@runtime_checkable
class HostBackend(Protocol):
    """An ODE solver running on the host with a continuous adjoint.

    Class attributes: ``name`` (its engine name in :data:`sciml_seq.engines.ENGINES`);
    ``requires_main_thread`` (the bridges refuse other threads); ``reported``
    (the :class:`SolveStats` counts its forward stats fill in; others are None).
    """

    name: ClassVar[str]
    requires_main_thread: ClassVar[bool]
    reported: ClassVar[tuple[str, ...]]

    @classmethod
    def check_field(cls, field: HostField, options: SolveOptions) -> None:
        """Raise ``OptionError`` when ``options`` cannot solve ``field`` with this backend.

        A classmethod: it starts nothing (no Julia), so a bridge can refuse before
        solving.
        """
        ...

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
        """Solve from ``y0 (B, F)`` with parameters ``p (P,)``; ``ys`` is ``(B, T, F)``.

        Failures raise :class:`~sciml_seq.errors.SolverError` with
        ``err.reason`` set to ``"max_steps"`` or ``"failed"``.
        """
        ...

    def backward(
        self, handle: Any, grad_ys: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, SolveStats]:
        """Pull ``grad_ys (B, T, F)`` back to ``(grad_y0 (B, F), grad_p (P,), stats)``.

        ``stats.nfe_backward`` counts vector-Jacobian products of the field
        (``None`` where the backend cannot count them).
        """
        ...


def check_engine(options: SolveOptions, engine: str) -> None:
    """Raise ``OptionError`` unless ``options`` were built for ``engine``."""
    if not isinstance(options, SolveOptions) or options.engine != engine:
        got = options.engine if isinstance(options, SolveOptions) else type(options).__name__
        raise OptionError(
            f"options: expected sciml_seq.solver.SolveOptions with engine={engine!r}; got {got!r}"
        )


def resolved_adjoint(options: SolveOptions) -> str:
    """``options.adjoint``, or the engine's default (its first adjoint) when ``None``."""
    return options.adjoint if options.adjoint is not None else options.spec.adjoints[0]


def host_inputs(
    field: HostField, y0: Any, p: Any, ts: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y0, p, ts)`` as contiguous float64 arrays, checked against ``field``.

    Raises ``ShapeError`` for ``y0`` not ``(B, features)``, ``p`` not
    ``(n_params,)`` or fewer than 2 times (the front ends return ``y0`` for one
    time without solving), ``NonFiniteError`` for NaN/inf, ``OptionError`` (from
    :func:`sciml_seq.methods.check_times`) for times that are not strictly monotone.
    """
    y0 = np.ascontiguousarray(y0, dtype=np.float64)
    p = np.ascontiguousarray(p, dtype=np.float64)
    ts = np.ascontiguousarray(ts, dtype=np.float64)
    if y0.ndim != 2 or y0.shape[0] == 0 or y0.shape[1] != field.features:
        raise ShapeError(f"y0: expected shape (batch, {field.features}); got {y0.shape}")
    if p.shape != (field.n_params,):
        raise ShapeError(f"p: expected shape ({field.n_params},); got {p.shape}")
    check_times(ts, "ts")
    if ts.shape[0] < 2:
        raise ShapeError(
            f"ts: expected at least 2 times (one time is the initial state: nothing to solve); "
            f"got shape {ts.shape}"
        )
    if not (np.all(np.isfinite(y0)) and np.all(np.isfinite(p))):
        raise NonFiniteError("y0, p: expected finite values; got NaN or inf")
    return y0, p, ts

"""The diffrax engine (``engine="diffrax"``): ``diffrax.diffeqsolve``.

Controller settings map onto ``diffrax.PIDController`` (``dtmin`` with
diffrax's default ``force_dtmin=True``).  The first step is Hairer's heuristic
of the native engine (:func:`sciml_seq.jax.solve.core.initial_step`) unless
``dt0`` is given: diffrax 0.7.2 skips its own heuristic for the wrapped terms
it builds (it then starts from 0.01), so the two JAX engines start alike.
``f(t0, y0)`` is evaluated once, before the solve, and handed to FSAL solvers
as their first stage, so the counts are exact and the native engine's:
``nfe_forward = initial + per_attempt * n_steps``, ``initial`` = 1 (the first
stage of an FSAL pair) + 1 (the heuristic, without ``dt0``), ``per_attempt`` =
stages (one fewer for FSAL pairs); fixed methods ``stages * n_steps``.

Adjoints: ``"checkpoint"`` is ``RecursiveCheckpointAdjoint``, ``"direct"``
``DirectAdjoint``, ``"backsolve"`` ``BacksolveAdjoint`` with the same method
and controller backwards (``seminorm=True``: ``diffrax.adjoint_rms_seminorm``
as the backward controller's norm).  Fixed-step methods step on
:func:`sciml_seq.methods.fixed_grid` (``StepTo``); outcome codes are mapped to
:data:`sciml_seq.stats.RESULTS`.  No step records (the engine table says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from ...stats import SolveStats
from .core import (
    DT_MIN,
    FAILED,
    MAX_STEPS,
    EngineOutput,
    FieldWrapper,
    Problem,
    code,
    count,
    initial_step,
    step_grid,
)

# Kutta's 3/8 rule: torchdiffeq's "rk4", so every engine takes the same steps.
_kutta38_tableau = diffrax.ButcherTableau(
    a_lower=(
        np.array([1 / 3]),
        np.array([-1 / 3, 1.0]),
        np.array([1.0, -1.0, 1.0]),
    ),
    b_sol=np.array([1 / 8, 3 / 8, 3 / 8, 1 / 8]),
    # Error against the embedded second-order rule b = (1/2, 0, 0, 1/2).  Unused:
    # this engine runs the method on a fixed grid only.
    b_error=np.array([1 / 8 - 1 / 2, 3 / 8, 3 / 8, 1 / 8 - 1 / 2]),
    c=np.array([1 / 3, 2 / 3, 1.0]),
)


class Kutta38(diffrax.AbstractERK):
    """Kutta's 3/8-rule fourth-order method (4 stages, not FSAL).

    The ``"rk4"`` of torchdiffeq and of :mod:`sciml_seq.tableaus`.  Dense output
    uses diffrax's cubic Hermite form from the first and last stages (as its
    ``Midpoint``/``Heun`` do): it matches the step's end points, which is all
    this engine reads.
    """

    tableau: ClassVar[diffrax.ButcherTableau] = _kutta38_tableau
    interpolation_cls: ClassVar[Callable[..., diffrax.ThirdOrderHermitePolynomialInterpolation]] = (
        diffrax.ThirdOrderHermitePolynomialInterpolation.from_k
    )

    def order(self, terms: Any) -> int:
        del terms
        return 4


# Our method name -> the diffrax class it needs ("rk4" is Kutta38, built on AbstractERK).
_DIFFRAX_NAMES = {
    "euler": "Euler",
    "midpoint": "Midpoint",
    "heun": "Heun",
    "rk4": "AbstractERK",
    "bosh3": "Bosh3",
    "dopri5": "Dopri5",
    "tsit5": "Tsit5",
    "dopri8": "Dopri8",
}


def available_methods() -> tuple[str, ...]:
    """The shared method names the installed diffrax provides (feature-detected)."""
    return tuple(m for m, name in _DIFFRAX_NAMES.items() if hasattr(diffrax, name))


_EAGER_CACHE: dict[type, type] = {}


def _eager_fsal(cls: type) -> type:
    """``cls`` with ``f(t0, y0)`` evaluated once in ``init`` (FSAL solvers only).

    Stock diffrax FSAL solvers start from a zero placeholder and evaluate the
    first stage on every attempt until the first step is accepted (under
    ``vmap``: until every example's is).  Evaluating it up front gives the same
    numbers with one evaluation.  (The forward solve is handed its first stage
    instead: :func:`_first_stage_state`.)
    """
    if cls not in _EAGER_CACHE:

        class EagerFSAL(cls):  # type: ignore[valid-type, misc]
            def init(self, terms, t0, t1, y0, args):
                state = super().init(terms, t0, t1, y0, args)
                if state is None:  # FSAL disabled (expensive vector field)
                    return None
                return jnp.array(False), self.func(terms, t0, y0, args)

        EagerFSAL.__name__ = EagerFSAL.__qualname__ = cls.__name__
        EagerFSAL.__doc__ = cls.__doc__
        _EAGER_CACHE[cls] = EagerFSAL
    return _EAGER_CACHE[cls]


def _solver_class(name: str) -> type:
    return Kutta38 if name == "rk4" else getattr(diffrax, _DIFFRAX_NAMES[name])


def _is_fsal(cls: type) -> bool:
    tableau = getattr(cls, "tableau", None)
    return isinstance(tableau, diffrax.ButcherTableau) and tableau.fsal


def _make_solver(name: str) -> diffrax.AbstractSolver:
    cls = _solver_class(name)
    return (_eager_fsal(cls) if _is_fsal(cls) else cls)()


def _per_attempt(cls: type) -> int:
    """Field evaluations per step attempt of ``cls`` on an ODETerm."""
    tableau = getattr(cls, "tableau", None)
    if not isinstance(tableau, diffrax.ButcherTableau):  # Euler
        return 1
    return tableau.num_stages - 1 if tableau.fsal else tableau.num_stages


class _GridSteps(diffrax.AbstractStepSizeController):
    """Steps to the next point of a fixed grid, in either time direction.

    Used by the backward pass of ``adjoint="backsolve"`` for fixed-step
    methods: diffrax solves the adjoint between consecutive output times, and
    ``StepTo`` only accepts a grid spanning the whole solve.
    """

    grid: Array  # strictly increasing, in the solve's (direction-normalised) time

    def wrap(self, direction: ArrayLike) -> _GridSteps:
        return _GridSteps(jnp.where(jnp.asarray(direction) == 1, self.grid, -self.grid[::-1]))

    def _next(self, t: ArrayLike) -> Array:
        index = jnp.searchsorted(self.grid, t, side="right")
        return self.grid[jnp.minimum(index, self.grid.shape[0] - 1)]

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        del terms, t1, y0, args, func, error_order
        if dt0 is not None:
            raise ValueError("_GridSteps takes its steps from the grid; dt0 must be None")
        return self._next(t0), None

    def adapt_step_size(
        self, t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state
    ):
        del t0, y0, y1_candidate, args, y_error, error_order
        return True, t1, self._next(t1), False, controller_state, diffrax.RESULTS.successful


class _VectorField(eqx.Module):
    """The wrapped field in diffrax's ``(t, y, args)`` form.

    A module (not a closure) so that the field's arrays are leaves of the
    ``ODETerm``: ``BacksolveAdjoint`` then differentiates with respect to them.
    """

    field: FieldWrapper

    def __call__(self, t: Array, y: Array, args: Any) -> Array:
        del args
        return self.field(t, y)


def _controller(options, norm=None) -> diffrax.PIDController:
    extra = {} if norm is None else {"norm": norm}
    return diffrax.PIDController(
        rtol=options.rtol,
        atol=options.atol,
        pcoeff=options.pcoeff,
        icoeff=options.icoeff,
        dcoeff=options.dcoeff,
        dtmin=options.dtmin,
        dtmax=options.dtmax,
        factormin=options.factormin,
        factormax=options.factormax,
        safety=options.safety,
        **extra,
    )


def _result_code(result: diffrax.RESULTS) -> Array:
    """diffrax's outcome as an index of :data:`sciml_seq.stats.RESULTS`."""
    R = diffrax.RESULTS
    return code(
        jnp.where(
            result == R.successful,
            0,
            jnp.where(
                result == R.max_steps_reached,
                MAX_STEPS,
                jnp.where(result == R.dt_min_reached, DT_MIN, FAILED),
            ),
        )
    )


def solve(problem: Problem) -> EngineOutput:
    """Solve ``problem`` with ``diffrax.diffeqsolve``."""
    options = problem.options
    field, y0, times = problem.field, problem.y0, problem.times
    cls = _solver_class(options.method)
    solver = _make_solver(options.method)
    term = diffrax.ODETerm(_VectorField(field))
    dt0 = solver_state = None
    initial = 0
    if options.adaptive:
        controller: diffrax.AbstractStepSizeController = _controller(options)
        norm = diffrax.adjoint_rms_seminorm if options.seminorm else None
        backward_controller: diffrax.AbstractStepSizeController = _controller(options, norm)
        steps_cap = options.max_steps
        fsal = _is_fsal(cls)
        f0 = field(times[0], y0) if fsal or options.dt0 is None else None
        if options.dt0 is None:
            order = solver.error_order(term)
            dt0 = initial_step(
                field, times[0], y0, f0, rtol=options.rtol, atol=options.atol, order=order
            )
        else:
            dt0 = jnp.asarray(options.dt0, times.dtype)
        if fsal:
            # The first stage, handed over (BacksolveAdjoint refuses a differentiable one).
            first = jax.lax.stop_gradient(f0) if options.adjoint == "backsolve" else f0
            solver_state = (jnp.array(False), first)
        initial = (f0 is not None) + (options.dt0 is None)
    else:
        grid = step_grid(times, options.n_steps, problem.counts)
        controller = diffrax.StepTo(ts=grid)
        backward_controller = _GridSteps(grid)
        # A fixed grid needs exactly len(grid) - 1 steps; capping diffrax's max_steps
        # there keeps DirectAdjoint/checkpointing small.  Fewer allowed steps fail.
        steps_cap = min(options.max_steps, grid.shape[0] - 1)
    if options.adjoint == "direct":
        adjoint: diffrax.AbstractAdjoint = diffrax.DirectAdjoint()
    elif options.adjoint == "checkpoint":
        adjoint = diffrax.RecursiveCheckpointAdjoint()
    else:
        adjoint = diffrax.BacksolveAdjoint(solver=solver, stepsize_controller=backward_controller)

    sol = diffrax.diffeqsolve(
        term,
        solver,
        t0=times[0],
        t1=times[-1],
        dt0=dt0,
        y0=y0,
        # t1=True saves the final (tprev, y) after the times reached: on failure
        # that is where the solver stopped.
        saveat=diffrax.SaveAt(ts=times, t1=True),
        stepsize_controller=controller,
        adjoint=adjoint,
        max_steps=steps_cap,
        solver_state=solver_state,
        throw=False,
    )
    n_times = times.shape[0]
    n_saved = jnp.sum(jnp.isfinite(sol.ts)) - 1  # output times reached
    reached = (jnp.arange(n_times) < n_saved)[:, None]
    ys = jnp.where(reached, sol.ys[:n_times], jnp.inf).at[0].set(y0)
    num_steps = count(sol.stats["num_steps"])
    return EngineOutput(
        ys=ys,
        stats=SolveStats(
            nfe_forward=count(initial + _per_attempt(cls) * num_steps),
            nfe_backward=None,
            n_steps=num_steps,
            n_accepted=count(sol.stats["num_accepted_steps"]),
            n_rejected=count(sol.stats["num_rejected_steps"]),
        ),
        result=_result_code(sol.result),
        t_reached=sol.ts[n_saved].astype(times.dtype),
        steps=None,
    )

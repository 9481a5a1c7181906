"""One ODE-solve front end for JAX, over diffrax.

``solve(field, y0, ts, method=...)`` integrates ``dy/dt = field(t, y)`` for one
example and returns the states at ``ts`` with the cost of the solve
(:class:`~sciml_seq.stats.SolveStats`).

Conventions (shared with :mod:`sciml_seq.torch.solve`):

- JAX code acts on one example; ``jax.vmap`` over ``y0`` batches it.  ``y0`` has
  shape ``(*state)``; ``ts`` has shape ``(n_times,)``, strictly increasing;
  ``Solution.ys`` has shape ``(n_times, *state)``.  Under ``jax.vmap`` the result
  is ``(batch, n_times, *state)``: the layout and numbers of the torch front end.
- The field is called as ``field(t, y)`` with ``t`` a scalar in the dtype of
  ``y`` and ``y`` of shape ``(*state)``; it returns ``dy/dt`` of the same shape
  and dtype as ``y``.  Times are handed to diffrax in the dtype of ``y0``.
- Fixed-step methods step on :func:`sciml_seq.methods.fixed_grid`: every output
  time is a grid point, so outputs are solver states.  (diffrax reads them off
  the step's local interpolant at its end point, which reproduces the state up
  to rounding.)
- Statistics are values: ``n_steps``/``n_accepted``/``n_rejected`` come from
  diffrax and ``nfe_forward`` follows from the tableau (see :func:`solve`);
  under ``jax.vmap`` each is an integer array of shape ``(batch,)``.
  ``nfe_backward`` is ``None``: diffrax does not report backward-pass counts.
- Failures (``max_steps`` reached) raise :class:`~sciml_seq.errors.SolverError`
  when the result is concrete, and an equinox runtime error under ``jit``/
  ``vmap``/``grad``; ``throw=False`` returns the :class:`Solution` with its
  ``result`` to inspect instead.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from ..checks import check_choice
from ..errors import DTypeError, NonFiniteError, OptionError, ShapeError, SolverError
from ..host.interface import HOST_BACKENDS, refuse_backend_options
from ..methods import (
    ADJOINTS,
    METHODS,
    Method,
    check_step_options,
    check_times,
    fixed_grid,
    get_method,
)
from ..stats import SolveStats

Field = Callable[[Array, Array], Array]
Adjoint = Literal["direct", "checkpoint", "backsolve"]


def _register_stats_pytree() -> None:
    """Make :class:`SolveStats` a pytree (``None`` counts are empty subtrees)."""
    names = [f.name for f in dataclasses.fields(SolveStats)]
    try:
        jax.tree_util.register_dataclass(SolveStats, data_fields=names, meta_fields=[])
    except ValueError:  # already registered (module reloaded)
        pass


_register_stats_pytree()


# Kutta's 3/8 rule: torchdiffeq's "rk4", so both backends take the same steps.
_kutta38_tableau = diffrax.ButcherTableau(
    a_lower=(
        np.array([1 / 3]),
        np.array([-1 / 3, 1.0]),
        np.array([1.0, -1.0, 1.0]),
    ),
    b_sol=np.array([1 / 8, 3 / 8, 3 / 8, 1 / 8]),
    # Error against the embedded second-order rule b = (1/2, 0, 0, 1/2).  Unused
    # by `solve`, which runs this method on a fixed grid only.
    b_error=np.array([1 / 8 - 1 / 2, 3 / 8, 3 / 8, 1 / 8 - 1 / 2]),
    c=np.array([1 / 3, 2 / 3, 1.0]),
)


class Kutta38(diffrax.AbstractERK):
    """Kutta's 3/8-rule fourth-order method (4 stages, not FSAL).

    The ``"rk4"`` of torchdiffeq.  Dense output uses diffrax's cubic Hermite
    form from the first and last stages (as its ``Midpoint``/``Heun`` do): it
    matches the step's end points, which is all :func:`solve` reads.
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
    first stage on every attempt until the first step is accepted, so the
    evaluation count would depend on how many first attempts were rejected.
    Evaluating it up front gives the same numbers and an exact count,
    ``1 + (stages - 1) * n_steps``.
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


def _make_solver(name: str) -> diffrax.AbstractSolver:
    cls = Kutta38 if name == "rk4" else getattr(diffrax, _DIFFRAX_NAMES[name])
    tableau = getattr(cls, "tableau", None)
    if isinstance(tableau, diffrax.ButcherTableau) and tableau.fsal:
        cls = _eager_fsal(cls)
    return cls()


def _evaluation_counts(solver: diffrax.AbstractSolver) -> tuple[int, int]:
    """``(initial, per_attempt)`` field evaluations of ``solver`` on an ODETerm."""
    tableau = getattr(type(solver), "tableau", None)
    if not isinstance(tableau, diffrax.ButcherTableau):  # Euler
        return 0, 1
    if tableau.fsal:
        return 1, tableau.num_stages - 1
    return 0, tableau.num_stages


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
    """The user's field in diffrax's ``(t, y, args)`` form.

    A module (not a closure) so that the field's arrays are leaves of the
    ``ODETerm``: ``BacksolveAdjoint`` then differentiates with respect to them.
    """

    field: Field
    dtype: np.dtype = eqx.field(static=True)

    def __call__(self, t: Array, y: Array, args: Any) -> Array:
        del args
        return self.field(jnp.asarray(t, dtype=self.dtype), y)


class Solution(eqx.Module):
    """The result of :func:`solve` (a pytree: return it from ``jit``/``vmap``).

    Attributes
    ----------
    ys: states at ``ts``, shape ``(n_times, *state)``; times not reached by a
        failed solve (``throw=False``) hold ``inf``.
    ts: the output times, shape ``(n_times,)``.
    stats: :class:`~sciml_seq.stats.SolveStats`; integer scalars, or arrays of
        shape ``(batch,)`` under ``jax.vmap``; ``nfe_backward`` is ``None``.
    result: diffrax's outcome, e.g. ``result == diffrax.RESULTS.successful``.
    t_reached: the time the solver reached, scalar (``ts[-1]`` on success).
    """

    ys: Array
    ts: Array
    stats: SolveStats
    result: diffrax.RESULTS
    t_reached: Array


def _is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_inputs(field: Field, y0: Array, ts: Array) -> tuple[Array, Array]:
    """Validate ``y0``/``ts`` and the field's output; returns them (maybe wrapped in checks).

    A traced ``y0`` is checked for NaN/inf after the solve, in the one runtime
    check :func:`_raise_on_failure` attaches (each runtime check costs a
    device-to-host round trip on a GPU).
    """
    if not jnp.issubdtype(y0.dtype, jnp.floating):
        raise DTypeError(f"y0 must be a floating-point array, got dtype {y0.dtype}")
    if not jnp.issubdtype(ts.dtype, jnp.floating):
        raise DTypeError(f"ts must be a floating-point array, got dtype {ts.dtype}")
    if jnp.finfo(ts.dtype).bits < jnp.finfo(y0.dtype).bits:
        raise DTypeError(
            f"ts is {ts.dtype} but y0 is {y0.dtype}: times would lose precision; "
            f"pass ts in {y0.dtype}"
        )
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ShapeError(f"ts must be 1-D with at least 2 time points, got shape {ts.shape}")
    if _is_traced(ts):
        ts = eqx.error_if(
            ts,
            ~(jnp.all(jnp.isfinite(ts)) & jnp.all(ts[1:] > ts[:-1])),
            "ts must be finite and strictly increasing",
        )
    else:
        check_times(np.asarray(ts), "ts")
    if not _is_traced(y0) and not np.all(np.isfinite(np.asarray(y0))):
        raise NonFiniteError("y0 contains NaN or inf")

    out = jax.eval_shape(
        field, jax.ShapeDtypeStruct((), y0.dtype), jax.ShapeDtypeStruct(y0.shape, y0.dtype)
    )
    if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != y0.shape:
        got = out.shape if isinstance(out, jax.ShapeDtypeStruct) else type(out).__name__
        raise ShapeError(f"field(t, y) must return dy/dt with the shape of y {y0.shape}, got {got}")
    if out.dtype != y0.dtype:
        raise DTypeError(
            f"field(t, y) returned dtype {out.dtype} for a state of dtype {y0.dtype}; "
            "cast the field's parameters or y0 so that they match"
        )
    return y0, ts


def solve(
    field: Field,
    y0: ArrayLike,
    ts: ArrayLike,
    *,
    method: str = "dopri5",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    step_size: float | None = None,
    n_steps: int | None = None,
    max_steps: int = 4096,
    adjoint: Adjoint = "checkpoint",
    throw: bool = True,
    backend: str = "diffrax",
    backend_options: Mapping[str, Any] | None = None,
) -> Solution:
    """Integrate ``dy/dt = field(t, y)`` from ``ts[0]`` and return the states at ``ts``.

    Acts on one example; ``jax.vmap`` over ``y0`` for a batch.  Works under
    ``jax.jit`` (with ``n_steps`` rather than ``step_size`` when ``ts`` is traced).

    Parameters
    ----------
    field:
        ``field(t, y) -> dy/dt``; ``t`` a scalar in ``y``'s dtype, ``y`` of shape
        ``(*state)``.  Make it an ``eqx.Module`` (parameters as fields) for
        ``adjoint="backsolve"`` to differentiate its parameters; closed-over
        arrays are fine with the other adjoints.
    y0:
        Initial state, shape ``(*state)``, floating point, finite.
    ts:
        Output times, shape ``(n_times,)``, strictly increasing, ``n_times >= 2``,
        at least as precise as ``y0``.
    method:
        One of :data:`sciml_seq.methods.METHODS` (:func:`available_methods`).
    rtol, atol:
        Tolerances of adaptive methods (diffrax's ``PIDController``, integral
        control, ``dt0=None``; diffrax 0.7.2 then starts from a step of 0.01:
        its initial-step heuristic is skipped for the wrapped terms it builds).
    step_size, n_steps:
        Fixed-step methods need exactly one: the largest step, or the number of
        equal steps per output interval (so ``ts=[0, T], n_steps=N`` takes N steps).
        ``step_size`` needs concrete ``ts``.
    max_steps:
        Step attempts allowed; reaching it fails the solve.
    adjoint:
        ``"checkpoint"`` (diffrax's ``RecursiveCheckpointAdjoint``, exact gradient
        of the discrete solve in O(log n) memory), ``"direct"`` (``DirectAdjoint``,
        the same gradient by plain backpropagation) or ``"backsolve"``
        (``BacksolveAdjoint``: the continuous adjoint ODE solved backwards with
        the same method and step control; approximate, O(1) memory).
    throw:
        Raise on failure (``SolverError``, or an equinox runtime error when
        traced); with ``False`` inspect ``Solution.result`` instead.
    backend:
        ``"diffrax"``, or a host backend, ``"scipy"`` or ``"julia"``
        (:func:`sciml_seq.jax.host.solve_host`: ``TimeMLP`` fields only, float64
        on the host through ``jax.pure_callback``, continuous adjoints).
    backend_options:
        Options of a host backend's own, by name: SciPy's ``first_step`` and
        ``max_step`` (:data:`sciml_seq.host.scipy_backend.BACKEND_OPTIONS`), Julia's
        ``vjp`` and ``controller`` (:data:`sciml_seq.julia.backend.BACKEND_OPTIONS`).
        Unknown names raise ``OptionError`` listing the valid ones; diffrax takes
        none (``None`` or ``{}``).

    Returns
    -------
    :class:`Solution` with ``ys`` of shape ``(n_times, *state)`` and ``stats``:
    ``nfe_forward = initial + per_attempt * n_steps`` with ``(initial,
    per_attempt)`` = ``(0, 1)`` euler, ``(0, 2)`` midpoint/heun, ``(0, 4)`` rk4,
    ``(1, 3)`` bosh3, ``(1, 6)`` dopri5/tsit5, ``(1, 13)`` dopri8.

    Raises
    ------
    OptionError, UnavailableError, ShapeError, DTypeError, NonFiniteError:
        Invalid options or inputs, before anything is solved.
    SolverError:
        ``max_steps`` reached, with the time reached and the step count.
    """
    if backend in HOST_BACKENDS:
        from .host import solve_host

        return solve_host(
            field,
            y0,
            ts,
            backend=backend,
            method=method,
            rtol=rtol,
            atol=atol,
            step_size=step_size,
            n_steps=n_steps,
            max_steps=max_steps,
            adjoint=adjoint,
            backend_options=backend_options,
            throw=throw,
        )
    check_choice("backend", backend, ("diffrax", *HOST_BACKENDS))
    refuse_backend_options(backend, backend_options)
    spec = get_method(method, available_methods(), "diffrax")
    check_step_options(spec, step_size, n_steps, max_steps)
    check_choice("adjoint", adjoint, ADJOINTS)
    y0, ts = _check_inputs(field, jnp.asarray(y0), jnp.asarray(ts))
    grid = None
    if step_size is not None:
        if _is_traced(ts):
            raise OptionError(
                f"step_size={step_size!r} needs concrete ts (the number of steps depends "
                "on their values); under jit pass n_steps instead"
            )
        grid = jnp.asarray(fixed_grid(np.asarray(ts, dtype=y0.dtype), step_size, None))

    sol, hit_max, failed = _solve(
        field,
        y0,
        ts,
        grid,
        method=spec.name,
        rtol=rtol,
        atol=atol,
        n_steps=None if n_steps is None else int(n_steps),
        max_steps=int(max_steps),
        adjoint=adjoint,
    )
    if throw:
        sol = _raise_on_failure(sol, y0, hit_max, failed, max_steps, spec)
    return sol


@eqx.filter_jit
def _solve(
    field: Field,
    y0: Array,
    ts: Array,
    grid: Array | None,
    *,
    method: str,
    rtol: float,
    atol: float,
    n_steps: int | None,
    max_steps: int,
    adjoint: str,
) -> tuple[Solution, Array, Array]:
    """The solve, compiled once per field structure, shapes and options.

    Returns the solution and whether it hit ``max_steps`` / failed at all.
    """
    times = ts.astype(y0.dtype)  # diffrax promotes the state to the time dtype
    solver = _make_solver(method)
    if METHODS[method].adaptive:
        controller = diffrax.PIDController(rtol=rtol, atol=atol)
        backward_controller: diffrax.AbstractStepSizeController = controller
        steps_cap = max_steps
    else:
        if grid is None:
            grid = fixed_grid(times, None, n_steps, xp=jnp)
        controller = diffrax.StepTo(ts=grid)
        backward_controller = _GridSteps(grid)
        # A fixed grid needs exactly len(grid) - 1 steps; capping diffrax's max_steps
        # there keeps DirectAdjoint/checkpointing small.  Fewer allowed steps fail.
        steps_cap = min(max_steps, grid.shape[0] - 1)
    if adjoint == "direct":
        adjoint_obj: diffrax.AbstractAdjoint = diffrax.DirectAdjoint()
    elif adjoint == "checkpoint":
        adjoint_obj = diffrax.RecursiveCheckpointAdjoint()
    else:
        adjoint_obj = diffrax.BacksolveAdjoint(
            solver=solver, stepsize_controller=backward_controller
        )

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_VectorField(field, np.dtype(y0.dtype))),
        solver,
        t0=times[0],
        t1=times[-1],
        dt0=None,
        y0=y0,
        # t1=True saves the final (tprev, y) after the times reached: on failure
        # that is where the solver stopped.
        saveat=diffrax.SaveAt(ts=times, t1=True),
        stepsize_controller=controller,
        adjoint=adjoint_obj,
        max_steps=steps_cap,
        throw=False,
    )

    n_times = ts.shape[0]
    n_saved = jnp.sum(jnp.isfinite(sol.ts)) - 1  # output times reached
    reached = (jnp.arange(n_times) < n_saved).reshape((n_times,) + (1,) * y0.ndim)
    count = functools.partial(jnp.asarray, dtype=jnp.result_type(int))  # not weakly typed
    num_steps = count(sol.stats["num_steps"])
    initial, per_attempt = _evaluation_counts(solver)
    stats = SolveStats(
        nfe_forward=initial + per_attempt * num_steps,
        nfe_backward=None,
        n_steps=num_steps,
        n_accepted=count(sol.stats["num_accepted_steps"]),
        n_rejected=count(sol.stats["num_rejected_steps"]),
    )
    solution = Solution(
        ys=jnp.where(reached, sol.ys[:n_times], jnp.inf),
        ts=ts,
        stats=stats,
        result=sol.result,
        t_reached=sol.ts[n_saved].astype(ts.dtype),
    )
    hit_max = sol.result == diffrax.RESULTS.max_steps_reached
    return solution, hit_max, ~diffrax.is_successful(sol.result)


def _raise_on_failure(
    sol: Solution, y0: Array, hit_max: Array, failed: Array, max_steps: int, spec: Method
) -> Solution:
    """Raise ``SolverError`` for a concrete failed solve; attach one runtime check if traced."""
    max_steps_msg = f"the solver reached max_steps={max_steps}" + (
        "; raise max_steps, loosen rtol/atol, or regularise the dynamics"
        if spec.adaptive
        else "; the fixed grid needs more steps: raise max_steps or take fewer steps"
    )
    if _is_traced(failed) or _is_traced(y0):
        bad_y0 = ~jnp.all(jnp.isfinite(y0))
        # Under vmap equinox reports the largest index in the batch: most specific last.
        messages = ("the diffrax ODE solve failed", max_steps_msg, "y0 contains NaN or inf")
        index = jnp.where(bad_y0, 2, jnp.where(hit_max, 1, 0))
        ys = eqx.branched_error_if(sol.ys, bad_y0 | failed, index, messages)
        return eqx.tree_at(lambda s: s.ys, sol, ys)
    if not np.any(failed):
        return sol
    if np.any(hit_max):
        message = max_steps_msg
    else:
        message = f"the diffrax ODE solve failed: {diffrax.RESULTS[sol.result]}"
    raise SolverError(
        message,
        t_reached=float(np.max(sol.t_reached)),
        n_steps=int(np.max(sol.stats.n_steps)),
    )

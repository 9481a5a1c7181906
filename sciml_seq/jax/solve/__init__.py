"""One ODE-solve front end for JAX, over several engines.

``solve(field, y0, ts, solver=SolveOptions(...))`` integrates ``dy/dt =
field(t, y)`` for one example and returns the states at ``ts`` with what the
solve cost (:class:`~sciml_seq.stats.SolveStats`), its outcome and, on
request, per-step records.  The options may also be given as keywords
(``solve(field, y0, ts, method="rk4", n_steps=8)``), which build the same
:class:`~sciml_seq.solver.SolveOptions`.

Engines (:data:`sciml_seq.engines.ENGINES`; each a module of this package
behind :data:`ENGINE_MODULES`): ``"native"`` (default; :mod:`.native`),
``"diffrax"`` (:mod:`.diffrax_engine`), and the host engines ``"scipy"`` and
``"julia"`` (:mod:`.host`).

Conventions (shared with :mod:`sciml_seq.torch.solve`):

- JAX code acts on one example; ``jax.vmap`` over ``y0`` batches it.  ``y0`` has
  shape ``(*state)``; ``ts`` has shape ``(n_times,)``, strictly increasing or
  strictly decreasing (integrating backwards), ``n_times >= 1``;
  ``Solution.ys`` has shape ``(n_times, *state)`` and ``ys[0] == y0``.  Under
  ``jax.vmap`` the result is ``(batch, n_times, *state)``: the layout and
  numbers of the torch front end.
- The field is called as ``field(t, y)`` with ``t`` a scalar in the dtype of
  ``y`` and ``y`` of shape ``(*state)``; it returns ``dy/dt`` of the same shape
  and dtype as ``y``.
- Fixed-step methods step on :func:`sciml_seq.methods.fixed_grid`: every output
  time is a grid point, so outputs are solver states, never interpolations.
- Counts are 0-d integer arrays (``(batch,)`` under ``jax.vmap``);
  ``nfe_batch`` and ``nfe_backward`` are ``None``.
- The solve is compiled (``equinox.filter_jit``) once per field structure,
  shapes and options; it works under ``jit``, ``vmap`` and ``grad``.  Under
  ``jit`` with traced ``ts``, fixed methods need ``n_steps`` (``step_size``
  counts the steps from the times' values).
"""

from __future__ import annotations

import importlib
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ...errors import OptionError, SolverError, UnavailableError
from ...methods import grid_counts
from ...solver import SolveOptions, failure_message, nonfinite_step_message, solve_options
from ...stats import RESULTS, SolveStats, StepRecord
from .core import (
    EngineOutput,
    Field,
    FieldWrapper,
    Problem,
    Solution,
    StepFailure,
    check_inputs,
    code,
    concrete,
    count,
    directed,
    is_traced,
)

__all__ = ["ENGINE_MODULES", "Field", "Solution", "SolveOptions", "available_methods", "solve"]

ENGINE_MODULES = {
    "native": "sciml_seq.jax.solve.native",
    "diffrax": "sciml_seq.jax.solve.diffrax_engine",
    "scipy": "sciml_seq.jax.solve.host",
    "julia": "sciml_seq.jax.solve.host",
}
"""Engine name -> the module that solves with it (imported on first use)."""


def _engine(name: str):
    if name == "diffrax" and importlib.util.find_spec("diffrax") is None:
        raise UnavailableError(
            "engine='diffrax' needs the diffrax package: pip install diffrax (or sciml-seq[jax])"
        )
    return importlib.import_module(ENGINE_MODULES[name])


def available_methods(engine: str = "native") -> tuple[str, ...]:
    """The method names ``engine`` accepts as installed (feature-detected where it matters)."""
    spec = SolveOptions(engine=engine).for_framework("jax").spec
    detect = getattr(_engine(engine), "available_methods", None)
    return detect() if detect is not None else spec.methods


def solve(
    field: Field,
    y0: ArrayLike,
    ts: ArrayLike,
    *,
    solver: SolveOptions | None = None,
    throw: bool = True,
    **options: Any,
) -> Solution:
    """Integrate ``dy/dt = field(t, y)`` from ``ts[0]`` and return the states at ``ts``.

    Acts on one example; ``jax.vmap`` over ``y0`` for a batch.

    Parameters
    ----------
    field:
        ``field(t, y) -> dy/dt``; ``t`` a scalar in ``y``'s dtype, ``y`` of shape
        ``(*state)``.  Make it an ``eqx.Module`` (arrays as fields) for
        ``adjoint="backsolve"`` to differentiate its arrays; closed-over arrays
        are fine with the other adjoints.  The host engines take any field (a
        :class:`~sciml_seq.jax.TimeMLP` natively, others called back through JAX).
    y0:
        Initial state, shape ``(*state)``, floating point, finite.
    ts:
        Output times, shape ``(n_times,)``, strictly monotone, at least as
        precise as ``y0``.  Decreasing times integrate backwards; one time
        returns ``y0``.
    solver:
        The :class:`~sciml_seq.solver.SolveOptions`; or give its fields as
        keywords (``method=``, ``rtol=``, ``engine=``, ...), not both.  The
        native engine's default adjoint in JAX is ``"checkpoint"``.
    throw:
        Raise on failure (:class:`~sciml_seq.errors.SolverError` when the
        outcome is concrete, an equinox runtime error when traced); with
        ``False`` inspect ``Solution.result`` instead.

    Returns
    -------
    :class:`~sciml_seq.jax.solve.core.Solution` with ``ys`` of shape
    ``(n_times, *state)``, ``stats``, ``result``, ``t_reached`` and ``steps``.

    Raises
    ------
    OptionError, UnavailableError, ShapeError, DTypeError, NonFiniteError:
        Invalid options or inputs, before anything is solved.
    SolverError:
        A failed solve (``throw=True``), with the time reached and the step count.
    """
    opts = solve_options(solver, **options).for_framework("jax")
    module = _engine(opts.engine)
    detect = getattr(module, "available_methods", None)
    if detect is not None and opts.method not in detect():
        raise UnavailableError(
            f"method: expected one of {detect()} (what engine={opts.engine!r} provides as "
            f"installed); got {opts.method!r}"
        )
    y0, ts, direction = check_inputs(field, y0, ts)
    if getattr(module, "check_problem", None) is not None:
        module.check_problem(field, y0, opts)
    if ts.shape[0] == 1:
        return _initial_only(y0, ts)
    counts = None
    if not opts.adaptive and opts.step_size is not None:
        values = concrete(ts)
        if values is None:
            raise OptionError(
                f"step_size={opts.step_size!r} needs concrete ts (the number of steps depends "
                "on their values); under jit pass n_steps instead"
            )
        counts = tuple(grid_counts(values, opts.step_size, None))
    sol, failure = _solve(field, y0, ts, opts, direction, counts)
    if throw:
        sol = _raise_on_failure(sol, failure, y0, opts)
    return sol


@eqx.filter_jit
def _solve(
    field: Field,
    y0: Array,
    ts: Array,
    options: SolveOptions,
    direction: int | None,
    counts: tuple[int, ...] | None,
) -> tuple[Solution, StepFailure | None]:
    """The solve, compiled once per field structure, shapes and options."""
    module = importlib.import_module(ENGINE_MODULES[options.engine])
    if direction is None:  # traced times: the direction is read at run time
        direction = jnp.where(ts[-1] > ts[0], 1, -1).astype(jnp.int32)
    times = directed(ts, direction).astype(y0.dtype)  # times in the state's dtype
    problem = Problem(
        field=FieldWrapper(field, direction, y0.shape),
        y0=y0.reshape(-1),
        times=times,
        ts=ts,
        direction=direction,
        options=options,
        counts=counts,
        user_field=field,
    )
    out: EngineOutput = module.solve(problem)
    steps = out.steps
    if steps is not None:
        steps = StepRecord(
            **{**steps.as_dict(), "t": directed(steps.t, direction),
               "dt": directed(steps.dt, direction)}
        )
    failure = out.failure
    if failure is not None:
        failure = StepFailure(
            failure.step, directed(failure.t0, direction), directed(failure.t1, direction)
        )
    solution = Solution(
        ys=out.ys.reshape(ts.shape[0], *y0.shape),
        ts=ts,
        stats=out.stats,
        result=code(out.result),
        t_reached=directed(out.t_reached, direction).astype(y0.dtype),
        steps=steps,
    )
    return solution, failure


def _initial_only(y0: Array, ts: Array) -> Solution:
    """One output time: the initial state, nothing solved."""
    zero = count(0)
    return Solution(
        ys=y0[None],
        ts=ts,
        stats=SolveStats(
            nfe_forward=zero, nfe_backward=None, n_steps=zero, n_accepted=zero, n_rejected=zero
        ),
        result=code(0),
        t_reached=ts[0].astype(y0.dtype),
        steps=None,
    )


def _messages(opts: SolveOptions) -> dict[str, str]:
    """The failure message of each outcome code (and of a NaN ``y0``)."""
    return {
        **{name: failure_message(name, opts) for name in RESULTS[1:]},
        "successful": "",
        "y0": "y0: expected finite values; got NaN or inf",
    }


def _raise_on_failure(
    sol: Solution, failure: StepFailure | None, y0: Array, opts: SolveOptions
) -> Solution:
    """Raise ``SolverError`` for a concrete failed solve; attach one runtime check if traced."""
    messages = _messages(opts)
    if is_traced(sol.result) or is_traced(y0):
        bad_y0 = ~jnp.all(jnp.isfinite(y0))
        # Under vmap equinox reports the largest index in the batch: most specific last.
        index = jnp.where(bad_y0, len(RESULTS), sol.result)
        texts = tuple(messages[name] for name in (*RESULTS, "y0"))
        ys = eqx.branched_error_if(sol.ys, bad_y0 | (sol.result != 0), index, texts)
        return eqx.tree_at(lambda s: s.ys, sol, ys)
    result = int(sol.result)
    if result == 0:
        return sol
    name = RESULTS[result]
    message = messages[name]
    stats = sol.stats  # host engines may count accepted steps only
    n_steps = stats.n_steps if stats.n_steps is not None else stats.n_accepted
    steps = -1 if n_steps is None else int(n_steps)
    if name == "nonfinite" and failure is not None:
        message = nonfinite_step_message(
            int(failure.step), steps, float(failure.t0), float(failure.t1)
        )
    raise SolverError(message, t_reached=float(sol.t_reached), n_steps=steps)

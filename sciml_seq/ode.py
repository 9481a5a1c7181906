"""Framework-free options of the ODE blocks in ``sciml_seq.{torch,jax}.ode``."""

from __future__ import annotations

from collections.abc import Sequence

from .checks import check_choice, check_int, check_real, format_choices
from .errors import OptionError
from .solver import SolveOptions
from .tableaus import TABLEAUS

INTEGRALS = ("kinetic", "jacobian", "taylor")
"""Regularisers integrated along the solve by augmenting the state with their rates:

- ``"kinetic"``: ``int ||f(t, h)||^2 dt`` (RNODE, Finlay et al., 2020; sum over
  state entries);
- ``"jacobian"``: ``int ||eps^T df/dh||^2 dt``, a Hutchinson estimate of
  ``int ||df/dh||_F^2 dt`` with one Gaussian ``eps`` per solve (RNODE);
- ``"taylor"``: ``int ||d^K h / dt^K||^2 dt``, the K-th total derivative along the
  solution (TayNODE, Kelly et al., 2020; ``K = taylor_order``).
"""

STEP_REGULARIZERS = ("error", "stiffness")
"""Sums over the accepted steps of the solve (Pal et al., 2021), read from its step records:

- ``"error"``: ``R_E = sum_j E_j |dt_j|``, ``E_j`` the step's scaled error norm;
- ``"stiffness"``: ``R_S = sum_j S_j |dt_j|``, ``S_j`` Hairer's stiffness estimate.
"""

LOCAL_REGULARIZERS = ("local_error", "local_stiffness")
"""``E |dt|`` and ``S |dt|`` of one step attempt from a random time ``t_r`` (Pal et al.,
2023); drawn in training only."""

REGULARIZERS = ("kinetic", "jacobian", "taylor", *STEP_REGULARIZERS, *LOCAL_REGULARIZERS)
"""Every ``ODEBlock`` regulariser; ``docs/regularizers.md`` has the definitions and sources."""

TAYLOR_ORDER = 3
"""Default ``taylor_order`` K of ``"taylor"``: Kelly et al. (2020) regularise the third total
derivative for MNIST classification and latent ODEs (``--reg r3`` in their code)."""

TORCH_TAYLOR_ORDERS = (2, 3)
"""The orders PyTorch computes exactly (nested forward-mode JVPs); JAX takes any K >= 2."""

NEEDS_ERROR_ESTIMATE = ("error", "local_error")
NEEDS_STIFFNESS_ESTIMATE = ("stiffness", "local_stiffness")


def check_block_options(t_end: float, steer: float, regularizers: Sequence[str]) -> tuple[str, ...]:
    """Validate ``ODEBlock`` options; returns the regularisers as a tuple."""
    t_end = check_real("t_end", t_end, gt=0.0)
    if check_real("steer", steer, ge=0.0) >= t_end:
        raise OptionError(
            f"steer: expected a finite real number >= 0.0 and < t_end = {t_end!r}; got {steer!r}"
        )
    if isinstance(regularizers, str):  # would iterate over its letters
        raise OptionError(
            f"regularizers: expected a sequence of names from {format_choices(REGULARIZERS)}, "
            f"e.g. ({regularizers!r},); got {regularizers!r}"
        )
    regularizers = tuple(regularizers)
    for i, name in enumerate(regularizers):
        check_choice(f"regularizers[{i}]", name, REGULARIZERS)
    if len(set(regularizers)) != len(regularizers):
        raise OptionError(
            f"regularizers: expected distinct names from {format_choices(REGULARIZERS)}; "
            f"got {list(regularizers)}"
        )
    return regularizers


def check_block_engine(solver: SolveOptions, regularizers: tuple[str, ...]) -> None:
    """Refuse regularisers where the engine cannot solve the augmented field.

    The SciPy engine calls any field back through the framework, the augmented
    one of the regularisers included; the Julia engine is refused (it would call
    the field back too, but that path has not run against Julia).
    """
    if regularizers and solver.engine == "julia":
        raise OptionError(
            f"regularizers={list(regularizers)} are not supported with engine='julia': use "
            "engine='scipy' or 'native' for RNODE regularisers"
        )


def check_block_regularizers(
    solver: SolveOptions, regularizers: tuple[str, ...], taylor_order: object, framework: str
) -> int:
    """Refuse regularisers the solve cannot provide; returns ``taylor_order`` as an ``int``.

    ``solver`` must have its adjoint resolved (:meth:`SolveOptions.for_framework`).
    The messages are the same in both frameworks, except for ``taylor_order``
    above 3, which only PyTorch refuses (JAX computes any order with Taylor mode).

    - ``"error"``, ``"stiffness"`` and their local variants read the internals of
      the native engine's Runge--Kutta step: ``engine="native"``, an adaptive
      method with an embedded error estimate (``"error"``) or with Hairer's
      stiffness estimate (``"stiffness"``: dopri5, tsit5);
    - ``"error"`` and ``"stiffness"`` differentiate the step records, which carry
      the gradient under ``adjoint="direct"`` or ``"checkpoint"`` only;
    - ``taylor_order``: an integer ``K >= 2`` (``K = 1`` is ``"kinetic"``); PyTorch
      takes 2 or 3.
    """
    order = check_int("taylor_order", taylor_order, low=2)
    if "taylor" in regularizers and framework == "torch" and order not in TORCH_TAYLOR_ORDERS:
        raise OptionError(
            f"taylor_order: expected {format_choices(TORCH_TAYLOR_ORDERS)} in PyTorch (exact "
            f"nested forward-mode JVPs); got {order!r}; higher orders need Taylor mode: use "
            "sciml_seq.jax (jax.experimental.jet)"
        )
    heuristics = [n for n in regularizers if n in STEP_REGULARIZERS + LOCAL_REGULARIZERS]
    if not heuristics:
        return order
    if solver.engine != "native":
        raise OptionError(
            f"regularizers: {heuristics[0]!r} reads the internals of the native engine's "
            f"Runge-Kutta steps; expected engine='native'; got engine={solver.engine!r}"
        )
    tab = TABLEAUS[solver.method]
    for name in heuristics:
        if name in NEEDS_ERROR_ESTIMATE and not tab.adaptive:
            offering = [m for m, t in TABLEAUS.items() if t.adaptive]
            raise OptionError(
                f"regularizers: {name!r} needs an adaptive method with an embedded error "
                f"estimate ({format_choices(offering)}); got method={solver.method!r}"
            )
        if name in NEEDS_STIFFNESS_ESTIMATE and tab.stiffness_stage is None:
            offering = [m for m, t in TABLEAUS.items() if t.stiffness_stage is not None]
            raise OptionError(
                f"regularizers: {name!r} needs a method with Hairer's stiffness estimate "
                f"({format_choices(offering)}); got method={solver.method!r}"
            )
    on_records = [n for n in heuristics if n in STEP_REGULARIZERS]
    if on_records and solver.adjoint not in ("direct", "checkpoint"):
        name = on_records[0]
        raise OptionError(
            f"regularizers: {name!r} differentiates the solver's step records, which carry "
            "the gradient under adjoint='direct' or 'checkpoint' (discrete sensitivities, as "
            f"Pal et al. 2021); got adjoint={solver.adjoint!r}; 'local_{name}' works with "
            "any adjoint"
        )
    return order


def check_stack_layers(
    field: object, n_layers: object, untied: bool, name: str = "n_layers", unit: str = "layer"
) -> int:
    """The depth of a stack (``ResidualStack``, ``ReversibleStack``; ``ACTStack`` with
    ``name="max_depth", unit="step"``) from its two first arguments.

    One field (``untied=False``): ``n_layers``, an integer ``>= 1``.  A sequence
    of fields (``untied=True``): its length, which must be ``>= 1`` and equal
    ``n_layers`` unless that is ``None``.
    """
    if not untied:
        if n_layers is None:
            raise OptionError(
                f"{name}: expected an integer >= 1 with one (weight-tied) field; pass a "
                f"sequence of fields for an untied stack; got None"
            )
        return check_int(name, n_layers)
    count = len(field)  # type: ignore[arg-type]
    if count == 0:
        raise OptionError(
            "field: expected one field (weight-tied) or a non-empty sequence of fields "
            f"(untied); got {field!r}"
        )
    if n_layers is not None and check_int(name, n_layers) != count:
        raise OptionError(
            f"{name}: expected None or len(field) = {count} with a sequence of fields (one "
            f"{unit} each); got {n_layers!r}"
        )
    return count

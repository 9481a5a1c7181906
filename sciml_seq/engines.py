"""What each solver engine offers: the one table both frameworks and the options read.

An *engine* is the code that integrates an ODE: our own Runge--Kutta loop
(``"native"``, in PyTorch and JAX), a library of one framework
(``"torchdiffeq"``, ``"torchode"``, ``"diffrax"``) or a host solver outside the
frameworks (``"scipy"``, ``"julia"``, reached from both).
:class:`~sciml_seq.solver.SolveOptions` checks every option against this table
when it is built, so that PyTorch and JAX refuse the same bad options at the
same moment with the same message; each framework's ``solve`` package holds
the code of its engines behind a dispatch table keyed by these names.

The table (:data:`ENGINES`):

============  ============  ===========================================  =========================
engine        frameworks    methods                                      adjoints (default first)
============  ============  ===========================================  =========================
native        torch, jax    euler midpoint heun rk4 bosh3 dopri5 tsit5   direct|checkpoint [#]_,
                                                                         backsolve
torchdiffeq   torch         euler midpoint heun rk4 bosh3 dopri5 dopri8  direct, backsolve
torchode      torch         dopri5 tsit5                                 direct
diffrax       jax           euler midpoint heun rk4 bosh3 dopri5 tsit5   checkpoint, direct,
                            dopri8                                       backsolve
scipy         torch, jax    dopri5 bosh3 dopri8, SciPy's own names       interpolating, backsolve
julia         torch, jax    tsit5 dopri5 bosh3 euler, Julia's own names  interpolating, backsolve,
                                                                         gauss
============  ============  ===========================================  =========================

.. [#] ``adjoint=None`` picks the engine's default: ``"direct"`` for the
   native engine in PyTorch and ``"checkpoint"`` in JAX.  Both are the exact
   gradient of the discrete solve (the same numbers); they differ in memory
   and recomputation only, and each is the cheaper one in its framework
   (autograd keeps what the steps took; JAX needs a bounded loop).

The step-size controller settings of :class:`~sciml_seq.solver.SolveOptions`
(``dt0``, ``dtmin``, ``dtmax``, ``pcoeff``, ``icoeff``, ``dcoeff``,
``factormin``, ``factormax``, ``safety``) mean what they mean in diffrax's
``PIDController``; an engine that cannot honour one refuses a non-default
value (:attr:`EngineSpec.controller`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .checks import check_choice, check_int

__all__ = [
    "CONTROLLER_FIELDS",
    "ENGINES",
    "FRAMEWORKS",
    "JULIA_ADJOINTS",
    "JULIA_CONTROLLERS",
    "JULIA_IMPLICIT",
    "JULIA_METHODS",
    "JULIA_SOLVERS",
    "JULIA_VJPS",
    "NATIVE_METHODS",
    "SCIPY_IMPLICIT",
    "SCIPY_METHODS",
    "SCIPY_SHARED",
    "STEP_RECORD_FIELDS",
    "EngineSpec",
    "engines_of",
    "get_engine",
]

FRAMEWORKS = ("torch", "jax")

CONTROLLER_FIELDS = (
    "dt0",
    "dtmin",
    "dtmax",
    "pcoeff",
    "icoeff",
    "dcoeff",
    "factormin",
    "factormax",
    "safety",
)
"""The step-size controller settings of ``SolveOptions`` (diffrax's ``PIDController``)."""

STEP_RECORD_FIELDS = ("t", "dt", "error_ratio", "accepted", "stiffness")
"""What a step record (``record_steps=True``) may hold per step attempt; see
:class:`sciml_seq.stats.StepRecord`."""

OptionCheck = Callable[[str, Any], Any]
"""``check(name, value) -> normalised value``, raising ``OptionError`` naming ``name``."""

NATIVE_METHODS = ("euler", "midpoint", "heun", "rk4", "bosh3", "dopri5", "tsit5")
"""The methods of the native engines (:data:`sciml_seq.tableaus.TABLEAUS`)."""

# -- SciPy ---------------------------------------------------------------------------

SCIPY_SHARED = {"dopri5": "RK45", "bosh3": "RK23", "dopri8": "DOP853"}
"""Our shared method names that SciPy provides, and SciPy's class for each."""

SCIPY_IMPLICIT = ("Radau", "BDF", "LSODA")
"""SciPy methods that use a Jacobian (LSODA switches to BDF when it detects stiffness)."""

SCIPY_METHODS: dict[str, str] = {
    **SCIPY_SHARED,
    **{name: name for name in ("RK45", "RK23", "DOP853", *SCIPY_IMPLICIT)},
    **{name.lower(): name for name in ("RK45", "RK23", "DOP853", *SCIPY_IMPLICIT)},
}
"""Accepted method name -> SciPy's solver class name (all adaptive)."""

# -- Julia ---------------------------------------------------------------------------

JULIA_SOLVERS = {
    # julia_name: (adaptive, package that provides it)
    "Tsit5": (True, "OrdinaryDiffEqTsit5"),
    "Vern7": (True, "OrdinaryDiffEqVerner"),
    "DP5": (True, "OrdinaryDiffEqLowOrderRK"),
    "BS3": (True, "OrdinaryDiffEqLowOrderRK"),
    "Rodas5P": (True, "OrdinaryDiffEqRosenbrock"),
    "Euler": (False, "OrdinaryDiffEqLowOrderRK"),
    "RK4": (False, "OrdinaryDiffEqLowOrderRK"),
}
"""OrdinaryDiffEq algorithms the Julia engine builds (``SciMLSeqJL.SOLVERS``)."""

JULIA_IMPLICIT = ("Rodas5P",)
"""Julia algorithms that differentiate the field themselves (Rosenbrock: ForwardDiff
Jacobians), so only a field Julia evaluates natively (``TimeMLP``) can use them."""

JULIA_METHODS: dict[str, str] = {
    **{"tsit5": "Tsit5", "dopri5": "DP5", "bosh3": "BS3", "euler": "Euler"},
    **{name: name for name in JULIA_SOLVERS},
    **{name.lower(): name for name in JULIA_SOLVERS if name != "RK4"},
}
"""Accepted method name -> OrdinaryDiffEq algorithm name.  Shared names mean what
they mean in :data:`sciml_seq.methods.METHODS`; ``RK4`` is OrdinaryDiffEq's classic
fourth-order method, NOT Kutta's 3/8 rule that our shared ``"rk4"`` denotes, so
``"rk4"`` is refused rather than silently meaning another method."""

JULIA_ADJOINTS = ("interpolating", "backsolve", "gauss")
"""SciMLSensitivity's InterpolatingAdjoint, BacksolveAdjoint(checkpointing=true), GaussAdjoint."""

JULIA_VJPS = ("zygote", "reversediff", "reversediff_compiled")
"""``autojacvec``: ZygoteVJP(), ReverseDiffVJP(false), ReverseDiffVJP(true)."""

JULIA_CONTROLLERS = ("torchdiffeq", "default")
"""Step-size controllers: torchdiffeq's integral controller settings (for parity), or
OrdinaryDiffEq's default."""


def _check_every(name: str, value: Any) -> int | None:
    return None if value is None else check_int(name, value)


@dataclass(frozen=True)
class EngineSpec:
    """One engine's offer.

    Attributes
    ----------
    name: the engine's name (``SolveOptions(engine=...)``).
    frameworks: the frameworks that have it (``"torch"``, ``"jax"``).
    methods: accepted method names; a shared name (:data:`sciml_seq.methods.METHODS`)
        means the same method in every engine.
    adaptive: for method names that are not shared, whether they adapt their step.
    adjoints: accepted adjoints.
    default_adjoint: ``framework -> adjoint`` used for ``adjoint=None``.
    controller: the controller settings (:data:`CONTROLLER_FIELDS`) it honours;
        a non-default value of any other is refused.
    seminorm: whether its backsolve adjoint takes the seminorm of Kidger et al.
    records: the step-record fields (:data:`STEP_RECORD_FIELDS`) it reports
        under ``record_steps=True``; empty: it records nothing.
    control: ``framework -> "sample" | "batch"``: whether each sample of a
        batch steps on its own or the batch shares one step sequence
        (``"sample or batch"``: the ``control`` engine option chooses).
    options: its own options (``engine_options``), name -> check.
    option_frameworks: the frameworks in which its own options exist.
    host: whether it solves outside the frameworks (float64 on the host).
    description: one line for messages and docs.
    """

    name: str
    frameworks: tuple[str, ...]
    methods: tuple[str, ...]
    adjoints: tuple[str, ...]
    default_adjoint: Mapping[str, str]
    controller: tuple[str, ...] = ()
    seminorm: bool = False
    records: tuple[str, ...] = ()
    control: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, OptionCheck] = field(default_factory=dict)
    option_frameworks: tuple[str, ...] = ()
    adaptive: Mapping[str, bool] = field(default_factory=dict)
    host: bool = False
    description: str = ""


ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(
            name="native",
            frameworks=("torch", "jax"),
            methods=NATIVE_METHODS,
            adjoints=("direct", "checkpoint", "backsolve"),
            default_adjoint={"torch": "direct", "jax": "checkpoint"},
            controller=CONTROLLER_FIELDS,
            seminorm=True,
            records=STEP_RECORD_FIELDS,
            control={"torch": "sample or batch", "jax": "sample"},
            options={
                "control": functools.partial(check_choice, choices=("sample", "batch")),
                "check_every": _check_every,
                "segment": check_int,
            },
            option_frameworks=("torch",),
            description="our explicit Runge-Kutta loop (diffrax's PID controller, "
            "per-sample steps, step records)",
        ),
        EngineSpec(
            name="torchdiffeq",
            frameworks=("torch",),
            methods=("euler", "midpoint", "heun", "rk4", "bosh3", "dopri5", "dopri8"),
            adjoints=("direct", "backsolve"),
            default_adjoint={"torch": "direct"},
            controller=("dt0", "factormin", "factormax", "safety"),
            seminorm=True,
            records=("t", "dt", "accepted"),
            control={"torch": "batch"},
            description="torchdiffeq's odeint / odeint_adjoint (one step sequence per batch)",
        ),
        EngineSpec(
            name="torchode",
            frameworks=("torch",),
            methods=("dopri5", "tsit5"),
            adjoints=("direct",),
            default_adjoint={"torch": "direct"},
            controller=CONTROLLER_FIELDS,
            control={"torch": "sample"},
            description="torchode's AutoDiffAdjoint (per-sample steps)",
        ),
        EngineSpec(
            name="diffrax",
            frameworks=("jax",),
            methods=("euler", "midpoint", "heun", "rk4", "bosh3", "dopri5", "tsit5", "dopri8"),
            adjoints=("checkpoint", "direct", "backsolve"),
            default_adjoint={"jax": "checkpoint"},
            controller=CONTROLLER_FIELDS,
            seminorm=True,
            control={"jax": "sample"},
            description="diffrax's diffeqsolve (per-sample steps under vmap)",
        ),
        EngineSpec(
            name="scipy",
            frameworks=("torch", "jax"),
            methods=tuple(SCIPY_METHODS),
            adjoints=("interpolating", "backsolve"),
            default_adjoint={"torch": "interpolating", "jax": "interpolating"},
            controller=("dt0", "dtmax"),
            records=("t", "dt", "accepted"),
            control={"torch": "batch", "jax": "sample"},
            adaptive={name: True for name in SCIPY_METHODS},
            host=True,
            description="scipy.integrate's solvers on the host, float64, continuous adjoints",
        ),
        EngineSpec(
            name="julia",
            frameworks=("torch", "jax"),
            methods=tuple(JULIA_METHODS),
            adjoints=JULIA_ADJOINTS,
            default_adjoint={"torch": "interpolating", "jax": "interpolating"},
            controller=("dt0", "dtmin", "dtmax"),
            control={"torch": "batch", "jax": "sample"},
            options={
                "vjp": functools.partial(check_choice, choices=JULIA_VJPS),
                "controller": functools.partial(check_choice, choices=JULIA_CONTROLLERS),
            },
            option_frameworks=("torch", "jax"),
            adaptive={name: JULIA_SOLVERS[julia][0] for name, julia in JULIA_METHODS.items()},
            host=True,
            description="DifferentialEquations.jl through juliacall, float64, "
            "SciMLSensitivity adjoints",
        ),
    )
}
"""Every engine by name."""


def get_engine(name: str) -> EngineSpec:
    """The :class:`EngineSpec` of ``name``; ``OptionError`` lists the valid names."""
    return ENGINES[check_choice("engine", name, ENGINES)]


def engines_of(framework: str) -> tuple[str, ...]:
    """The engine names available in ``framework`` (``"torch"`` or ``"jax"``)."""
    check_choice("framework", framework, FRAMEWORKS)
    return tuple(name for name, spec in ENGINES.items() if framework in spec.frameworks)

"""``SolveOptions``: every setting of an ODE solve in one frozen value, checked when built.

The same value configures :func:`sciml_seq.torch.solve`,
:func:`sciml_seq.jax.solve`, both ``ODEBlock``\\ s, ``NeuralODEEncoding``,
``TransformerEncoder`` and the host engines.  Building it checks every option
against the engine table (:data:`sciml_seq.engines.ENGINES`), so a bad option
fails at construction, in both frameworks, with the same message::

    from sciml_seq.solver import SolveOptions

    options = SolveOptions(method="tsit5", rtol=1e-5, atol=1e-7)
    coarse = options.replace(rtol=1e-3)          # a new, checked value
    SolveOptions(method="dopri", rtol=-1)        # OptionError: method: expected one of ...

The functions that take ``solver=`` also take the options as keywords
(``solve(field, y0, ts, method="rk4", n_steps=8)``), which build the same value.

Defaults (one table for both frameworks)
----------------------------------------
=================  ============  ===============================================
option             default       meaning
=================  ============  ===============================================
method             ``"dopri5"``  a name of the engine's :attr:`~EngineSpec.methods`
rtol, atol         1e-6, 1e-8    tolerances of adaptive methods (>= 0, not both 0;
                                 refused with a fixed-step method)
step_size/n_steps  None          fixed-step methods: exactly one of them
max_steps          4096          step attempts allowed (host engines: accepted steps)
adjoint            None          the engine's default (:mod:`sciml_seq.engines`)
seminorm           False         backsolve: leave the parameter-gradient channels
                                 out of the error norm (Kidger et al., 2021)
engine             ``"native"``  :data:`sciml_seq.engines.ENGINES`
engine_options     ()            the engine's own options (``check_every``, ...)
dt0                None          first step; None: Hairer's heuristic (diffrax's)
dtmin, dtmax       None          bounds of the step size
pcoeff/icoeff/     0, 1, 0       PID coefficients (diffrax's ``PIDController``;
dcoeff                           the default is integral control)
factormin/max      0.2, 10       bounds of the step-size change per step
safety             0.9           safety factor of the step-size update
record_steps       False         return per-step records (``Solution.steps``)
=================  ============  ===============================================
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .checks import check_choice, check_int, check_real, format_choices
from .engines import CONTROLLER_FIELDS, ENGINES, EngineSpec, engines_of
from .errors import OptionError
from .methods import METHODS

__all__ = [
    "ADJOINTS",
    "SolveOptions",
    "failure_message",
    "nonfinite_step_message",
    "solve_options",
]

ADJOINTS = ("direct", "checkpoint", "backsolve", "interpolating", "gauss")
"""Every adjoint name some engine accepts.

- ``"direct"``: backpropagation through the solver's operations (the exact
  gradient of the discrete solve);
- ``"checkpoint"``: the same gradient, recomputing segments of the forward
  solve in the backward pass instead of keeping them (less memory);
- ``"backsolve"``: the continuous adjoint ODE solved backwards (O(1) memory,
  approximate); host engines re-solve the state backwards alongside;
- ``"interpolating"``: host engines: the adjoint ODE solved backwards, reading
  the state from the forward solve's dense output;
- ``"gauss"``: the Julia engine's ``GaussAdjoint``.
"""

_FIELD_DEFAULTS: dict[str, Any] = {}  # filled after the class: name -> default


@dataclass(frozen=True)
class SolveOptions:
    """Every setting of an ODE solve (see the module docstring for the table of defaults).

    Frozen and hashable (a static argument under ``jax.jit``); checked
    completely when built.  :meth:`replace` returns a changed, checked copy.
    """

    method: str = "dopri5"
    rtol: float = 1e-6
    atol: float = 1e-8
    step_size: float | None = None
    n_steps: int | None = None
    max_steps: int = 4096
    adjoint: str | None = None
    seminorm: bool = False
    engine: str = "native"
    engine_options: Mapping[str, Any] | tuple[tuple[str, Any], ...] | None = ()
    dt0: float | None = None
    dtmin: float | None = None
    dtmax: float | None = None
    pcoeff: float = 0.0
    icoeff: float = 1.0
    dcoeff: float = 0.0
    factormin: float = 0.2
    factormax: float = 10.0
    safety: float = 0.9
    record_steps: bool = False

    def __post_init__(self) -> None:
        spec = ENGINES[check_choice("engine", self.engine, ENGINES)]
        _check_method(self, spec)
        _check_steps(self)
        _check_adjoint(self, spec)
        _check_controller(self, spec)
        object.__setattr__(self, "engine_options", _check_engine_options(self, spec))
        if not isinstance(self.record_steps, bool):
            raise OptionError(f"record_steps: expected True or False; got {self.record_steps!r}")
        if self.record_steps and not spec.records:
            recording = [name for name, s in ENGINES.items() if s.records]
            raise OptionError(
                f"record_steps: engine={self.engine!r} reports no step records; use one of "
                f"{format_choices(recording)}"
            )

    # -- reading ---------------------------------------------------------------------

    @property
    def spec(self) -> EngineSpec:
        """The engine's entry of :data:`sciml_seq.engines.ENGINES`."""
        return ENGINES[self.engine]

    @property
    def adaptive(self) -> bool:
        """Whether the method adapts its step size (else it steps on a fixed grid)."""
        return _is_adaptive(self.method, self.spec)

    def option(self, name: str, default: Any = None) -> Any:
        """The engine option ``name`` (``engine_options``), or ``default`` when not given."""
        return dict(self.engine_options).get(name, default)

    def changed_controller(self) -> dict[str, Any]:
        """The controller settings that differ from their defaults, by name."""
        return {
            name: getattr(self, name)
            for name in CONTROLLER_FIELDS
            if getattr(self, name) != _FIELD_DEFAULTS[name]
        }

    def replace(self, **changes: Any) -> SolveOptions:
        """A copy with ``changes`` applied, checked again."""
        return dataclasses.replace(self, **changes)

    def for_framework(self, framework: str) -> SolveOptions:
        """These options as ``framework`` runs them: the engine checked, ``adjoint`` resolved.

        Raises ``OptionError`` when the engine, or one of its options, does not
        exist in ``framework`` (``"torch"`` or ``"jax"``).
        """
        available = engines_of(framework)
        if self.engine not in available:
            raise OptionError(
                f"engine: expected one of {format_choices(available)} in "
                f"{_FRAMEWORK_NAMES[framework]}; got {self.engine!r}"
            )
        spec = self.spec
        if self.engine_options and framework not in spec.option_frameworks:
            raise OptionError(
                f"engine_options: engine={self.engine!r} takes no options in "
                f"{_FRAMEWORK_NAMES[framework]}; got {dict(self.engine_options)!r}"
            )
        if self.adjoint is not None:
            return self
        return dataclasses.replace(self, adjoint=spec.default_adjoint[framework])


_FRAMEWORK_NAMES = {"torch": "PyTorch", "jax": "JAX"}
_FIELD_DEFAULTS.update({f.name: f.default for f in dataclasses.fields(SolveOptions)})


def _is_adaptive(method: str, spec: EngineSpec) -> bool:
    return METHODS[method].adaptive if method in METHODS else spec.adaptive[method]


def _check_method(options: SolveOptions, spec: EngineSpec) -> None:
    method = options.method
    if isinstance(method, str) and method in spec.methods:
        return
    hint = ""
    if isinstance(method, str) and method in METHODS:
        offering = [name for name, s in ENGINES.items() if method in s.methods]
        hint = f" ({method!r} is offered by engine {format_choices(offering)})"
    raise OptionError(
        f"method: expected one of {format_choices(spec.methods)} with "
        f"engine={options.engine!r}{hint}; got {method!r}"
    )


def _check_steps(options: SolveOptions) -> None:
    rtol = check_real("rtol", options.rtol, ge=0.0)
    atol = check_real("atol", options.atol, ge=0.0)
    if rtol == 0.0 and atol == 0.0:
        raise OptionError(
            "rtol, atol: expected tolerances >= 0, not both 0 (the error would be measured "
            "against a zero scale); got rtol=0.0, atol=0.0"
        )
    check_int("max_steps", options.max_steps)
    step_size, n_steps = options.step_size, options.n_steps
    if _is_adaptive(options.method, options.spec):
        if step_size is not None or n_steps is not None:
            raise OptionError(
                f"method={options.method!r} is adaptive: it takes rtol/atol, not "
                f"step_size={step_size!r} / n_steps={n_steps!r}; use a fixed method "
                f"({format_choices(m for m, s in METHODS.items() if not s.adaptive)}) "
                "for fixed steps"
            )
        return
    tolerances = [n for n in ("rtol", "atol") if getattr(options, n) != _FIELD_DEFAULTS[n]]
    if tolerances:
        raise OptionError(
            f"{', '.join(tolerances)}: tolerances apply to adaptive methods; "
            f"method={options.method!r} steps on a fixed grid (step_size or n_steps sets "
            "its accuracy); leave them at their defaults or use an adaptive method"
        )
    if (step_size is None) == (n_steps is None):
        raise OptionError(
            f"method={options.method!r} is a fixed-step method: give exactly one of "
            f"step_size or n_steps (got step_size={step_size!r}, n_steps={n_steps!r})"
        )
    if step_size is not None:
        check_real("step_size", step_size, gt=0.0)
    if n_steps is not None:
        check_int("n_steps", n_steps)


def _check_adjoint(options: SolveOptions, spec: EngineSpec) -> None:
    adjoint = options.adjoint
    if adjoint is not None:
        check_choice("adjoint", adjoint, ADJOINTS)
        if adjoint not in spec.adjoints:
            raise OptionError(
                f"adjoint: expected None or one of {format_choices(spec.adjoints)} with "
                f"engine={options.engine!r}; got {adjoint!r}"
            )
    if not isinstance(options.seminorm, bool):
        raise OptionError(f"seminorm: expected True or False; got {options.seminorm!r}")
    if options.seminorm:
        if adjoint != "backsolve":
            raise OptionError(
                "seminorm: applies to adjoint='backsolve' (the norm of its backward solve); "
                f"got seminorm=True with adjoint={adjoint!r}"
            )
        if not spec.seminorm:
            offering = [name for name, s in ENGINES.items() if s.seminorm]
            raise OptionError(
                f"seminorm: engine={options.engine!r} has no seminorm backsolve; use one of "
                f"{format_choices(offering)}"
            )


def _check_optional_step(name: str, value: Any) -> None:
    if value is not None:
        check_real(name, value, gt=0.0)


def _check_controller(options: SolveOptions, spec: EngineSpec) -> None:
    for name in ("dt0", "dtmin", "dtmax"):
        _check_optional_step(name, getattr(options, name))
    if options.dtmin is not None and options.dtmax is not None and options.dtmin > options.dtmax:
        raise OptionError(
            f"dtmin, dtmax: expected dtmin <= dtmax; got dtmin={options.dtmin!r}, "
            f"dtmax={options.dtmax!r}"
        )
    for name in ("pcoeff", "icoeff", "dcoeff"):
        check_real(name, getattr(options, name))
    check_real("factormin", options.factormin, gt=0.0, le=1.0)
    check_real("factormax", options.factormax, ge=1.0)
    check_real("safety", options.safety, gt=0.0, le=1.0)
    changed = options.changed_controller()
    if not changed:
        return
    if not options.adaptive:
        raise OptionError(
            f"{', '.join(changed)}: step-size controller settings apply to adaptive methods; "
            f"method={options.method!r} steps on a fixed grid"
        )
    refused = [name for name in changed if name not in spec.controller]
    if refused:
        name = refused[0]
        offering = [e for e, s in ENGINES.items() if name in s.controller]
        raise OptionError(
            f"{name}: engine={options.engine!r} does not honour this controller setting "
            f"(it takes {format_choices(spec.controller) or 'none'}); leave it at its default "
            f"{_FIELD_DEFAULTS[name]!r} or use engine {format_choices(offering)}"
        )


def _check_engine_options(
    options: SolveOptions, spec: EngineSpec
) -> tuple[tuple[str, Any], ...]:
    given = options.engine_options
    pairs = given.items() if isinstance(given, Mapping) else () if given is None else given
    try:
        items = sorted(((name, value) for name, value in pairs), key=operator.itemgetter(0))
        ok = all(isinstance(name, str) for name, _ in items)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise OptionError(
            "engine_options: expected a mapping from option names (str) to values, or None; "
            f"got {given!r}"
        )
    unknown = [name for name, _ in items if name not in spec.options]
    if unknown:
        takes = (
            f"expected keys among {format_choices(spec.options)}"
            if spec.options
            else "expected None (it takes no options)"
        )
        raise OptionError(
            f"engine_options: {takes} with engine={options.engine!r}; got unknown "
            f"{format_choices(unknown)}"
        )
    return tuple(
        (name, spec.options[name](f"engine_options[{name!r}]", value)) for name, value in items
    )


def solve_options(
    solver: SolveOptions | None = None, base: SolveOptions | None = None, **keywords: Any
) -> SolveOptions:
    """The :class:`SolveOptions` of a call that takes ``solver=`` or the options as keywords.

    Keywords whose value is ``None`` count as not given; they change ``base``
    (the caller's defaults, ``SolveOptions()`` when ``None``).  Giving both a
    ``solver`` and keywords raises ``OptionError`` (one of them must say it).
    """
    given = {name: value for name, value in keywords.items() if value is not None}
    unknown = [name for name in given if name not in _FIELD_DEFAULTS]
    if unknown:
        raise OptionError(
            f"{unknown[0]}: not a solver option; expected keywords among "
            f"{format_choices(_FIELD_DEFAULTS)}"
        )
    if solver is None:
        if base is None:
            return SolveOptions(**given)
        if "method" not in given or not _fixed_from_base(base, given):
            return base.replace(**given)
        # a fixed method replacing the base's adaptive one drops the base's tolerances
        tolerances = {n: _FIELD_DEFAULTS[n] for n in ("rtol", "atol") if n not in given}
        return base.replace(**tolerances, **given)
    if not isinstance(solver, SolveOptions):
        raise OptionError(
            f"solver: expected a sciml_seq.solver.SolveOptions; got {type(solver).__name__}"
        )
    if given:
        raise OptionError(
            f"solver: got solver=SolveOptions(...) and the keywords {format_choices(given)}; "
            "pass the options one way (e.g. solver.replace(...))"
        )
    return solver


def _fixed_from_base(base: SolveOptions, given: dict[str, Any]) -> bool:
    """Whether ``given`` switches ``base`` to a known fixed-step method."""
    spec = ENGINES.get(given.get("engine", base.engine))
    method = given["method"]
    if spec is None or not isinstance(method, str) or method not in spec.methods:
        return False  # the checks of SolveOptions name the problem
    return not _is_adaptive(method, spec)


def failure_message(result: str, options: SolveOptions) -> str:
    """What ``SolverError`` says for a failed outcome (a name of
    :data:`sciml_seq.stats.RESULTS`), the same in both frameworks."""
    if result == "max_steps_reached":
        return (
            f"the solve reached max_steps={options.max_steps}; raise max_steps, loosen "
            "rtol/atol, or regularise the dynamics"
        )
    if result == "dt_min_reached":
        return (
            "the step size underflowed; the dynamics may be stiff or blow up (try "
            "engine='scipy' with method='Radau')"
        )
    if result == "nonfinite":
        if options.adaptive:
            return (
                "the vector field returned NaN or inf at every step size tried; the dynamics "
                "blow up or leave the field's domain"
            )
        return (
            "a step produced NaN or inf; the dynamics blow up or the steps are too large: "
            "take smaller steps or an adaptive method"
        )
    return f"the {options.engine} solve failed"


def nonfinite_step_message(
    step: int, n_steps: int, t0: float | None = None, t1: float | None = None
) -> str:
    """What ``SolverError`` says when fixed step ``step`` (of ``n_steps``) from ``t0`` to ``t1``
    produced NaN or inf."""
    span = "" if t0 is None or t1 is None else f" (from t={t0:.6g} to t={t1:.6g})"
    return (
        f"step {step} of {n_steps}{span} produced NaN or inf; the dynamics blow up or the "
        "steps are too large: take smaller steps or an adaptive method"
    )

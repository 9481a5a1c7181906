"""Depth schemes, regularisers and grid cells of the comparison (framework-free).

A **depth scheme** says how one vector field ``f(t, h)`` becomes depth:

==================  =========================================================
name                scheme
==================  =========================================================
``untied-N``        residual stack of N layers, each its own copy of the field
                    (:class:`~sciml_seq.torch.ResidualStack` of N fields)
``tied-N``          the same field N times (weight-tied residual stack)
``euler-N``         ``ODEBlock(method="euler", n_steps=N)``: equal to ``tied-N``
                    to float rounding (the bridge of every comparison)
``rk4-N``           ``ODEBlock(method="rk4", n_steps=N)``
``<method>-<tol>``  an adaptive ``ODEBlock`` (``dopri5-1e-3``, ``tsit5-1e-4``,
                    ...), ``rtol = atol = tol``, on any engine
``act-N``           Universal-Transformer ACT halting, at most N steps
``reversible-N``    reversible residual stack of N untied layers (activations
                    recomputed from the output in the backward pass)
==================  =========================================================

A **regulariser** (:data:`REGULARIZATIONS`) applies to the adaptive schemes:
``none``, the RNODE integrals ``kinetic``, ``jacobian`` and ``rnode`` (both),
``steer`` (random end times), and the solver-heuristic ones of
:mod:`sciml_seq.regularization` (``error``, ``stiffness``, the local variants,
``taylor``).  A **cell** is one (task, scheme, engine, regulariser, seed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from ..checks import check_choice, check_int, check_real, format_choices
from ..errors import OptionError

FIXED_KINDS = ("untied", "tied", "euler", "rk4", "act", "reversible")
"""Schemes whose cost is set by a depth ``N`` (ACT: its maximum depth)."""

ADAPTIVE_METHODS = ("dopri5", "tsit5", "bosh3", "heun_euler")
"""Adaptive methods a scheme may name (every engine knows dopri5 and tsit5)."""

DEFAULT_SCHEMES = ("untied-8", "tied-8", "rk4-8", "dopri5-1e-3", "dopri5-1e-5", "act-8")

STEER_FRACTION = 0.5
"""STEER's half-width ``b`` as a fraction of ``t_end`` (Ghosh et al., 2020, use ``b`` in
``[0.25, 0.5]`` of the end time for their classifiers)."""

ACT_PONDER_COST = 0.01
"""The default ponder-cost weight tau of ACT (Dehghani et al., 2019, tune it in
``{0.001, 0.01, 0.1}``)."""


def regularizations() -> dict[str, tuple[str, ...]]:
    """Every regulariser name of the grid and the ``ODEBlock`` regularisers it switches on.

    ``none``; ``rnode`` (kinetic and jacobian together); ``steer``, which switches on
    none (it is the block's ``steer=``); and each name of
    :data:`sciml_seq.ode.REGULARIZERS` as itself.
    """
    from ..ode import REGULARIZERS

    return {
        "none": (),
        "rnode": ("kinetic", "jacobian"),
        "steer": (),
        **{name: (name,) for name in REGULARIZERS},
    }


@dataclass(frozen=True)
class Regularization:
    """A regulariser spec of the grid: ``"error"`` (its default weight schedule,
    :data:`sciml_seq.regularization.SCHEDULES`) or ``"error=0.5"`` (a constant
    weight); ``"steer=0.25"`` sets STEER's half-width instead (default
    :data:`STEER_FRACTION` of ``t_end``).

    Attributes
    ----------
    spec: the text it was parsed from (the cell's ``regularizer``).
    names: the ``ODEBlock`` regularisers it switches on.
    weight: the constant weight, or None for the default schedules.
    steer: STEER's half-width (0: off).
    """

    spec: str
    names: tuple[str, ...]
    weight: float | None
    steer: float

    @classmethod
    def parse(cls, spec: str, label: str = "regularizer") -> Regularization:
        table = regularizations()
        if not isinstance(spec, str):
            raise OptionError(f"{label}: expected a name or 'name=weight'; got {spec!r}")
        name, sep, value = spec.partition("=")
        check_choice(label, name, tuple(table))
        number = None
        if sep:
            if name == "none":
                raise OptionError(f"{label}: 'none' takes no weight; got {spec!r}")
            try:
                number = float(value)
            except ValueError:
                raise OptionError(
                    f"{label}: expected 'name=weight' with a real weight; got {spec!r}"
                ) from None
            check_real(label, number, ge=0.0) if name != "steer" else check_real(
                label, number, gt=0.0, lt=1.0
            )
        if name == "steer":
            return cls(spec, (), None, STEER_FRACTION if number is None else number)
        return cls(spec, table[name], number, 0.0)

    def weights(self, fraction: float) -> dict[str, float]:
        """The loss weight of each regulariser at ``fraction`` of the budget: the constant
        ``weight`` if given, else its default schedule
        (:func:`sciml_seq.regularization.regularizer_weight`)."""
        from ..regularization import regularizer_weight

        return {n: regularizer_weight(n, fraction, self.weight) for n in self.names}


def format_tolerance(tol: float) -> str:
    """``1e-3`` for 0.001, ``2.5e-4`` for 0.00025: the shortest exponent form."""
    mantissa, exponent = f"{tol:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


@dataclass(frozen=True)
class Scheme:
    """One depth scheme; build it with :meth:`parse` (``"rk4-8"``) or directly.

    Attributes
    ----------
    kind: one of :data:`FIXED_KINDS`, or ``"adaptive"``.
    depth: N of the fixed kinds (layers, steps, ACT's maximum depth); None if adaptive.
    method, tolerance: the adaptive method and ``rtol = atol``; None otherwise.
    """

    kind: str
    depth: int | None = None
    method: str | None = None
    tolerance: float | None = None

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, (*FIXED_KINDS, "adaptive"))
        if self.kind == "adaptive":
            check_choice("method", self.method, ADAPTIVE_METHODS)
            check_real("tolerance", self.tolerance, gt=0.0)
            if self.depth is not None:
                raise OptionError(
                    f"depth: expected None for an adaptive scheme; got {self.depth!r}"
                )
        else:
            check_int("depth", self.depth)
            if self.method is not None or self.tolerance is not None:
                raise OptionError(
                    f"method, tolerance: expected None for the fixed scheme {self.kind!r}; got "
                    f"{self.method!r}, {self.tolerance!r}"
                )

    @classmethod
    def parse(cls, text: str) -> Scheme:
        """``"untied-8"``, ``"act-12"``, ``"dopri5-1e-3"`` -> a :class:`Scheme`."""
        if not isinstance(text, str) or "-" not in text:
            raise OptionError(f"scheme: expected '<kind>-<N>' or '<method>-<tol>'; got {text!r}")
        head, _, tail = text.partition("-")
        if head in FIXED_KINDS:
            try:
                depth = int(tail)
            except ValueError:
                raise OptionError(
                    f"scheme: expected an integer depth after {head!r}- in {text!r}"
                ) from None
            return cls(head, depth=depth)
        if head in ADAPTIVE_METHODS:
            try:
                tol = float(tail)
            except ValueError:
                raise OptionError(
                    f"scheme: expected a tolerance after {head!r}- in {text!r}, e.g. 1e-3"
                ) from None
            return cls("adaptive", method=head, tolerance=tol)
        raise OptionError(
            f"scheme: expected a name starting with one of "
            f"{format_choices((*FIXED_KINDS, *ADAPTIVE_METHODS))}; got {text!r}"
        )

    @property
    def adaptive(self) -> bool:
        return self.kind == "adaptive"

    @property
    def name(self) -> str:
        if self.adaptive:
            return f"{self.method}-{format_tolerance(self.tolerance)}"
        return f"{self.kind}-{self.depth}"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Cell:
    """One run of the grid: a task, a scheme, an engine, a regulariser and a seed.

    Fixed schemes have ``engine = "-"`` and ``regularizer = "none"``.
    """

    task: str
    scheme: Scheme
    engine: str
    regularizer: str
    seed: int

    @property
    def name(self) -> str:
        """``"dopri5-1e-3 native +error"``, ``"rk4-8"``: the scheme, engine and regulariser."""
        name = self.scheme.name
        if self.scheme.adaptive:
            name += f" {self.engine}"
        if self.regularizer != "none":
            name += f" +{self.regularizer}"
        return name

    def key(self, context: dict) -> str:
        """A digest of this cell and the ``context`` (budget, sizes, device, versions ...).

        Two runs with the same key are the same measurement: a resumed grid skips it.
        """
        payload = {"cell": asdict(self), "context": context}
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def expand_cells(
    tasks: tuple[str, ...],
    schemes: tuple[Scheme, ...],
    engines: tuple[str, ...],
    regularizers: tuple[str, ...],
    seeds: tuple[int, ...],
) -> list[Cell]:
    """The grid, seeds innermost: fixed schemes once (no engine, no regulariser), adaptive
    schemes for every engine and regulariser."""
    cells = []
    for task in tasks:
        for scheme in schemes:
            combos = (
                [(e, r) for e in engines for r in regularizers]
                if scheme.adaptive
                else [("-", "none")]
            )
            for engine, regularizer in combos:
                cells.extend(Cell(task, scheme, engine, regularizer, s) for s in seeds)
    return cells


def check_regularizers(specs: tuple[str, ...]) -> tuple[str, ...]:
    """Each a :class:`Regularization` spec, all distinct; returned as a tuple."""
    for i, spec in enumerate(specs):
        Regularization.parse(spec, f"regularizers[{i}]")
    if len(set(specs)) != len(specs):
        raise OptionError(f"regularizers: expected distinct specs; got {list(specs)}")
    return tuple(specs)


def seeds_of(seeds: int | tuple[int, ...]) -> tuple[int, ...]:
    """``3`` -> ``(0, 1, 2)``; a tuple of distinct integers >= 0 stays."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return tuple(range(check_int("seeds", seeds)))
    seeds = tuple(seeds)
    for i, s in enumerate(seeds):
        check_int(f"seeds[{i}]", s, low=0)
    if not seeds or len(set(seeds)) != len(seeds):
        raise OptionError(f"seeds: expected distinct integers >= 0; got {list(seeds)}")
    return seeds

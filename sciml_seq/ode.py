"""Framework-free options of the ODE blocks in ``sciml_seq.{torch,jax}.ode``."""

from __future__ import annotations

from collections.abc import Sequence

from .checks import check_choice, check_int, check_real, format_choices
from .errors import OptionError
from .solver import SolveOptions

REGULARIZERS = ("kinetic", "jacobian")
"""Integral regularisers of RNODE (Finlay et al., 2020), accumulated along the solve:

- ``"kinetic"``: ``int ||f(t, h)||^2 dt`` (sum over state entries);
- ``"jacobian"``: ``int ||eps^T df/dh||^2 dt``, a Hutchinson estimate of
  ``int ||df/dh||_F^2 dt`` with one Gaussian ``eps`` per solve.
"""


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


def check_stack_layers(field: object, n_layers: object, untied: bool) -> int:
    """The number of layers of a ``ResidualStack``, from its two first arguments.

    One field (``untied=False``): ``n_layers``, an integer ``>= 1``.  A sequence
    of fields (``untied=True``): its length, which must be ``>= 1`` and equal
    ``n_layers`` unless that is ``None``.
    """
    if not untied:
        if n_layers is None:
            raise OptionError(
                "n_layers: expected an integer >= 1 with one (weight-tied) field; pass a "
                "sequence of fields for an untied stack; got None"
            )
        return check_int("n_layers", n_layers)
    count = len(field)  # type: ignore[arg-type]
    if count == 0:
        raise OptionError(
            "field: expected one field (weight-tied) or a non-empty sequence of fields "
            f"(untied); got {field!r}"
        )
    if n_layers is not None and check_int("n_layers", n_layers) != count:
        raise OptionError(
            f"n_layers: expected None or len(field) = {count} with a sequence of fields (one "
            f"layer each); got {n_layers!r}"
        )
    return count

"""Argument checks shared by every module: one wording for every option error.

Each check returns the value in its canonical Python type or raises
:class:`~sciml_seq.errors.OptionError` with a message of the form
``"<name>: expected <what>; got <value>"`` — the argument's name first, so
that a user reading the error knows which argument to change.

>>> check_int("n_layers", 4)
4
>>> check_choice("disc", "zoh", ("zoh", "bilinear"))
'zoh'
>>> check_real("dt_min", 1e-3, gt=0.0)
0.001
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import TypeVar

from .errors import OptionError

__all__ = ["check_choice", "check_int", "check_real", "format_choices"]

Choice = TypeVar("Choice")


def check_int(name: str, value: object, low: int = 1, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[low, high]``.

    Accepts Python and numpy integers; rejects ``bool`` and floats (also whole
    ones such as ``2.0``), as ``range`` does.
    """
    bound = f">= {low}" if high is None else f"in [{low}, {high}]"
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or int(value) < low
        or (high is not None and int(value) > high)
    ):
        raise OptionError(f"{name}: expected an integer {bound}; got {value!r}")
    return int(value)


def check_real(
    name: str,
    value: object,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> float:
    """``value`` as a finite ``float`` obeying the given bounds (``gt``: ``>``, ``ge``: ``>=`` ...).

    Accepts Python and numpy reals (integers included); rejects ``bool``,
    complex numbers, NaN and infinity.
    """
    bounds = [
        f"{op} {bound!r}"
        for op, bound in ((">", gt), (">=", ge), ("<", lt), ("<=", le))
        if bound is not None
    ]
    what = "a finite real number" + (" " + " and ".join(bounds) if bounds else "")
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
        and (gt is None or value > gt)
        and (ge is None or value >= ge)
        and (lt is None or value < lt)
        and (le is None or value <= le)
    )
    if not ok:
        raise OptionError(f"{name}: expected {what}; got {value!r}")
    return float(value)


def format_choices(choices: Iterable[object]) -> str:
    """``'a', 'b', 'c'``: the valid values as a user would type them."""
    return ", ".join(repr(choice) for choice in choices)


def check_choice(name: str, value: object, choices: Iterable[Choice]) -> Choice:
    """``value`` if it is one of ``choices``; the error lists every valid choice."""
    choices = tuple(choices)
    if isinstance(value, bool) or value not in choices:
        raise OptionError(f"{name}: expected one of {format_choices(choices)}; got {value!r}")
    return choices[choices.index(value)]

"""Renamed arguments: the old name keeps working for one release, with a warning.

One name per concept across the library (``batch_size``, ``channel_slices``,
...); where a public argument had another name, the old one is accepted by
:func:`renamed_argument` with a :class:`DeprecationWarning` that names the
new one, and refused together with it.
"""

from __future__ import annotations

import warnings
from typing import Any, TypeVar

from .errors import OptionError

T = TypeVar("T")

#: The release after which the old names go.
REMOVED_AFTER = "0.2"


def renamed_argument(
    where: str,
    old: str,
    old_value: Any,
    new: str,
    new_value: T,
    *,
    stacklevel: int = 3,
) -> T:
    """The value of argument ``new`` of ``where``, taken from ``old`` if only that was given.

    ``None`` means "not given" for both.  Giving ``old`` warns (a
    ``DeprecationWarning`` pointing at the caller of ``where``); giving both is
    an :class:`~sciml_seq.errors.OptionError`.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise OptionError(f"{old}: renamed {new}; pass {new} only; got both")
    warnings.warn(
        f"{where}: {old}= is renamed {new}= ({old}= goes after release {REMOVED_AFTER})",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return old_value


__all__ = ["REMOVED_AFTER", "renamed_argument"]

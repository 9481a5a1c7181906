"""The robustness tables' shared shape: a case is ``(id, call, error type, argument name)``.

:func:`check` runs the call and asserts the error type and that the message names
the argument (as a word: ``"rtol"`` does not match inside ``"rtols"``), and that the
message is one readable paragraph (no traceback text, at most 1,000 characters).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest


class Case(NamedTuple):
    id: str
    call: Callable[[], Any]
    error: type[BaseException]
    name: str


def params(cases: list[Case]) -> list[Any]:
    """``pytest.param`` per case, with its id (ids must be unique within a table)."""
    ids = [c.id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"duplicate case ids: {sorted(duplicates)}"
    return [pytest.param(c, id=c.id) for c in cases]


def names(message: str, name: str) -> bool:
    """Whether ``message`` mentions ``name`` as a whole word (or option, e.g. ``--device``)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w])", message) is not None


def check(case: Case) -> None:
    with pytest.raises(case.error) as info:
        case.call()
    message = str(info.value)
    assert names(message, case.name), f"{case.name!r} not named in: {message}"
    assert "Traceback" not in message and len(message) <= 1000, message

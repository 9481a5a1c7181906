"""Framework-free options of the forecasters in ``sciml_seq.{torch,jax}.models``."""

from __future__ import annotations

from .errors import OptionError

POSITION_MODES = ("time", "index")
"""How a :class:`Forecaster` places its tokens: at their (scaled) real times, or
at their integer rank among the valid tokens of the sequence (context first,
then queries), which keeps the order and forgets the spacing."""


def check_position_mode(position_mode: str) -> str:
    if position_mode not in POSITION_MODES:
        raise OptionError(
            f"position_mode={position_mode!r} is unknown; expected one of {list(POSITION_MODES)}"
        )
    return position_mode


__all__ = ["POSITION_MODES", "check_position_mode"]

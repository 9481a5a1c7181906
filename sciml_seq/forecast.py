"""Framework-free options of the forecasters in ``sciml_seq.{torch,jax}.models``."""

from __future__ import annotations

from .checks import check_choice

POSITION_MODES = ("time", "index")
"""How a :class:`Forecaster` places its tokens: at their (scaled) real times, or
at their integer rank among the valid tokens of the sequence (context first,
then queries), which keeps the order and forgets the spacing."""


def check_position_mode(position_mode: str) -> str:
    """``position_mode`` if it is one of :data:`POSITION_MODES`, else ``OptionError``."""
    return check_choice("position_mode", position_mode, POSITION_MODES)


__all__ = ["POSITION_MODES", "check_position_mode"]

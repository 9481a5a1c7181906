"""Shared pieces of the ready sequence models: option checks, input checks, pooling."""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from ...errors import DTypeError, OptionError, ShapeError
from ...ssm import check_int

__all__ = [
    "POOLS",
    "check_dropout",
    "check_int",
    "check_option",
    "check_sequence",
    "pool",
    "positions_like",
]

#: How a model turns ``(batch, length, d_output)`` into its output: the mean
#: over time, the last step (both ``(batch, d_output)``), or every step (``"none"``).
POOLS: tuple[str, ...] = ("mean", "last", "none")


def check_option(name: str, value: object, valid: tuple[str, ...]) -> str:
    """``value`` if it is one of ``valid``; OptionError listing them otherwise."""
    if isinstance(value, str) and value in valid:
        return value
    raise OptionError(f"{name}: expected one of {', '.join(map(repr, valid))}; got {value!r}")


def check_dropout(value: object) -> float:
    """A probability in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise OptionError(f"dropout: expected a probability in [0, 1); got {value!r}")
    return float(value)


def check_sequence(x: object, d_input: int) -> Tensor:
    """``x`` must be a floating ``(batch, length >= 1, d_input)`` tensor."""
    if not isinstance(x, Tensor):
        raise DTypeError(f"x: expected a torch.Tensor; got {type(x).__name__}")
    if x.ndim != 3 or x.shape[-1] != d_input or x.shape[1] < 1:
        raise ShapeError(
            f"x: expected shape (batch, length, channels) with {d_input} channels (d_input) "
            f"and length >= 1; got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise DTypeError(f"x: expected a floating-point tensor; got {x.dtype}")
    return x


def pool(h: Tensor, how: str) -> Tensor:
    """``h (batch, length, d)`` -> ``(batch, d)`` (``"mean"``, ``"last"``) or ``h`` (``"none"``)."""
    if how == "mean":
        return h.mean(dim=1)
    if how == "last":
        return h[:, -1]
    return h


def positions_like(x: Tensor) -> Tensor:
    """Integer positions ``0 .. L-1`` as a real ``(batch, length)`` tensor."""
    return torch.arange(x.shape[1], device=x.device, dtype=x.dtype).expand(x.shape[0], -1)

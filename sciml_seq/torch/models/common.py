"""Shared pieces of the ready sequence models: input checks, pooling, positions.

Option checks come from :mod:`sciml_seq.checks` and, for the options a JAX twin
shares, from :mod:`sciml_seq.models`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import DTypeError
from ...models import POOLS, check_sequence_shape

__all__ = ["POOLS", "check_sequence", "pool", "positions_like"]


def check_sequence(x: object, d_input: int) -> Tensor:
    """``x`` must be a floating ``(batch, length >= 1, d_input)`` tensor."""
    if not isinstance(x, Tensor):
        raise DTypeError(f"x: expected a torch.Tensor; got {type(x).__name__}")
    check_sequence_shape(tuple(x.shape), d_input, batched=True)
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

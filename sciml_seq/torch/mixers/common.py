"""Pieces shared by the torch mixers: the call checks, the RoPE check, a safe masked softmax.

Mirrors :mod:`sciml_seq.jax.mixers.common`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import DTypeError, OptionError, ShapeError
from ...position import check_shapes
from ..attention import check_padding_mask
from ..position import RotaryEncoding


def check_rope(rope: object, head_dim: int) -> RotaryEncoding | None:
    """``rope``: ``None`` or a :class:`RotaryEncoding` with ``head_dim`` (as attention's)."""
    if rope is not None and (not isinstance(rope, RotaryEncoding) or rope.head_dim != head_dim):
        got = getattr(rope, "head_dim", type(rope).__name__)
        raise OptionError(
            f"rope must be a RotaryEncoding with head_dim = dim // heads = {head_dim}, "
            f"got head_dim={got}"
        )
    return rope


def check_no_dropout(mixer: str, dropout: object) -> float:
    """The efficient mixers have no attention-weight dropout: ``dropout`` must be 0."""
    if dropout != 0:
        raise OptionError(
            f"dropout: expected 0.0 for mixer={mixer!r} (it has no attention-weight "
            f"dropout); got {dropout!r}"
        )
    return 0.0


def check_call(
    x: Tensor,
    dim: int,
    positions: Tensor | None,
    padding_mask: Tensor | None,
    rope: RotaryEncoding | None,
    rope_angles: tuple[Tensor, Tensor] | None,
) -> None:
    """The checks of :meth:`MultiheadAttention.forward`, with its messages."""
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[-1] != dim:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ShapeError(f"x must have shape (batch, length, dim={dim}), got {got}")
    if positions is not None:
        if not isinstance(positions, Tensor):
            raise DTypeError(f"positions must be a torch.Tensor, got {type(positions).__name__}")
        check_shapes(
            x.shape, ("batch", "length", "dim"), positions.shape, ("batch", "length"), features=dim
        )
    elif rope is not None and rope_angles is None:
        raise OptionError(
            "positions=None, but this attention has a rope encoding: pass positions "
            f"of shape (batch, length) = {tuple(x.shape[:2])}"
        )
    if padding_mask is not None:
        check_padding_mask(padding_mask, x)


def masked_softmax(logits: Tensor, allowed: Tensor) -> tuple[Tensor, Tensor]:
    """Softmax over the last axis where ``allowed``; a row with nothing allowed gets zeros.

    Returns ``(weights, lse)``: ``lse`` is the log of the row's normaliser (the
    log-sum-exp of its allowed logits), ``-1e30`` for an empty row.  Finite
    values and gradients everywhere (the row maximum is a constant of the
    gradient, as it cancels).
    """
    z = logits.masked_fill(~allowed, float("-inf"))
    top = z.amax(dim=-1, keepdim=True).detach()
    top = torch.where(torch.isfinite(top), top, torch.zeros((), dtype=top.dtype))
    e = torch.exp(z - top)
    total = e.sum(dim=-1, keepdim=True)
    some = total > 0
    safe = torch.where(some, total, torch.ones((), dtype=total.dtype))
    lse = torch.where(some, torch.log(safe) + top, torch.full((), -1e30, dtype=total.dtype))
    return e / safe, lse[..., 0]


__all__ = ["check_call", "check_no_dropout", "check_rope", "masked_softmax"]

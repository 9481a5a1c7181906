"""Pieces shared by the JAX mixers: the call checks, the RoPE check, a safe masked softmax.

Mirrors :mod:`sciml_seq.torch.mixers.common`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ...errors import OptionError, ShapeError
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
    x: Array,
    dim: int,
    positions: ArrayLike | None,
    padding_mask: ArrayLike | None,
    rope: RotaryEncoding | None,
) -> tuple[Array | None, Array | None]:
    """The checks of :meth:`MultiheadAttention.__call__`, with its messages.

    Returns ``(positions, padding_mask)`` as arrays (or ``None``).
    """
    if jnp.ndim(x) != 2 or jnp.shape(x)[-1] != dim:
        raise ShapeError(f"x must have shape (length, dim={dim}), got {jnp.shape(x)}")
    if positions is not None:
        positions = jnp.asarray(positions)
        check_shapes(x.shape, ("length", "dim"), positions.shape, ("length",), features=dim)
    elif rope is not None:
        raise OptionError(
            "positions=None, but this attention has a rope encoding: pass positions "
            f"of shape (length,) = ({x.shape[0]},)"
        )
    if padding_mask is not None:
        padding_mask = check_padding_mask(padding_mask, x)
    return positions, padding_mask


def masked_softmax(logits: Array, allowed: Array) -> tuple[Array, Array]:
    """Softmax over the last axis where ``allowed``; a row with nothing allowed gets zeros.

    As :func:`sciml_seq.torch.mixers.common.masked_softmax`: returns
    ``(weights, lse)`` with ``lse = -1e30`` for an empty row.
    """
    z = jnp.where(allowed, logits, -jnp.inf)
    top = jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    e = jnp.exp(z - top)
    total = jnp.sum(e, axis=-1, keepdims=True)
    some = total > 0
    safe = jnp.where(some, total, 1.0)
    lse = jnp.where(some, jnp.log(safe) + top, -1e30)
    return e / safe, lse[..., 0]


__all__ = ["check_call", "check_no_dropout", "check_rope", "masked_softmax"]

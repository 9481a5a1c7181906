"""Multi-head self-attention on the fused kernel (mirrors :mod:`sciml_seq.torch.attention`).

Uses ``jax.nn.dot_product_attention`` (XLA by default; ``implementation="cudnn"``
selects cuDNN flash attention on NVIDIA GPUs for the shapes and dtypes it
supports), with optional rotary position encoding at real-valued positions,
and causal and padding masks.  Acts on one example; ``jax.vmap`` over a batch.

Two cases take the plain path :func:`attention_reference` instead: float64
inputs (JAX 0.10's ``dot_product_attention`` always takes the softmax in
float32, which would cost float64 its precision; PyTorch's kernel keeps
float64) and attention dropout (the fused function has none).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ..checks import check_choice, check_real
from ..errors import DTypeError, OptionError, ShapeError
from ..position import check_heads, check_shapes
from .position import RotaryEncoding, rotate_half

IMPLEMENTATIONS = (None, "xla", "cudnn")
"""``implementation`` of ``jax.nn.dot_product_attention`` (``None``: JAX picks)."""


def attention_mask(
    padding_mask: Array | None, causal: bool, length: int
) -> tuple[Array | None, Array | None]:
    """The boolean mask ``(1, length, length)`` (``True`` = may attend) and the rows with a key.

    As :func:`sciml_seq.torch.attention.attention_mask`, per example: ``(None,
    None)`` without a padding mask; rows without any allowed key are opened
    fully and flagged ``False`` in ``rows (length, 1, 1)`` (query, head, feature
    layout of the attention output) so their output can be zeroed.
    """
    if padding_mask is None:
        return None, None
    keys = jnp.broadcast_to(padding_mask[None, :], (length, length))
    if causal:
        keys = keys & jnp.tril(jnp.ones((length, length), dtype=bool))
    rows = jnp.any(keys, axis=-1)
    return (keys | ~rows[:, None])[None], rows[:, None, None]


def attention_reference(
    q: Array,
    k: Array,
    v: Array,
    mask: Array | None = None,
    *,
    causal: bool = False,
    dropout: float = 0.0,
    key: Array | None = None,
) -> Array:
    """Plain ``softmax(q k^T / sqrt(d)) v`` on ``(length, heads, head_dim)`` arrays.

    ``mask`` broadcastable to ``(heads, length, length)``, ``True`` = may attend.
    With ``dropout > 0`` the attention weights are dropped (and rescaled) with
    ``key``.  Used for dropout (which the fused function lacks) and as a reference.
    """
    logits = jnp.einsum("thd,shd->hts", q, k) / math.sqrt(q.shape[-1])
    length = q.shape[0]
    if causal:
        tril = jnp.tril(jnp.ones((length, length), dtype=bool))
        mask = tril if mask is None else mask & tril
    if mask is not None:
        logits = jnp.where(mask, logits, -jnp.inf)
    weights = jax.nn.softmax(logits, axis=-1)
    if dropout > 0:
        keep = jax.random.bernoulli(key, 1.0 - dropout, weights.shape)
        weights = jnp.where(keep, weights / (1.0 - dropout), 0.0)
    return jnp.einsum("hts,shd->thd", weights, v)


def check_padding_mask(
    padding_mask: ArrayLike, x: Array, *, name: str = "padding_mask", like: str = "x"
) -> Array:
    """``padding_mask`` as a bool array ``(length,)`` matching ``x (length, ...)``.

    ``name`` and ``like`` name the mask and ``x`` in the messages (a forecaster's
    ``query_mask`` matches its ``query_times``).
    """
    padding_mask = jnp.asarray(padding_mask)
    if padding_mask.dtype != jnp.bool_:
        raise DTypeError(
            f"{name} must be a bool array (True = valid token), got dtype {padding_mask.dtype}"
        )
    if padding_mask.shape != x.shape[:1]:
        raise ShapeError(
            f"{name} must have shape (length,) = {x.shape[:1]} to match {like} of shape "
            f"{x.shape}, got {padding_mask.shape}"
        )
    return padding_mask


class MultiheadAttention(eqx.Module):
    """Multi-head self-attention ``out(softmax(Q K^T / sqrt(head_dim) + mask) V)``.

    Same constructor arguments, parameter names (``qkv``: ``Linear(dim, 3 * dim)``,
    rows ``[q | k | v]`` each split into ``(heads, head_dim)``; ``out``:
    ``Linear(dim, dim)``; weights ``(out, in)``) and numbers as
    :class:`sciml_seq.torch.attention.MultiheadAttention`, plus equinox's
    ``inference`` flag (PyTorch's ``eval()``; flip it with
    ``eqx.nn.inference_mode``), ``implementation`` (passed to
    ``jax.nn.dot_product_attention``) and ``key``.

    Call: ``__call__(x, positions=None, *, causal=False, padding_mask=None, key=None)``
    with ``x (length, dim)``, ``positions (length,)`` (for ``rope``),
    ``padding_mask (length,)`` boolean with ``True`` = a VALID token; ``key`` is
    needed for dropout outside inference.  Float64 inputs and dropout use
    :func:`attention_reference` (see the module docstring); otherwise
    ``jax.nn.dot_product_attention``.  Returns ``(length, dim)``.
    """

    qkv: eqx.nn.Linear
    out: eqx.nn.Linear
    rope: RotaryEncoding | None
    dim: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)
    dropout: float = eqx.field(static=True)
    implementation: str | None = eqx.field(static=True)
    inference: bool

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        dropout: float = 0.0,
        rope: RotaryEncoding | None = None,
        bias: bool = True,
        implementation: str | None = None,
        inference: bool = False,
        dtype=None,
        key: Array,
    ) -> None:
        self.head_dim = check_heads(dim, heads)
        self.dim, self.heads = int(dim), int(heads)
        self.dropout = check_real("dropout", dropout, ge=0.0, lt=1.0)
        if rope is not None and (
            not isinstance(rope, RotaryEncoding) or rope.head_dim != self.head_dim
        ):
            got = getattr(rope, "head_dim", type(rope).__name__)
            raise OptionError(
                f"rope must be a RotaryEncoding with head_dim = dim // heads = {self.head_dim}, "
                f"got head_dim={got}"
            )
        self.rope = rope
        self.implementation = check_choice("implementation", implementation, IMPLEMENTATIONS)
        self.inference = inference
        qkv_key, out_key = jax.random.split(key)
        self.qkv = eqx.nn.Linear(dim, 3 * dim, use_bias=bias, dtype=dtype, key=qkv_key)
        self.out = eqx.nn.Linear(dim, dim, use_bias=bias, dtype=dtype, key=out_key)

    def __call__(
        self,
        x: Array,
        positions: ArrayLike | None = None,
        *,
        causal: bool = False,
        padding_mask: ArrayLike | None = None,
        key: Array | None = None,
    ) -> Array:
        if jnp.ndim(x) != 2 or jnp.shape(x)[-1] != self.dim:
            raise ShapeError(f"x must have shape (length, dim={self.dim}), got {jnp.shape(x)}")
        length = x.shape[0]
        if positions is not None:
            positions = jnp.asarray(positions)
            check_shapes(
                x.shape, ("length", "dim"), positions.shape, ("length",), features=self.dim
            )
        elif self.rope is not None:
            raise OptionError(
                "positions=None, but this attention has a rope encoding: pass positions "
                f"of shape (length,) = ({length},)"
            )
        if padding_mask is not None:
            padding_mask = check_padding_mask(padding_mask, x)
        use_dropout = self.dropout > 0 and not self.inference
        if use_dropout and key is None:
            raise OptionError(
                f"dropout={self.dropout} outside inference needs a key; pass key=..., or use "
                "eqx.nn.inference_mode(model) to evaluate"
            )

        qkv = jax.vmap(self.qkv)(x).reshape(length, 3, self.heads, self.head_dim)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # each (length, heads, head_dim)
        if self.rope is not None:
            cos, sin = self.rope.angles(positions, x.dtype)  # (1, length, head_dim)
            cos, sin = cos[0][:, None, :], sin[0][:, None, :]
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        mask, rows = attention_mask(padding_mask, causal, length)
        if use_dropout or x.dtype == jnp.float64:
            dropout = self.dropout if use_dropout else 0.0
            o = attention_reference(q, k, v, mask, causal=causal, dropout=dropout, key=key)
        elif mask is None:
            o = jax.nn.dot_product_attention(
                q, k, v, is_causal=causal, implementation=self.implementation
            )
        else:
            o = jax.nn.dot_product_attention(
                q, k, v, mask=mask[None], implementation=self.implementation
            )
        if rows is not None:
            o = jnp.where(rows, o, 0.0)
        return jax.vmap(self.out)(o.reshape(length, self.dim))


__all__ = [
    "IMPLEMENTATIONS",
    "MultiheadAttention",
    "attention_mask",
    "attention_reference",
    "check_padding_mask",
]

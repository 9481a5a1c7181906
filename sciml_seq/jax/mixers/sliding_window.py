"""Sliding-window attention with dilation and global tokens (Longformer, Beltagy et al. 2020).

Mirrors :mod:`sciml_seq.torch.mixers.sliding_window` (same mask, blocks and
numbers; see its docstring): ``window`` is one-sided in dilated steps, global
tokens attend and are attended by all, ``causal`` keeps ``s <= t``; time and
memory ``O(L (w + g))``.  Each part is one ``jax.nn.dot_product_attention``
call with a mask (float64: plain einsums, see :func:`_attend`).  Acts on one
example.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from ...mixers import check_global_tokens, check_mixer_options, window_block_length
from ..position import RotaryEncoding, rotate_half
from .common import check_call, check_no_dropout, check_rope, masked_softmax


def _attend(q: Array, k: Array, v: Array, allowed: Array) -> Array:
    """Attention of ``q (groups, heads, T, d)`` on ``k, v (groups, heads, S, d)`` under
    ``allowed (groups, T, S)``; rows without any allowed key give zeros.

    float64: einsums and :func:`masked_softmax` (``jax.nn.dot_product_attention``
    takes the softmax in float32, as :mod:`sciml_seq.jax.attention` notes);
    otherwise ``jax.nn.dot_product_attention`` with the mask (rows without a key
    opened for it, then zeroed).
    """
    if q.dtype == jnp.float64:
        logits = jnp.einsum("ghtd,ghsd->ghts", q, k) * q.shape[-1] ** -0.5
        weights, _ = masked_softmax(logits, allowed[:, None])
        return weights @ v
    rows = jnp.any(allowed, axis=-1, keepdims=True)
    mask = (allowed | ~rows)[:, None]
    o = jax.nn.dot_product_attention(
        jnp.swapaxes(q, 1, 2), jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2), mask=mask
    )
    return jnp.where(rows[:, None], jnp.swapaxes(o, 1, 2), 0.0)


def banded_attention(
    q: Array,
    k: Array,
    v: Array,
    valid: Array | None,
    *,
    window: int,
    dilation: int = 1,
    global_tokens: tuple[int, ...] = (),
    causal: bool = False,
) -> Array:
    """Sliding-window + global softmax attention of ``q, k, v (heads, length, d)``.

    ``valid (length,)`` bool or ``None``; returns ``(heads, length, d)`` (as torch's).
    """
    h, length, d = q.shape
    reach = window * dilation
    block = window_block_length(length, window, dilation)
    n = math.ceil(length / block)
    pad = n * block - length
    if valid is None:
        valid = jnp.ones((length,), dtype=bool)
    key_valid = jnp.pad(valid, (0, pad), constant_values=False)
    qp, kp, vp = (jnp.pad(a, ((0, 0), (0, pad), (0, 0))) for a in (q, k, v))
    span = block + reach + (0 if causal else reach)
    # the index pattern is static: numpy
    idx = np.arange(n)[:, None] * block - reach + np.arange(span)[None, :]  # (n, span)
    in_range = (idx >= 0) & (idx < length)
    idc = np.clip(idx, 0, n * block - 1)
    t = np.arange(n)[:, None] * block + np.arange(block)
    gap = t[:, :, None] - idx[:, None, :]  # (n, block, span)
    band = in_range[:, None, :] & (np.abs(gap) <= reach) & (np.remainder(gap, dilation) == 0)
    if causal:
        band = band & (gap >= 0)
    glob = np.asarray(global_tokens, dtype=np.int64)
    if global_tokens:
        is_global = np.zeros(n * block, dtype=bool)
        is_global[glob] = True
        band = band & ~is_global[idc][:, None, :]
    allowed = jnp.asarray(band) & key_valid[idc][:, None, :]  # (n, block, span)
    kb, vb = kp[:, idc], vp[:, idc]  # (h, n, span, d)
    if global_tokens:  # the global keys as extra columns of every block
        g = len(global_tokens)
        kb = jnp.concatenate([kb, jnp.broadcast_to(k[:, None, glob], (h, n, g, d))], axis=2)
        vb = jnp.concatenate([vb, jnp.broadcast_to(v[:, None, glob], (h, n, g, d))], axis=2)
        gallowed = jnp.broadcast_to(valid[glob], (n, block, g))
        if causal:
            gallowed = gallowed & (glob[None, None, :] <= t[:, :, None])
        allowed = jnp.concatenate([allowed, gallowed], axis=-1)
    o = _attend(
        jnp.swapaxes(qp.reshape(h, n, block, d), 0, 1),
        jnp.swapaxes(kb, 0, 1),
        jnp.swapaxes(vb, 0, 1),
        allowed,
    )  # (n, h, block, d)
    o = jnp.swapaxes(o, 0, 1).reshape(h, n * block, d)[:, :length]
    if global_tokens:  # the global queries attend every key
        qallowed = jnp.broadcast_to(valid[None, :], (len(global_tokens), length))
        if causal:
            qallowed = qallowed & (np.arange(length)[None, :] <= glob[:, None])
        og = _attend(q[None, :, glob], k[None], v[None], qallowed[None])[0]
        o = o.at[:, glob].set(og)
    return o


class SlidingWindowAttention(eqx.Module):
    """Multi-head sliding-window + global attention, as the torch ``SlidingWindowAttention``.

    Same constructor arguments (plus ``key``) and parameter names (``qkv``,
    ``out``).  Call: ``__call__(x, positions=None, *, causal=False,
    padding_mask=None, key=None)`` with ``x (length, dim)``; returns ``(length, dim)``.
    """

    qkv: eqx.nn.Linear
    out: eqx.nn.Linear
    rope: RotaryEncoding | None
    dim: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)
    dropout: float = eqx.field(static=True)
    window: int = eqx.field(static=True)
    dilation: int = eqx.field(static=True)
    global_tokens: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        dropout: float = 0.0,
        rope: RotaryEncoding | None = None,
        bias: bool = True,
        dtype=None,
        window: int = 64,
        dilation: int = 1,
        global_tokens: tuple[int, ...] = (),
        key: Array,
    ) -> None:
        options = check_mixer_options(
            "sliding_window",
            dict(window=window, dilation=dilation, global_tokens=global_tokens),
            dim=dim,
            heads=heads,
            rope=rope is not None,
        )
        self.dim, self.heads = int(dim), int(heads)
        self.head_dim = self.dim // self.heads
        self.dropout = check_no_dropout("sliding_window", dropout)
        self.rope = check_rope(rope, self.head_dim)
        self.window, self.dilation = options["window"], options["dilation"]
        self.global_tokens = options["global_tokens"]
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
        positions, padding_mask = check_call(x, self.dim, positions, padding_mask, self.rope)
        length = x.shape[0]
        check_global_tokens(self.global_tokens, length)
        qkv = jax.vmap(self.qkv)(x).reshape(length, 3, self.heads, self.head_dim)
        q, k, v = (jnp.swapaxes(qkv[:, i], 0, 1) for i in range(3))  # (heads, length, hd)
        if self.rope is not None:
            cos, sin = self.rope.angles(positions, x.dtype)  # (1, length, head_dim)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        o = banded_attention(
            q,
            k,
            v,
            padding_mask,
            window=self.window,
            dilation=self.dilation,
            global_tokens=self.global_tokens,
            causal=causal,
        )
        return jax.vmap(self.out)(jnp.swapaxes(o, 0, 1).reshape(length, self.dim))


__all__ = ["SlidingWindowAttention", "banded_attention"]

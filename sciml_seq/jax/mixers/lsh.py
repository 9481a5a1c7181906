"""LSH attention (Reformer, Kitaev et al. 2020); mirrors :mod:`sciml_seq.torch.mixers.lsh`.

Shared-QK attention within angular-LSH buckets, chunked in the sorted order
(own chunk and the one before), several hash rounds combined by their
log-normalisers with duplicate counts removed: exactly dense attention under
:func:`sciml_seq.mixers.lsh_counts`'s mask; see the torch module's docstring.
The rotations are the array ``rotations (n_hashes, head_dim, n_buckets / 2)``
behind ``jax.lax.stop_gradient`` (same values in both frameworks through
:func:`sciml_seq.convert.torch_to_jax`); :meth:`LSHAttention.redraw` with a new
key returns a copy with new ones.  With RoPE the tokens are hashed by their
unrotated vectors and attend with the rotated ones (relative positions only).
Acts on one example.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ...mixers import SELF_PENALTY, check_mixer_options
from ..position import RotaryEncoding, rotate_half
from .common import check_call, check_no_dropout, check_rope, masked_softmax

NORM_EPS = 1e-12
"""Keys are ``q / max(|q|, NORM_EPS)``."""


def lsh_buckets(qk: Array, rotations: Array) -> Array:
    """Angular-LSH bucket ids ``(heads, n_hashes, length)`` of ``qk (heads, length, d)``."""
    rot = jnp.einsum("hld,rdk->hrlk", qk, rotations.astype(qk.dtype))
    return jnp.argmax(jnp.concatenate([rot, -rot], axis=-1), axis=-1)


def _take(a: Array, index: Array) -> Array:
    """``a (h, r, L, ...)`` at ``index (h, r, *shape)`` along ``L`` -> ``(h, r, *shape, ...)``."""
    h, r = index.shape[:2]
    flat = index.reshape(h, r, -1)
    tail = a.shape[3:]
    out = jnp.take_along_axis(a, flat.reshape(*flat.shape, *(1,) * len(tail)), axis=2)
    return out.reshape(*index.shape, *tail)


def _look_back(a: Array, axis: int) -> Array:
    """Each chunk followed by the chunk before it: chunk axis ``axis - 1``, in-chunk ``axis``."""
    return jnp.concatenate([a, jnp.roll(a, 1, axis=axis - 1)], axis=axis)


def lsh_attention(
    qk: Array,
    v: Array,
    buckets: Array,
    valid: Array | None,
    *,
    bucket_size: int,
    n_buckets: int,
    causal: bool = False,
) -> Array:
    """Multi-round LSH attention of ``qk, v (heads, length, d)`` (as torch's).

    ``buckets (heads, n_hashes, length)``; ``valid (length,)`` bool or ``None``.
    """
    h, length, d = qk.shape
    r = buckets.shape[1]
    c = min(bucket_size, length)
    n = math.ceil(length / c)
    pad = n * c - length
    if valid is None:
        valid = jnp.ones((length,), dtype=bool)
    key_valid = jnp.broadcast_to(jnp.pad(valid, (0, pad), constant_values=False), (h, r, n * c))
    buckets = jnp.pad(buckets, ((0, 0), (0, 0), (0, pad)), constant_values=n_buckets)
    qk, v = (jnp.pad(a, ((0, 0), (0, pad), (0, 0))) for a in (qk, v))
    position = jnp.arange(n * c)
    perm = jnp.argsort(buckets * (n * c) + position, axis=-1)  # sorted -> token
    inv = jnp.argsort(perm, axis=-1)  # token -> sorted place
    chunk_of = inv // c
    qs = _take(jnp.broadcast_to(qk[:, None], (h, r, n * c, d)), perm)
    vs = _take(jnp.broadcast_to(v[:, None], (h, r, n * c, d)), perm)
    ks = qs / jnp.maximum(jnp.linalg.norm(qs, axis=-1, keepdims=True), NORM_EPS)
    qc = qs.reshape(h, r, n, c, d)
    kc = _look_back(ks.reshape(h, r, n, c, d), -2)
    vc = _look_back(vs.reshape(h, r, n, c, d), -2)
    tq = perm.reshape(h, r, n, c)
    tk = _look_back(tq, -1)  # (h, r, n, 2c)
    bq, bk = _take(buckets, tq), _take(buckets, tk)
    first = jnp.zeros((n, 2 * c), dtype=bool).at[0, c:].set(True)
    allowed = (bq[..., :, None] == bk[..., None, :]) & ~first[:, None, :]
    allowed = allowed & _take(key_valid, tk)[..., None, :]
    if causal:
        allowed = allowed & (tk[..., None, :] <= tq[..., :, None])
    logits = jnp.einsum("hrnid,hrnjd->hrnij", qc, kc) * d**-0.5
    logits = logits - SELF_PENALTY * (tq[..., :, None] == tk[..., None, :]).astype(logits.dtype)
    if r > 1:  # N[t, s]: the rounds in which s is in t's set (each key counted once)
        count = jnp.zeros(allowed.shape, dtype=logits.dtype)
        for rr in range(r):
            bucket_r = jnp.broadcast_to(buckets[:, rr : rr + 1], (h, r, n * c))
            chunk_r = jnp.broadcast_to(chunk_of[:, rr : rr + 1], (h, r, n * c))
            same = _take(bucket_r, tq)[..., :, None] == _take(bucket_r, tk)[..., None, :]
            cq, ck = _take(chunk_r, tq)[..., :, None], _take(chunk_r, tk)[..., None, :]
            count = count + (same & ((ck == cq) | (ck == cq - 1))).astype(logits.dtype)
        logits = logits - jnp.log(jnp.maximum(count, 1.0))
    weights, lse = masked_softmax(logits, allowed)
    o = (weights @ vc).reshape(h, r, n * c, d)
    o = _take(o, inv)
    lse = _take(lse.reshape(h, r, n * c), inv)
    mix = jax.nn.softmax(lse, axis=1)
    return jnp.sum(mix[..., None] * o, axis=1)[:, :length]


class LSHAttention(eqx.Module):
    """Multi-head shared-QK LSH attention, as the torch ``LSHAttention``.

    Same constructor arguments (plus ``key``), parameter names (``qk``, ``v``,
    ``out``) and array ``rotations``.  Call: ``__call__(x, positions=None, *,
    causal=False, padding_mask=None, key=None)`` with ``x (length, dim)``;
    returns ``(length, dim)``.
    """

    qk: eqx.nn.Linear
    v: eqx.nn.Linear
    out: eqx.nn.Linear
    rotations: Array
    rope: RotaryEncoding | None
    dim: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)
    dropout: float = eqx.field(static=True)
    bucket_size: int = eqx.field(static=True)
    n_hashes: int = eqx.field(static=True)
    n_buckets: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        dropout: float = 0.0,
        rope: RotaryEncoding | None = None,
        bias: bool = True,
        dtype=None,
        bucket_size: int = 32,
        n_hashes: int = 2,
        n_buckets: int = 8,
        key: Array,
    ) -> None:
        options = check_mixer_options(
            "lsh",
            dict(bucket_size=bucket_size, n_hashes=n_hashes, n_buckets=n_buckets),
            dim=dim,
            heads=heads,
            rope=rope is not None,
        )
        self.dim, self.heads = int(dim), int(heads)
        self.head_dim = self.dim // self.heads
        self.dropout = check_no_dropout("lsh", dropout)
        self.rope = check_rope(rope, self.head_dim)
        self.bucket_size, self.n_hashes = options["bucket_size"], options["n_hashes"]
        self.n_buckets = options["n_buckets"]
        qk_key, v_key, out_key, rot_key = jax.random.split(key, 4)
        self.qk = eqx.nn.Linear(dim, dim, use_bias=bias, dtype=dtype, key=qk_key)
        self.v = eqx.nn.Linear(dim, dim, use_bias=bias, dtype=dtype, key=v_key)
        self.out = eqx.nn.Linear(dim, dim, use_bias=bias, dtype=dtype, key=out_key)
        shape = (self.n_hashes, self.head_dim, self.n_buckets // 2)
        self.rotations = jax.random.normal(rot_key, shape).astype(self.out.weight.dtype)

    def redraw(self, key: Array) -> LSHAttention:
        """A copy with new random rotations drawn with ``key``."""
        new = jax.random.normal(key, self.rotations.shape).astype(self.rotations.dtype)
        return eqx.tree_at(lambda m: m.rotations, self, new)

    def shared_qk(self, x: Array) -> Array:
        """The shared queries/keys ``(heads, length, head_dim)`` (before RoPE): hashed."""
        length = x.shape[0]
        return jnp.swapaxes(jax.vmap(self.qk)(x).reshape(length, self.heads, self.head_dim), 0, 1)

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
        qk = self.shared_qk(x)
        buckets = lsh_buckets(qk, jax.lax.stop_gradient(self.rotations))
        if self.rope is not None:
            cos, sin = self.rope.angles(positions, x.dtype)  # (1, length, head_dim)
            qk = qk * cos + rotate_half(qk) * sin
        v = jnp.swapaxes(jax.vmap(self.v)(x).reshape(length, self.heads, self.head_dim), 0, 1)
        o = lsh_attention(
            qk,
            v,
            buckets,
            padding_mask,
            bucket_size=self.bucket_size,
            n_buckets=self.n_buckets,
            causal=causal,
        )
        return jax.vmap(self.out)(jnp.swapaxes(o, 0, 1).reshape(length, self.dim))


__all__ = ["LSHAttention", "lsh_attention", "lsh_buckets"]

"""Aaren: attention as a many-to-many RNN (Feng et al. 2024); mirrors the torch twin.

A learned query per head attends over every prefix; the prefixes come out of
``jax.lax.associative_scan`` over ``(m, u, w)`` (running max, denominator,
numerator) with the paper's operator; decoding is ``O(1)`` per token
(:meth:`AarenMixer.init_state`, :meth:`AarenMixer.step`).  Causal and
bidirectional behaviour, padding and refused options as documented in
:mod:`sciml_seq.torch.mixers.aaren`.  Acts on one example.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ...errors import ShapeError
from ...mixers import check_no_rope
from ...position import check_heads
from .common import check_call, check_no_dropout

State = tuple[Array, Array, Array]
"""``(m, u, w)``: running max ``(heads,)``, denominator ``(heads,)``, numerator
``(heads, head_dim)``."""


def aaren_combine(a: State, b: State) -> State:
    """The associative operator on ``(m, u, w)``: ``a`` the earlier segment, ``b`` the later.

    Works elementwise on leading axes (as ``jax.lax.associative_scan`` needs);
    empty segments (``m = -inf``) combine without NaN.
    """
    m = jnp.maximum(a[0], b[0])
    shift = jnp.where(jnp.isfinite(m), m, 0.0)
    ea, eb = jnp.exp(a[0] - shift), jnp.exp(b[0] - shift)
    return m, a[1] * ea + b[1] * eb, a[2] * ea[..., None] + b[2] * eb[..., None]


def aaren_leaves(scores: Array, values: Array, valid: Array | None = None) -> State:
    """``(m, u, w) = (s_i, 1, v_i)`` per token; ``(-inf, 0, 0)`` at invalid tokens."""
    u = jnp.ones_like(scores)
    if valid is None:
        return scores, u, values
    return (
        jnp.where(valid, scores, -jnp.inf),
        jnp.where(valid, u, 0.0),
        jnp.where(valid[..., None], values, 0.0),
    )


def aaren_output(state: State) -> Array:
    """``w / u`` (the attention output), zero where ``u = 0`` (no valid token yet)."""
    _, u, w = state
    some = u > 0
    o = w / jnp.where(some, u, 1.0)[..., None]
    return jnp.where(some[..., None], o, 0.0)


def aaren_scan(scores: Array, values: Array, valid: Array | None = None) -> Array:
    """Per-prefix softmax attention by ``jax.lax.associative_scan`` along axis 0.

    ``scores (length, ...)``, ``values (length, ..., head_dim)``, ``valid``
    (bool, broadcastable to ``scores``) or ``None``.  Returns ``(length, ...,
    head_dim)``.
    """
    leaves = aaren_leaves(scores, values, valid)
    return aaren_output(jax.lax.associative_scan(aaren_combine, leaves, axis=0))


def aaren_reduce(scores: Array, values: Array, valid: Array | None = None) -> Array:
    """The last prefix of :func:`aaren_scan` alone: ``(..., head_dim)``, in ``O(length)``."""
    m, u, w = aaren_leaves(scores, values, valid)
    top = jnp.max(m, axis=0)
    shift = jnp.where(jnp.isfinite(top), top, 0.0)
    e = jnp.exp(m - shift)
    return aaren_output((top, jnp.sum(u * e, axis=0), jnp.sum(w * e[..., None], axis=0)))


class AarenMixer(eqx.Module):
    """Aaren attention: a learned query per head over every prefix, by a prefix scan.

    Same constructor arguments, parameter names and shapes (``query (heads,
    head_dim)``, ``kv = Linear(dim, 2 * dim)`` rows ``[k | v]``, ``out``) as
    :class:`sciml_seq.torch.mixers.aaren.AarenMixer`, plus ``key``.  Call:
    ``__call__(x, positions=None, *, causal=False, padding_mask=None,
    key=None)`` with ``x (length, dim)``; returns ``(length, dim)``.  Decoding:
    ``state = init_state()``, then ``state, y_t = step(state, x_t)`` with ``x_t
    (dim,)``.
    """

    query: Array
    kv: eqx.nn.Linear
    out: eqx.nn.Linear
    dim: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        dropout: float = 0.0,
        rope: object | None = None,
        bias: bool = True,
        dtype=None,
        key: Array,
    ) -> None:
        self.head_dim = check_heads(dim, heads)
        self.dim, self.heads = int(dim), int(heads)
        check_no_dropout("aaren", dropout)
        check_no_rope("aaren", rope)
        if dtype is None:
            dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
        q_key, kv_key, out_key = jax.random.split(key, 3)
        self.query = jax.random.normal(q_key, (self.heads, self.head_dim), dtype)
        self.kv = eqx.nn.Linear(dim, 2 * dim, use_bias=bias, dtype=dtype, key=kv_key)
        self.out = eqx.nn.Linear(dim, dim, use_bias=bias, dtype=dtype, key=out_key)

    def scores_values(self, x_t: Array) -> tuple[Array, Array]:
        """Scores ``(heads,)`` and values ``(heads, head_dim)`` of one token ``x_t (dim,)``."""
        k, v = self.kv(x_t).reshape(2, self.heads, self.head_dim)
        return jnp.sum(k * self.query, axis=-1) / math.sqrt(self.head_dim), v

    def __call__(
        self,
        x: Array,
        positions: ArrayLike | None = None,
        *,
        causal: bool = False,
        padding_mask: ArrayLike | None = None,
        key: Array | None = None,
    ) -> Array:
        _, padding_mask = check_call(x, self.dim, positions, padding_mask, None)
        length = x.shape[0]
        valid = None if padding_mask is None else padding_mask[:, None]
        s, v = jax.vmap(self.scores_values)(x)  # (length, heads), (length, heads, head_dim)
        if causal:
            o = aaren_scan(s, v, valid)
        else:
            o = jnp.broadcast_to(aaren_reduce(s, v, valid), v.shape)
        return jax.vmap(self.out)(o.reshape(length, self.dim))

    def init_state(self, dtype=None) -> State:
        """The empty prefix: ``m = -inf``, ``u = 0``, ``w = 0``."""
        dtype = self.query.dtype if dtype is None else dtype
        m = jnp.full((self.heads,), -jnp.inf, dtype)
        return m, jnp.zeros_like(m), jnp.zeros((self.heads, self.head_dim), dtype)

    def step(self, state: State, x_t: Array, valid: ArrayLike | None = None) -> tuple[State, Array]:
        """One token ``x_t (dim,)`` (``valid``: a bool scalar, ``False`` leaves the state
        unchanged) -> ``(new state, y_t (dim,))``; ``O(1)`` in the length."""
        if jnp.ndim(x_t) != 1 or jnp.shape(x_t)[-1] != self.dim:
            raise ShapeError(f"x_t must have shape (dim={self.dim},), got {jnp.shape(x_t)}")
        s, v = self.scores_values(x_t)
        leaf = aaren_leaves(s, v, None if valid is None else jnp.asarray(valid))
        state = aaren_combine(state, leaf)
        return state, self.out(aaren_output(state).reshape(self.dim))


__all__ = ["AarenMixer", "aaren_combine", "aaren_reduce", "aaren_scan"]

"""Performer attention, FAVOR+ (Choromanski et al. 2021); mirrors the torch ``performer``.

The same estimator, RoPE placement (RoFormer section 3.3: rotated feature maps
in the numerator, unrotated in the denominator), stabilisation and chunked
causal prefix sums as the torch module; see its docstring.  Acts on one
example.  The random features are the array ``features (n_features,
head_dim)``, a leaf of the module (so :func:`sciml_seq.convert.torch_to_jax`
gives both frameworks the same features) behind ``jax.lax.stop_gradient``:
its gradient is zero, and an optimizer leaves it as it is (filter it out of
weight decay).  New features: :meth:`PerformerAttention.redraw` with a new key
returns a copy with new ones; :func:`redraw_features` does it for every
performer in a model (a JAX training loop calls it where torch's encoder
redraws with ``redraw=True``).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ...mixers import check_mixer_options
from ..position import RotaryEncoding
from .common import check_call, check_no_dropout, check_rope

RELU_EPS = 1e-3
"""The constant added to ReLU features (Performer's generalised kernel)."""


def draw_features(
    n_features: int, head_dim: int, *, orthogonal: bool = True, dtype=None, key: Array
) -> Array:
    """Random projections ``W (n_features, head_dim)`` of FAVOR+ (as the torch function).

    ``orthogonal``: blocks of ``head_dim`` orthogonal rows (Haar ``Q`` of a
    Gaussian matrix's QR, signs of ``R``'s diagonal applied), each row scaled by
    the norm of an independent Gaussian vector; otherwise i.i.d. ``N(0, I)``.
    """
    dtype = dtype or jnp.result_type(float)
    if not orthogonal:
        return jax.random.normal(key, (n_features, head_dim)).astype(dtype)
    n_blocks = math.ceil(n_features / head_dim)
    block_key, norm_key = jax.random.split(key)
    gauss = jax.random.normal(block_key, (n_blocks, head_dim, head_dim))
    q, r = jnp.linalg.qr(gauss)
    q = q * jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    rows = jnp.swapaxes(q, -1, -2).reshape(n_blocks * head_dim, head_dim)[:n_features]
    norms = jnp.linalg.norm(jax.random.normal(norm_key, (n_features, head_dim)), axis=1)
    return (norms[:, None] * rows).astype(dtype)


def feature_map(
    x: Array, features: Array, kernel: str, *, query: bool, valid: Array | None = None
) -> Array:
    """``phi(x)`` of ``x (heads, length, head_dim)`` -> ``(heads, length, m)`` (as torch's)."""
    x = x * x.shape[-1] ** -0.25
    proj = x @ features.astype(x.dtype).T
    if kernel == "relu":
        phi = jax.nn.relu(proj) + RELU_EPS
    else:
        arg = proj - 0.5 * jnp.sum(x * x, axis=-1, keepdims=True)
        if query:
            top = jnp.max(arg, axis=-1, keepdims=True)
        else:
            masked = arg if valid is None else jnp.where(valid[None, :, None], arg, -jnp.inf)
            top = jnp.max(masked, axis=(-2, -1), keepdims=True)
            top = jnp.where(jnp.isfinite(top), top, 0.0)
        phi = jnp.exp(arg - jax.lax.stop_gradient(top)) / math.sqrt(features.shape[0])
    if valid is not None and not query:
        phi = phi * valid[None, :, None].astype(phi.dtype)
    return phi


def favor(
    qf: Array,
    kf: Array,
    v: Array,
    *,
    causal: bool,
    rotated: tuple[Array, Array] | None = None,
    chunk_size: int = 64,
) -> Array:
    """Linear attention from the feature maps ``qf, kf (heads, length, m)`` (as torch's)."""
    qn, kn = (qf, kf) if rotated is None else rotated
    if not causal:
        num = qn @ (jnp.swapaxes(kn, -1, -2) @ v)
        den = qf @ jnp.sum(kf, axis=-2)[..., None]
    else:
        h, length, _ = qf.shape
        c = min(chunk_size, length)
        n = -(-length // c)
        pad = n * c - length

        def chunks(a: Array) -> Array:
            a = jnp.pad(a, ((0, 0), (0, pad), (0, 0)))
            return a.reshape(h, n, c, a.shape[-1])

        qf, kf, qn, kn, vc = map(chunks, (qf, kf, qn, kn, v))
        tril = jnp.tril(jnp.ones((c, c), dtype=bool))
        state = jnp.swapaxes(kn, -1, -2) @ vc  # (h, n, m, d): each chunk's sum
        state = jnp.cumsum(state, axis=1) - state  # exclusive prefix over chunks
        local = jnp.where(tril, qn @ jnp.swapaxes(kn, -1, -2), 0.0)
        num = qn @ state + local @ vc
        zs = jnp.sum(kf, axis=-2, keepdims=True)  # (h, n, 1, m)
        zs = jnp.cumsum(zs, axis=1) - zs
        dlocal = jnp.where(tril, qf @ jnp.swapaxes(kf, -1, -2), 0.0)
        den = jnp.sum(qf * zs, axis=-1, keepdims=True) + jnp.sum(dlocal, axis=-1, keepdims=True)
        num = num.reshape(h, n * c, -1)[:, :length]
        den = den.reshape(h, n * c, 1)[:, :length]
    return num / jnp.where(den == 0, 1.0, den)


class PerformerAttention(eqx.Module):
    """Multi-head FAVOR+ attention, as :class:`sciml_seq.torch.mixers.PerformerAttention`.

    Same constructor arguments (plus ``key``: weights and features), parameter
    names (``qkv``, ``out``) and array ``features``.  Call:
    ``__call__(x, positions=None, *, causal=False, padding_mask=None, key=None)``
    with ``x (length, dim)``; returns ``(length, dim)``.
    """

    qkv: eqx.nn.Linear
    out: eqx.nn.Linear
    features: Array
    rope: RotaryEncoding | None
    dim: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)
    dropout: float = eqx.field(static=True)
    n_features: int = eqx.field(static=True)
    kernel: str = eqx.field(static=True)
    orthogonal: bool = eqx.field(static=True)
    redraw_in_training: bool = eqx.field(static=True)
    chunk_size: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        dropout: float = 0.0,
        rope: RotaryEncoding | None = None,
        bias: bool = True,
        dtype=None,
        n_features: int | None = None,
        kernel: str = "softmax",
        orthogonal: bool = True,
        redraw: bool = False,
        chunk_size: int = 64,
        key: Array,
    ) -> None:
        options = check_mixer_options(
            "performer",
            dict(
                n_features=n_features,
                kernel=kernel,
                orthogonal=orthogonal,
                redraw=redraw,
                chunk_size=chunk_size,
            ),
            dim=dim,
            heads=heads,
            rope=rope is not None,
        )
        self.dim, self.heads = int(dim), int(heads)
        self.head_dim = self.dim // self.heads
        self.dropout = check_no_dropout("performer", dropout)
        check_rope(rope, self.head_dim)
        self.n_features, self.kernel = options["n_features"], options["kernel"]
        self.orthogonal, self.redraw_in_training = options["orthogonal"], options["redraw"]
        self.chunk_size = options["chunk_size"]
        self.rope = None if rope is None else RotaryEncoding(self.n_features, rope.base)
        qkv_key, out_key, feature_key = jax.random.split(key, 3)
        self.qkv = eqx.nn.Linear(dim, 3 * dim, use_bias=bias, dtype=dtype, key=qkv_key)
        self.out = eqx.nn.Linear(dim, dim, use_bias=bias, dtype=dtype, key=out_key)
        self.features = draw_features(
            self.n_features,
            self.head_dim,
            orthogonal=self.orthogonal,
            dtype=self.out.weight.dtype,
            key=feature_key,
        )

    def redraw(self, key: Array) -> PerformerAttention:
        """A copy with new random features drawn with ``key``."""
        new = draw_features(
            self.n_features,
            self.head_dim,
            orthogonal=self.orthogonal,
            dtype=self.features.dtype,
            key=key,
        )
        return eqx.tree_at(lambda m: m.features, self, new)

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
        qkv = jax.vmap(self.qkv)(x).reshape(length, 3, self.heads, self.head_dim)
        q, k, v = (jnp.swapaxes(qkv[:, i], 0, 1) for i in range(3))  # (heads, length, hd)
        features = jax.lax.stop_gradient(self.features)
        qf = feature_map(q, features, self.kernel, query=True)
        kf = feature_map(k, features, self.kernel, query=False, valid=padding_mask)
        rotated = None
        if self.rope is not None:
            cos, sin = self.rope.angles(positions, x.dtype)  # (1, length, m)
            rotated = (self.rope.rotate(qf, cos, sin), self.rope.rotate(kf, cos, sin))
        o = favor(qf, kf, v, causal=causal, rotated=rotated, chunk_size=self.chunk_size)
        return jax.vmap(self.out)(jnp.swapaxes(o, 0, 1).reshape(length, self.dim))


def redraw_features(model, key: Array):
    """``model`` with new random features in every :class:`PerformerAttention` it holds.

    Each performer gets its own key split from ``key``.
    """
    is_performer = lambda m: isinstance(m, PerformerAttention)  # noqa: E731
    leaves = [m for m in jax.tree_util.tree_leaves(model, is_leaf=is_performer) if is_performer(m)]
    if not leaves:
        return model
    keys = jax.random.split(key, len(leaves))
    new = iter([m.redraw(k) for m, k in zip(leaves, keys, strict=True)])
    return jax.tree_util.tree_map(
        lambda m: next(new) if is_performer(m) else m, model, is_leaf=is_performer
    )


__all__ = ["PerformerAttention", "draw_features", "favor", "feature_map", "redraw_features"]

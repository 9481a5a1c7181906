"""LSH attention (Reformer, Kitaev et al. 2020); mirrors :mod:`sciml_seq.jax.mixers.lsh`.

Shared-QK attention: one projection gives the queries ``q`` and the keys
``k = q / |q|``.  Each of ``n_hashes`` rounds hashes the tokens by angular LSH,
``bucket(x) = argmax([x R, -x R])`` with a random rotation ``R (head_dim,
n_buckets / 2)``, sorts them by ``(bucket, position)``, cuts the sorted order
into chunks of ``bucket_size`` and lets every query attend the keys of its own
bucket in its chunk and the chunk before.  A token attends to itself only when
nothing else is allowed (its logit is lowered by
:data:`~sciml_seq.mixers.SELF_PENALTY`).  The rounds are combined with
weights ``softmax_r(lse_r)`` (the log-normalisers of each round) after
subtracting ``log N[t, s]`` (in how many rounds ``s`` is in ``t``'s set), so
the result is exactly dense softmax attention over the union of the rounds'
sets, each key once: :func:`sciml_seq.mixers.lsh_counts` gives that mask
(tested).  Time and memory ``O(n_hashes * L * bucket_size)`` (plus
``n_hashes`` count passes).

Differences from the Reformer code: the rotations are a persistent buffer
``rotations (n_hashes, head_dim, n_buckets / 2)`` shared by the heads and
drawn once (:meth:`LSHAttention.redraw` draws new ones), not at every forward
pass, so that an ODE solve sees one vector field and torch and JAX can be
given the same ones; the first chunk of a round looks back at nothing (not at
the round's last chunk); ``n_buckets`` is fixed at construction (Reformer
sets about ``length / bucket_size``).  The reversible layers of Reformer are
the encoder's existing reversible depth (``sciml_seq.torch.depth``).

RoPE: the tokens are hashed by their unrotated shared vectors (by content) and
attend with the rotated ones, so the output depends on relative positions only
(hashing the rotated vectors would tie the buckets to absolute positions).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...mixers import SELF_PENALTY, check_mixer_options
from ..position import RotaryEncoding
from .common import check_call, check_no_dropout, check_rope, masked_softmax

NORM_EPS = 1e-12
"""Keys are ``q / max(|q|, NORM_EPS)``."""


def lsh_buckets(qk: Tensor, rotations: Tensor) -> Tensor:
    """Angular-LSH bucket ids ``(batch, heads, n_hashes, length)`` of ``qk (b, h, L, d)``.

    ``rotations (n_hashes, d, n_buckets / 2)``; ``bucket = argmax([x R, -x R])``.
    """
    rot = torch.einsum("bhld,rdk->bhrlk", qk, rotations.to(qk.dtype))
    return torch.cat([rot, -rot], dim=-1).argmax(dim=-1)


def _take(a: Tensor, index: Tensor) -> Tensor:
    """``a (b, h, r, L, ...)`` at ``index (b, h, r, *shape)`` along ``L``."""
    b, h, r = index.shape[:3]
    flat = index.reshape(b, h, r, -1)
    tail = a.shape[4:]
    flat = flat.view(*flat.shape, *(1,) * len(tail)).expand(*flat.shape, *tail)
    return torch.gather(a, 3, flat).view(*index.shape, *tail)


def _look_back(a: Tensor, axis: int) -> Tensor:
    """Each chunk followed by the chunk before it: chunk axis ``axis - 1``, in-chunk ``axis``."""
    return torch.cat([a, a.roll(1, dims=axis - 1)], dim=axis)


def lsh_attention(
    qk: Tensor,
    v: Tensor,
    buckets: Tensor,
    valid: Tensor | None,
    *,
    bucket_size: int,
    n_buckets: int,
    causal: bool = False,
) -> Tensor:
    """Multi-round LSH attention of ``qk, v (batch, heads, length, d)`` (see the module).

    ``buckets (batch, heads, n_hashes, length)`` from :func:`lsh_buckets`;
    ``valid (batch, length)`` bool or ``None``.  Returns ``(batch, heads, length, d)``.
    """
    b, h, length, d = qk.shape
    r = buckets.shape[2]
    c = min(bucket_size, length)
    n = math.ceil(length / c)
    pad = n * c - length
    device = qk.device
    if valid is None:
        valid = torch.ones(b, length, dtype=torch.bool, device=device)
    key_valid = nn.functional.pad(valid, (0, pad), value=False)[:, None, None, :]
    key_valid = key_valid.expand(b, h, r, n * c)
    # padding tokens: a bucket of their own, sorted last, so the chunks of the
    # real tokens are those of the unpadded sequence
    buckets = nn.functional.pad(buckets, (0, pad), value=n_buckets)
    qk, v = (nn.functional.pad(a, (0, 0, 0, pad)) for a in (qk, v))
    position = torch.arange(n * c, device=device)
    perm = (buckets * (n * c) + position).argsort(dim=-1)  # (b, h, r, Lp): sorted -> token
    inv = perm.argsort(dim=-1)  # token -> sorted place
    chunk_of = inv // c
    qs = _take(qk[:, :, None].expand(b, h, r, n * c, d), perm)
    vs = _take(v[:, :, None].expand(b, h, r, n * c, d), perm)
    ks = qs / qs.norm(dim=-1, keepdim=True).clamp(min=NORM_EPS)
    qc = qs.view(b, h, r, n, c, d)
    kc = _look_back(ks.view(b, h, r, n, c, d), -2)
    vc = _look_back(vs.view(b, h, r, n, c, d), -2)
    tq = perm.view(b, h, r, n, c)
    tk = _look_back(tq, -1)  # (b, h, r, n, 2c)
    bq = _take(buckets, tq)
    bk = _take(buckets, tk)
    first = torch.zeros(n, 2 * c, dtype=torch.bool, device=device)
    first[0, c:] = True  # the first chunk has no chunk before it
    allowed = (bq[..., :, None] == bk[..., None, :]) & ~first[:, None, :]
    allowed = allowed & _take(key_valid, tk)[..., None, :]
    if causal:
        allowed = allowed & (tk[..., None, :] <= tq[..., :, None])
    logits = torch.einsum("bhrnid,bhrnjd->bhrnij", qc, kc) * d**-0.5
    logits = logits - SELF_PENALTY * (tq[..., :, None] == tk[..., None, :]).to(logits.dtype)
    if r > 1:  # N[t, s]: the rounds in which s is in t's set (each key counted once)
        count = torch.zeros(allowed.shape, dtype=logits.dtype, device=device)
        for rr in range(r):
            bucket_r = buckets[:, :, rr : rr + 1].expand(b, h, r, n * c)
            chunk_r = chunk_of[:, :, rr : rr + 1].expand(b, h, r, n * c)
            same = _take(bucket_r, tq)[..., :, None] == _take(bucket_r, tk)[..., None, :]
            cq, ck = _take(chunk_r, tq)[..., :, None], _take(chunk_r, tk)[..., None, :]
            count = count + (same & ((ck == cq) | (ck == cq - 1))).to(logits.dtype)
        logits = logits - torch.log(count.clamp(min=1.0))
    weights, lse = masked_softmax(logits, allowed)  # (b, h, r, n, c, 2c), (b, h, r, n, c)
    o = (weights @ vc).view(b, h, r, n * c, d)
    o = _take(o, inv)  # back to token order
    lse = _take(lse.reshape(b, h, r, n * c), inv)
    mix = torch.softmax(lse, dim=2)  # (b, h, r, Lp): the rounds' shares
    return (mix[..., None] * o).sum(dim=2)[:, :, :length]


class LSHAttention(nn.Module):
    """Multi-head shared-QK LSH attention (see the module docstring).

    Parameters
    ----------
    dim, heads, rope, bias, dtype: as :class:`~sciml_seq.torch.attention.MultiheadAttention`
        (``rope`` rotates the shared queries/keys after hashing: see the module).
    dropout: must be 0.
    bucket_size: chunk length of the sorted order (Reformer's ``bucket_size``).
    n_hashes: hash rounds.
    n_buckets: buckets per round (even).

    Parameters (names): ``qk`` (``Linear(dim, dim)``, shared queries and keys),
    ``v`` (``Linear(dim, dim)``), ``out`` (``Linear(dim, dim)``); buffer
    ``rotations (n_hashes, head_dim, n_buckets // 2)``.

    Call: as :class:`MultiheadAttention`; returns ``(batch, length, dim)``.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        dropout: float = 0.0,
        rope: RotaryEncoding | None = None,
        bias: bool = True,
        dtype: torch.dtype | None = None,
        bucket_size: int = 32,
        n_hashes: int = 2,
        n_buckets: int = 8,
    ) -> None:
        super().__init__()
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
        self.qk = nn.Linear(self.dim, self.dim, bias=bias, dtype=dtype)
        self.v = nn.Linear(self.dim, self.dim, bias=bias, dtype=dtype)
        self.out = nn.Linear(self.dim, self.dim, bias=bias, dtype=dtype)
        shape = (self.n_hashes, self.head_dim, self.n_buckets // 2)
        self.register_buffer("rotations", torch.randn(shape, dtype=self.out.weight.dtype))

    @torch.no_grad()
    def redraw(self, generator: torch.Generator | None = None) -> None:
        """Draw new random rotations in place (``generator``: torch's default when ``None``)."""
        self.rotations.copy_(
            torch.randn(
                self.rotations.shape,
                generator=generator,
                dtype=self.rotations.dtype,
                device=self.rotations.device,
            )
        )

    def shared_qk(self, x: Tensor) -> Tensor:
        """The shared queries/keys ``(batch, heads, length, head_dim)`` (before RoPE): hashed."""
        batch, length, _ = x.shape
        return self.qk(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: Tensor,
        positions: Tensor | None = None,
        *,
        causal: bool = False,
        padding_mask: Tensor | None = None,
        rope_angles: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        check_call(x, self.dim, positions, padding_mask, self.rope, rope_angles)
        batch, length, _ = x.shape
        qk = self.shared_qk(x)
        buckets = lsh_buckets(qk, self.rotations)
        if self.rope is not None:
            cos, sin = self.rope.angles(positions, x.dtype) if rope_angles is None else rope_angles
            qk = self.rope.rotate(qk, cos, sin)
        v = self.v(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        o = lsh_attention(
            qk,
            v,
            buckets,
            padding_mask,
            bucket_size=self.bucket_size,
            n_buckets=self.n_buckets,
            causal=causal,
        )
        return self.out(o.transpose(1, 2).reshape(batch, length, self.dim))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.heads}, bucket_size={self.bucket_size}, "
            f"n_hashes={self.n_hashes}, n_buckets={self.n_buckets}"
        )


__all__ = ["LSHAttention", "lsh_attention", "lsh_buckets"]

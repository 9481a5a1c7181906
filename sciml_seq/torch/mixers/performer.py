"""Performer attention, FAVOR+ (Choromanski et al. 2021); mirrors the JAX ``performer``.

Softmax attention ``softmax(q k^T / sqrt(d)) v`` is approximated through a
feature map ``phi`` with ``E[phi(q)^T phi(k)] = exp(q^T k / sqrt(d))``: the
positive random features

    phi(x) = exp(W x - |x|^2 / 2) / sqrt(m),   x = q / d^(1/4)  (or k / d^(1/4))

with ``m = n_features`` rows of ``W (m, head_dim)`` drawn as blocks of random
orthogonal directions scaled by the norms of Gaussian vectors (``orthogonal``;
otherwise i.i.d. Gaussian).  Then

    out_t = sum_s phi(q_t)^T phi(k_s) v_s / sum_s phi(q_t)^T phi(k_s)

costs ``O(L m d)`` by summing ``phi(k_s) v_s^T`` first; causal attention takes
prefix sums instead (computed in chunks of ``chunk_size``: exact quadratic
attention of the feature maps inside a chunk, a carried ``(m, d)`` state across
chunks; memory ``O(L m)``).

RoPE (RoFormer, Su et al., section 3.3): with a rotary encoding the feature
maps are rotated in the NUMERATOR only,

    out_t = sum_s (R_t phi(q_t))^T (R_s phi(k_s)) v_s / sum_s phi(q_t)^T phi(k_s),

``R_p`` the rotary rotation of the ``m`` features at position ``p`` (base as
given), so the numerator depends on positions through ``t - s`` only; the
denominator stays positive.  The mixer therefore keeps its own
:class:`RotaryEncoding` of ``n_features`` (even) with the given one's base.

Numerics: a row constant (queries: each row's maximum; keys: the maximum over
the valid keys) is taken out of the exponent; it cancels in the ratio.  A
query with no valid key gets zeros.  The features are a persistent buffer
``features (n_features, head_dim)``, moved by ``state_dict`` and
:func:`sciml_seq.convert.torch_to_jax`; :meth:`PerformerAttention.redraw`
draws new ones (and with ``redraw=True`` the encoder redraws them at every
training-mode forward, never within one forward pass, so an ODE solve sees
one vector field).  ``kernel="relu"`` uses the Performer paper's generalised
kernel ``phi(x) = relu(W x) + 1e-3`` instead (not an estimate of softmax).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...mixers import check_mixer_options
from ..position import RotaryEncoding
from .common import check_call, check_no_dropout, check_rope

RELU_EPS = 1e-3
"""The constant added to ReLU features (Performer's generalised kernel)."""


def draw_features(
    n_features: int,
    head_dim: int,
    *,
    orthogonal: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Random projections ``W (n_features, head_dim)`` of FAVOR+.

    ``orthogonal``: stacked blocks of ``head_dim`` orthogonal rows (QR of a
    Gaussian matrix), each row scaled by the norm of an independent Gaussian
    vector, so every row is marginally ``N(0, I)`` and rows within a block are
    exactly orthogonal (``Q`` of the QR made Haar-distributed by the signs
    of ``R``'s diagonal, so the estimator stays unbiased); otherwise i.i.d. ``N(0, I)`` rows.
    """
    dtype = dtype or torch.get_default_dtype()
    kw = dict(generator=generator, dtype=torch.float64, device=device)
    if not orthogonal:
        return torch.randn(n_features, head_dim, **kw).to(dtype)
    blocks = []
    for _ in range(math.ceil(n_features / head_dim)):
        q, r = torch.linalg.qr(torch.randn(head_dim, head_dim, **kw))
        # signs of R's diagonal into Q: Haar-distributed Q (Mezzadri 2007); without
        # them the directions are not uniform and the estimator is biased
        blocks.append((q * torch.sign(torch.diagonal(r))).T)
    norms = torch.randn(n_features, head_dim, **kw).norm(dim=1)
    return (norms[:, None] * torch.cat(blocks)[:n_features]).to(dtype)


def feature_map(
    x: Tensor, features: Tensor, kernel: str, *, query: bool, valid: Tensor | None = None
) -> Tensor:
    """``phi(x)`` of ``x (batch, heads, length, head_dim)`` -> ``(batch, heads, length, m)``.

    ``query``: stabilise per row; else by the maximum over the ``valid``
    ``(batch, length)`` keys of each (batch, head).  Invalid keys give zeros.
    """
    x = x * x.shape[-1] ** -0.25
    proj = x @ features.to(x.dtype).T
    if kernel == "relu":
        phi = torch.relu(proj) + RELU_EPS
    else:
        arg = proj - 0.5 * (x * x).sum(dim=-1, keepdim=True)
        if query:
            top = arg.amax(dim=-1, keepdim=True)
        else:
            masked = arg if valid is None else arg.masked_fill(~valid[:, None, :, None], -torch.inf)
            top = masked.amax(dim=(-2, -1), keepdim=True)
            top = torch.where(torch.isfinite(top), top, torch.zeros((), dtype=top.dtype))
        phi = torch.exp(arg - top.detach()) / math.sqrt(features.shape[0])
    if valid is not None and not query:
        phi = phi * valid[:, None, :, None].to(phi.dtype)
    return phi


def favor(
    qf: Tensor,
    kf: Tensor,
    v: Tensor,
    *,
    causal: bool,
    rotated: tuple[Tensor, Tensor] | None = None,
    chunk_size: int = 64,
) -> Tensor:
    """Linear attention ``num / den`` from the feature maps ``qf, kf (batch, heads, length, m)``.

    ``rotated``: the rotated ``(R qf, R kf)`` used in the numerator (RoPE);
    the denominator uses ``qf, kf``.  ``causal``: prefix sums in chunks of
    ``chunk_size``.  Rows whose denominator is 0 (no valid key) give zeros.
    """
    qn, kn = (qf, kf) if rotated is None else rotated
    if not causal:
        num = qn @ (kn.transpose(-1, -2) @ v)
        den = qf @ kf.sum(dim=-2)[..., None]
    else:
        b, h, length, m = qf.shape
        c = min(chunk_size, length)
        n = -(-length // c)
        pad = n * c - length

        def chunks(a: Tensor) -> Tensor:
            a = nn.functional.pad(a, (0, 0, 0, pad))
            return a.reshape(b, h, n, c, a.shape[-1])

        qf, kf, qn, kn, vc = map(chunks, (qf, kf, qn, kn, v))
        tril = torch.ones(c, c, dtype=torch.bool, device=qf.device).tril()
        state = kn.transpose(-1, -2) @ vc  # (b, h, n, m, d): each chunk's sum
        state = state.cumsum(dim=2) - state  # exclusive prefix over chunks
        local = (qn @ kn.transpose(-1, -2)).masked_fill(~tril, 0.0)
        num = qn @ state + local @ vc
        zs = kf.sum(dim=-2, keepdim=True)  # (b, h, n, 1, m)
        zs = zs.cumsum(dim=2) - zs
        dlocal = (qf @ kf.transpose(-1, -2)).masked_fill(~tril, 0.0)
        den = (qf * zs).sum(dim=-1, keepdim=True) + dlocal.sum(dim=-1, keepdim=True)
        num = num.reshape(b, h, n * c, -1)[:, :, :length]
        den = den.reshape(b, h, n * c, 1)[:, :, :length]
    safe = torch.where(den == 0, torch.ones((), dtype=den.dtype), den)
    return num / safe


class PerformerAttention(nn.Module):
    """Multi-head FAVOR+ attention: the drop-in of :class:`MultiheadAttention` (see the module).

    Parameters
    ----------
    dim, heads, rope, bias, dtype: as :class:`~sciml_seq.torch.attention.MultiheadAttention`
        (``rope``'s base is used with ``n_features`` rotated features).
    dropout: must be 0 (there are no attention weights to drop).
    n_features: random features ``m`` (default ``~ head_dim * ln(head_dim)``, even).
    kernel: ``"softmax"`` (FAVOR+) or ``"relu"``.
    orthogonal: orthogonal random features (FAVOR+'s "O").
    redraw: redraw the features at every training-mode forward of the encoder.
    chunk_size: chunk length of the causal prefix sums.

    Parameters (names): ``qkv`` (``Linear(dim, 3 * dim)``, rows ``[q | k | v]``)
    and ``out`` (``Linear(dim, dim)``), as dense attention; buffer ``features
    (n_features, head_dim)``.

    Call: as :class:`MultiheadAttention` (``rope_angles`` are those of
    ``self.rope``, the ``n_features`` encoding).  Returns ``(batch, length, dim)``.
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
        n_features: int | None = None,
        kernel: str = "softmax",
        orthogonal: bool = True,
        redraw: bool = False,
        chunk_size: int = 64,
    ) -> None:
        super().__init__()
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
        self.qkv = nn.Linear(self.dim, 3 * self.dim, bias=bias, dtype=dtype)
        self.out = nn.Linear(self.dim, self.dim, bias=bias, dtype=dtype)
        features = draw_features(
            self.n_features, self.head_dim, orthogonal=self.orthogonal, dtype=self.out.weight.dtype
        )
        self.register_buffer("features", features)

    @torch.no_grad()
    def redraw(self, generator: torch.Generator | None = None) -> None:
        """Draw new random features in place (``generator``: torch's default one when ``None``)."""
        self.features.copy_(
            draw_features(
                self.n_features,
                self.head_dim,
                orthogonal=self.orthogonal,
                generator=generator,
                dtype=self.features.dtype,
                device=self.features.device,
            )
        )

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
        qkv = self.qkv(x).view(batch, length, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, length, head_dim)
        qf = feature_map(q, self.features, self.kernel, query=True)
        kf = feature_map(k, self.features, self.kernel, query=False, valid=padding_mask)
        rotated = None
        if self.rope is not None:
            cos, sin = self.rope.angles(positions, x.dtype) if rope_angles is None else rope_angles
            rotated = (self.rope.rotate(qf, cos, sin), self.rope.rotate(kf, cos, sin))
        o = favor(qf, kf, v, causal=causal, rotated=rotated, chunk_size=self.chunk_size)
        return self.out(o.transpose(1, 2).reshape(batch, length, self.dim))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.heads}, n_features={self.n_features}, "
            f"kernel={self.kernel!r}, orthogonal={self.orthogonal}"
        )


__all__ = ["PerformerAttention", "draw_features", "favor", "feature_map"]

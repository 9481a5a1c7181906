"""Sliding-window attention with dilation and global tokens (Longformer, Beltagy et al. 2020).

Mirrors :mod:`sciml_seq.jax.mixers.sliding_window`.  Query ``t`` attends key
``s`` when

- ``|t - s| <= window * dilation`` and ``t - s`` is a multiple of ``dilation``
  (``window`` is ONE-SIDED, in dilated steps: Longformer's total window ``w``
  is ``2 * window``, e.g. its ``w = 512`` is ``window=256``), or
- ``t`` or ``s`` is one of the ``global_tokens`` (indices; a global token
  attends to every token and every token attends to it),

and with ``causal=True`` only when ``s <= t`` (the band looks back
``window`` dilated steps).  Padded keys are never attended; a query with no
key left gets a zero attention output.  This is exactly dense softmax
attention under :func:`sciml_seq.mixers.sliding_window_mask` (tested), but
computed in blocks: the queries are cut into blocks of ``block`` tokens and
each block attends the ``block + 2 * window * dilation`` keys around it plus
the global keys, so time and memory are ``O(L (w + g))``; the ``g`` global
queries attend all ``L`` keys.  Each part is one call of
``scaled_dot_product_attention`` with a boolean mask (a fused kernel where
PyTorch has one for masks).  Longformer gives global attention its own
projections; here the same ``qkv`` serves both (the parameters are those of
dense attention, so the mixers compare at equal parameters).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...mixers import check_global_tokens, check_mixer_options, window_block_length
from ..position import RotaryEncoding
from .common import check_call, check_no_dropout, check_rope


def _attend(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    """``scaled_dot_product_attention`` under ``allowed`` (``True`` = may attend); rows
    without any allowed key give zeros (opened fully for the kernel, then zeroed)."""
    rows = allowed.any(dim=-1, keepdim=True)
    o = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed | ~rows)
    return o.masked_fill(~rows, 0.0)


def banded_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    valid: Tensor | None,
    *,
    window: int,
    dilation: int = 1,
    global_tokens: tuple[int, ...] = (),
    causal: bool = False,
) -> Tensor:
    """Sliding-window + global softmax attention of ``q, k, v (batch, heads, length, d)``.

    ``valid (batch, length)`` bool (``True`` = valid key) or ``None``.  Returns
    ``(batch, heads, length, d)``; see the module docstring for the mask.
    """
    b, h, length, d = q.shape
    device = q.device
    reach = window * dilation
    block = window_block_length(length, window, dilation)
    n = math.ceil(length / block)
    pad = n * block - length
    if valid is None:
        valid = torch.ones(b, length, dtype=torch.bool, device=device)
    key_valid = nn.functional.pad(valid, (0, pad), value=False)
    qp, kp, vp = (nn.functional.pad(a, (0, 0, 0, pad)) for a in (q, k, v))
    span = block + reach + (0 if causal else reach)
    idx = (
        torch.arange(n, device=device)[:, None] * block
        - reach
        + torch.arange(span, device=device)[None, :]
    )  # (n, span): the key index of each slot
    in_range = (idx >= 0) & (idx < length)
    idc = idx.clamp(0, n * block - 1)
    t = torch.arange(n, device=device)[:, None] * block + torch.arange(block, device=device)
    gap = t[:, :, None] - idx[:, None, :]  # (n, block, span)
    band = in_range[:, None, :] & (gap.abs() <= reach) & (gap.remainder(dilation) == 0)
    if causal:
        band = band & (gap >= 0)
    glob = torch.tensor(global_tokens, dtype=torch.long, device=device)
    if global_tokens:
        is_global = torch.zeros(n * block, dtype=torch.bool, device=device)
        is_global[glob] = True
        band = band & ~is_global[idc][:, None, :]  # global keys get their own columns
    allowed = band[None] & key_valid[:, idc][:, :, None, :]  # (b, n, block, span)
    kb, vb = kp[:, :, idc], vp[:, :, idc]  # (b, h, n, span, d)
    if global_tokens:  # the global keys as extra columns of every block
        g = len(global_tokens)
        kb = torch.cat([kb, k[:, :, None, glob].expand(b, h, n, g, d)], dim=-2)
        vb = torch.cat([vb, v[:, :, None, glob].expand(b, h, n, g, d)], dim=-2)
        gallowed = valid[:, glob][:, None, None, :].expand(b, n, block, g)
        if causal:
            gallowed = gallowed & (glob[None, None, :] <= t[:, :, None])[None]
        allowed = torch.cat([allowed, gallowed], dim=-1)
    # one fused attention call over (batch x block) groups of block queries each
    width = kb.shape[-2]
    o = _attend(
        qp.view(b, h, n, block, d).transpose(1, 2).reshape(b * n, h, block, d),
        kb.transpose(1, 2).reshape(b * n, h, width, d),
        vb.transpose(1, 2).reshape(b * n, h, width, d),
        allowed.reshape(b * n, 1, block, width),
    )
    o = o.view(b, n, h, block, d).transpose(1, 2).reshape(b, h, n * block, d)[:, :, :length]
    if global_tokens:  # the global queries attend every key
        qallowed = valid[:, None, None, :].expand(b, 1, len(global_tokens), length)
        if causal:
            qallowed = qallowed & (torch.arange(length, device=device) <= glob[:, None])
        o = o.index_copy(2, glob, _attend(q[:, :, glob], k, v, qallowed))
    return o


class SlidingWindowAttention(nn.Module):
    """Multi-head sliding-window + global attention (see the module docstring).

    Parameters
    ----------
    dim, heads, rope, bias, dtype: as :class:`~sciml_seq.torch.attention.MultiheadAttention`.
    dropout: must be 0.
    window: one-sided window in dilated steps (``>= 0``; Longformer's ``w / 2``).
    dilation: step between attended neighbours (``>= 1``).
    global_tokens: indices of the global tokens (a sequence of ints ``>= 0``).

    Parameters (names): ``qkv`` and ``out``, as dense attention.

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
        window: int = 64,
        dilation: int = 1,
        global_tokens: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
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
        self.qkv = nn.Linear(self.dim, 3 * self.dim, bias=bias, dtype=dtype)
        self.out = nn.Linear(self.dim, self.dim, bias=bias, dtype=dtype)

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
        check_global_tokens(self.global_tokens, length)
        qkv = self.qkv(x).view(batch, length, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, length, head_dim)
        if self.rope is not None:
            cos, sin = self.rope.angles(positions, x.dtype) if rope_angles is None else rope_angles
            q, k = self.rope.rotate(q, cos, sin), self.rope.rotate(k, cos, sin)
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
        return self.out(o.transpose(1, 2).reshape(batch, length, self.dim))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.heads}, window={self.window}, "
            f"dilation={self.dilation}, global_tokens={self.global_tokens}"
        )


__all__ = ["SlidingWindowAttention", "banded_attention"]

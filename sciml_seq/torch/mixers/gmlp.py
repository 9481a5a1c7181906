"""gMLP spatial gating unit (Liu et al. 2021), mirrors :mod:`sciml_seq.jax.mixers.gmlp`.

The token mixer of "Pay Attention to MLPs", as a drop-in for attention::

    u, v = split(gelu(proj(x)))                  # two halves of width dim
    g[t] = sum_s W[h, t, s] LN(v)[s] + b[h, t]   # per head h, along the sequence
    y = out(u * g)

``W (heads, max_length, max_length)`` starts near zero (uniform in
``+-1e-3 / max_length``) and ``b`` at one, so the unit starts near ``u``: close
to an MLP of each token, the paper's near-identity start.  Sequences shorter
than ``max_length`` use the leading ``length x length`` block; longer ones are
refused.

``heads`` = multi-head token mixing: the gate half is split into ``heads``
groups of ``dim // heads`` channels, each with its own sequence projection
(``heads=1`` is the paper's gMLP).  The mixing is by token INDEX: real-valued
``positions`` are shape-checked and unused (the unit does not see uneven
spacing), and ``rope`` is refused.

``causal=True`` masks ``W`` to its lower triangle (token ``t`` reads
``s <= t``).  A padding mask zeroes the normalised gate half at padded tokens,
so their content reaches no valid token; a valid token's output does not
depend on how many padded tokens follow it (with left padding the indices, and
so the weights used, shift).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ...errors import OptionError
from ...mixers import check_length, check_max_length, check_no_rope
from ...position import check_heads
from .common import check_call, check_no_dropout


class SpatialGatingMixer(nn.Module):
    """gMLP's spatial gating unit between an input and an output projection.

    Parameters
    ----------
    dim: model width; ``heads`` must divide it.
    heads: number of token-mixing heads (see the module docstring).
    dropout: must be ``0.0``.
    rope: must be ``None``.
    bias: whether ``proj`` and ``out`` have biases (the spatial bias is always there).
    dtype: parameter dtype.
    max_length: the longest sequence (required): sets the token-mixing weight.

    Parameters: ``proj = Linear(dim, 2 * dim)`` (output ``[u | v]``), ``norm =
    LayerNorm(dim)`` (on ``v``), ``spatial_weight (heads, max_length,
    max_length)`` (``[h, t, s]``: token ``s`` into token ``t``), ``spatial_bias
    (heads, max_length)``, ``out = Linear(dim, dim)``.

    Call: as :class:`~sciml_seq.torch.attention.MultiheadAttention`;
    ``x (batch, length, dim)`` with ``length <= max_length``; returns
    ``(batch, length, dim)``.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        dropout: float = 0.0,
        rope: object | None = None,
        bias: bool = True,
        dtype: torch.dtype | None = None,
        max_length: int | None = None,
    ) -> None:
        super().__init__()
        self.head_dim = check_heads(dim, heads)
        self.dim, self.heads = int(dim), int(heads)
        check_no_dropout("gmlp", dropout)
        check_no_rope("gmlp", rope)
        self.max_length = check_max_length(max_length)
        self.proj = nn.Linear(self.dim, 2 * self.dim, bias=bias, dtype=dtype)
        self.norm = nn.LayerNorm(self.dim, dtype=dtype)
        n = self.max_length
        eps = 1e-3 / n
        self.spatial_weight = nn.Parameter(torch.empty(self.heads, n, n, dtype=dtype))
        nn.init.uniform_(self.spatial_weight, -eps, eps)
        self.spatial_bias = nn.Parameter(torch.ones(self.heads, n, dtype=dtype))
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
        check_call(x, self.dim, positions, padding_mask, None, None)
        batch, length, _ = x.shape
        check_length(length, self.max_length)
        if rope_angles is not None:
            raise OptionError("rope_angles: expected None for mixer='gmlp' (no rotary encoding)")

        u, v = F.gelu(self.proj(x)).chunk(2, dim=-1)
        v = self.norm(v)
        if padding_mask is not None:
            v = v.masked_fill(~padding_mask[..., None], 0.0)
        weight = self.spatial_weight[:, :length, :length]
        if causal:
            weight = weight.tril()
        v = v.view(batch, length, self.heads, self.head_dim)
        gate = torch.einsum("hts,bshd->bthd", weight, v)
        gate = gate + self.spatial_bias[:, :length].T[None, :, :, None]
        return self.out(u * gate.reshape(batch, length, self.dim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}, max_length={self.max_length}"


__all__ = ["SpatialGatingMixer"]

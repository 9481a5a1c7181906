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

from ...checks import check_int
from ...errors import DTypeError, OptionError, ShapeError
from ...position import check_heads, check_shapes
from ..attention import check_padding_mask


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
        self.max_length = check_gmlp_options(dropout, rope, max_length)
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
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[-1] != self.dim:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"x must have shape (batch, length, dim={self.dim}), got {got}")
        batch, length, _ = x.shape
        check_gmlp_length(length, self.max_length)
        if positions is not None:
            if not isinstance(positions, Tensor):
                raise DTypeError(
                    f"positions must be a torch.Tensor, got {type(positions).__name__}"
                )
            check_shapes(
                x.shape,
                ("batch", "length", "dim"),
                positions.shape,
                ("batch", "length"),
                features=self.dim,
            )
        if rope_angles is not None:
            raise OptionError("rope_angles: the gmlp mixer takes no rotary encoding; got angles")
        if padding_mask is not None:
            check_padding_mask(padding_mask, x)

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


def check_gmlp_options(dropout: float, rope: object | None, max_length: object) -> int:
    if dropout != 0.0:
        raise OptionError(f"dropout: the gmlp mixer has no dropout, expected 0.0; got {dropout!r}")
    if rope is not None:
        raise OptionError(
            f"rope: the gmlp mixer takes no rotary encoding, expected None; got {type(rope).__name__}"
        )
    if max_length is None:
        raise OptionError(
            "max_length: the gmlp mixer needs the longest sequence length (its token-mixing "
            "weight is max_length x max_length); got None"
        )
    return check_int("max_length", max_length)


def check_gmlp_length(length: int, max_length: int) -> None:
    if length > max_length:
        raise ShapeError(
            f"x: the gmlp mixer was built for sequences of at most max_length={max_length} "
            f"tokens, got length {length}"
        )


__all__ = ["SpatialGatingMixer"]

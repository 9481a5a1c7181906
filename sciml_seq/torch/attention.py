"""Multi-head self-attention on the fused kernel (mirrors :mod:`sciml_seq.jax.attention`).

Uses ``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-
efficient kernels where PyTorch has them), with optional rotary position
encoding at real-valued positions, and causal and padding masks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..checks import check_real
from ..errors import DTypeError, OptionError, ShapeError
from ..position import check_heads, check_shapes
from .position import RotaryEncoding


def attention_mask(
    padding_mask: Tensor | None, causal: bool, length: int, device: torch.device | None = None
) -> tuple[Tensor | None, Tensor | None]:
    """The boolean mask for ``scaled_dot_product_attention`` and the rows that have any key.

    ``True`` = the query may attend to the key.  Returns ``(mask, rows)`` with
    ``mask (batch, 1, length, length)`` and ``rows (batch, 1, length, 1)``, or
    ``(None, None)`` without a padding mask (plain causal attention uses the
    kernel's ``is_causal``).  Rows without any allowed key are opened fully (so
    that the softmax stays finite, forward and backward) and their output is
    then set to zero through ``rows``.
    """
    if padding_mask is None:
        return None, None
    keys = padding_mask[:, None, None, :]
    if causal:
        keys = keys & torch.ones(length, length, dtype=torch.bool, device=device).tril()
    else:
        keys = keys.expand(-1, -1, length, -1)
    rows = keys.any(dim=-1, keepdim=True)
    return keys | ~rows, rows


def check_padding_mask(
    padding_mask: object, x: Tensor, *, name: str = "padding_mask", like: str = "x"
) -> None:
    """``padding_mask``: a bool tensor ``(batch, length)`` matching ``x (batch, length, ...)``.

    ``name`` and ``like`` name the mask and ``x`` in the messages (a forecaster's
    ``query_mask`` matches its ``query_times``).
    """
    if not isinstance(padding_mask, Tensor) or padding_mask.dtype != torch.bool:
        got = getattr(padding_mask, "dtype", type(padding_mask).__name__)
        raise DTypeError(f"{name} must be a bool tensor (True = valid token), got {got}")
    if padding_mask.shape != x.shape[:2]:
        raise ShapeError(
            f"{name} must have shape (batch, length) = {tuple(x.shape[:2])} to match "
            f"{like} of shape {tuple(x.shape)}, got {tuple(padding_mask.shape)}"
        )


class MultiheadAttention(nn.Module):
    """Multi-head self-attention ``out(softmax(Q K^T / sqrt(head_dim) + mask) V)``.

    Parameters
    ----------
    dim: model width; ``heads`` must divide it (``head_dim = dim // heads``).
    heads: number of heads.
    dropout: attention-weight dropout probability, used in training mode only.
    rope: a :class:`~sciml_seq.torch.position.RotaryEncoding` with
        ``head_dim = dim // heads`` applied to queries and keys (then
        ``positions`` are required), or ``None``.
    bias: whether ``qkv`` and ``out`` have biases.
    dtype: parameter dtype (PyTorch's default when ``None``).

    Parameters: ``qkv = Linear(dim, 3 * dim)`` (output rows ``[q | k | v]``, each
    split into heads as ``(heads, head_dim)``) and ``out = Linear(dim, dim)``.

    Call: ``forward(x, positions=None, *, causal=False, padding_mask=None,
    rope_angles=None)``

    - ``x (batch, length, dim)``;
    - ``positions (batch, length)``, real-valued, used by ``rope`` (shape-checked
      and otherwise ignored without it);
    - ``causal``: query ``t`` attends to keys ``<= t`` only;
    - ``padding_mask (batch, length)``, boolean, ``True`` = a VALID token, ``False``
      = padding: no query attends to padded keys.  Outputs at padded query
      positions are computed (from the valid keys) and meaningless: mask them
      downstream.  A query with no key left (all padded, or causal with only
      padding before it) gets a zero attention output (``out``'s bias after
      the projection);
    - ``rope_angles``: ``rope.angles(positions, dtype)`` computed once by a caller
      that attends many times at the same positions (every evaluation of an ODE
      solve); used instead of ``positions``, which may then be ``None``.

    Returns ``(batch, length, dim)``.
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
    ) -> None:
        super().__init__()
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
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[-1] != self.dim:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"x must have shape (batch, length, dim={self.dim}), got {got}")
        batch, length, _ = x.shape
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
        elif self.rope is not None and rope_angles is None:
            raise OptionError(
                "positions=None, but this attention has a rope encoding: pass positions "
                f"of shape (batch, length) = {(batch, length)}"
            )
        if padding_mask is not None:
            check_padding_mask(padding_mask, x)

        qkv = self.qkv(x).view(batch, length, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, length, head_dim)
        if self.rope is not None:
            cos, sin = self.rope.angles(positions, x.dtype) if rope_angles is None else rope_angles
            q, k = self.rope.rotate(q, cos, sin), self.rope.rotate(k, cos, sin)
        mask, rows = attention_mask(padding_mask, causal, length, x.device)
        dropout_p = self.dropout if self.training else 0.0
        if mask is None:
            o = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=causal)
        else:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            o = o.masked_fill(~rows, 0.0)
        return self.out(o.transpose(1, 2).reshape(batch, length, self.dim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}, dropout={self.dropout}"


__all__ = ["MultiheadAttention", "attention_mask", "check_padding_mask"]

"""Aaren: attention as a many-to-many RNN (Feng et al. 2024); mirrors the JAX twin.

Each head attends with ONE learned query vector ``q`` to the keys and values of
the tokens: the output at token ``t`` is softmax attention of ``q`` over the
prefix ``1..t``::

    s_i = q . k_i / sqrt(head_dim),   o_t = sum_{i<=t} exp(s_i) v_i / sum_{i<=t} exp(s_i).

Written as a recurrence over ``(m, u, w)`` = (running max of the scores,
denominator ``sum exp(s_i - m)``, numerator ``sum exp(s_i - m) v_i``), with the
associative operator of the paper (section 3.2)::

    (m_a, u_a, w_a) + (m_b, u_b, w_b) = (m, u_a e^{m_a - m} + u_b e^{m_b - m},
                                           w_a e^{m_a - m} + w_b e^{m_b - m}),  m = max(m_a, m_b),

every prefix comes out of one parallel prefix scan (:func:`aaren_scan`, a
Hillis-Steele scan: ``ceil(log2(length))`` steps of vector operations, work
``O(length log length)``), and decoding runs token by token in ``O(1)`` memory
(:meth:`AarenMixer.init_state`, :meth:`AarenMixer.step`).

``causal=True`` gives the per-prefix outputs (the RNN, causal by construction).
``causal=False`` gives every token the last prefix: attention of ``q`` over the
whole (valid) sequence, broadcast along it (computed as one reduction with the
same operator).  Padded tokens are left out of every prefix (score ``-inf``:
the operator's identity); a prefix with no valid token gives a zero attention
output (``out``'s bias after the projection), as in
:class:`~sciml_seq.torch.attention.MultiheadAttention`.

The query has no position, so rotary encodings do not apply (``rope`` is
refused); real-valued ``positions`` are shape-checked and unused.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...errors import OptionError, ShapeError
from ...mixers import check_no_rope
from ...position import check_heads
from .common import check_call, check_no_dropout

State = tuple[Tensor, Tensor, Tensor]
"""``(m, u, w)``: running max ``(batch, heads)``, denominator ``(batch, heads)``,
numerator ``(batch, heads, head_dim)``."""


def aaren_combine(a: State, b: State) -> State:
    """The associative operator on ``(m, u, w)``: ``a`` the earlier segment, ``b`` the later.

    ``m`` may be ``-inf`` (an empty segment: ``u = 0``, ``w = 0``); two empty
    segments give an empty one without NaN.
    """
    m = torch.maximum(a[0], b[0])
    shift = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    ea, eb = torch.exp(a[0] - shift), torch.exp(b[0] - shift)
    return m, a[1] * ea + b[1] * eb, a[2] * ea[..., None] + b[2] * eb[..., None]


def aaren_leaves(scores: Tensor, values: Tensor, valid: Tensor | None = None) -> State:
    """``(m, u, w) = (s_i, 1, v_i)`` per token; ``(-inf, 0, 0)`` at invalid tokens.

    ``scores (..., length)``, ``values (..., length, head_dim)``, ``valid``
    broadcastable to ``scores``.
    """
    u = torch.ones_like(scores)
    if valid is None:
        return scores, u, values
    scores = scores.masked_fill(~valid, -math.inf)
    return scores, u * valid, values * valid[..., None]


def aaren_output(state: State) -> Tensor:
    """``w / u`` (the attention output), zero where ``u = 0`` (no valid token yet)."""
    _, u, w = state
    some = u > 0
    o = w / torch.where(some, u, torch.ones_like(u))[..., None]
    return o * some[..., None]


def aaren_scan(scores: Tensor, values: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-prefix softmax attention by a Hillis-Steele prefix scan over the last axis.

    ``scores (..., length)``, ``values (..., length, head_dim)``, ``valid``
    (bool, broadcastable to ``scores``) or ``None``.  Returns ``(..., length,
    head_dim)``: ``o_t = sum_{i<=t, valid} softmax(s)_i v_i``.
    """
    m, u, w = aaren_leaves(scores, values, valid)
    length = scores.shape[-1]
    offset = 1
    while offset < length:
        prev = (
            torch.cat([torch.full_like(m[..., :offset], -math.inf), m[..., :-offset]], dim=-1),
            torch.cat([torch.zeros_like(u[..., :offset]), u[..., :-offset]], dim=-1),
            torch.cat([torch.zeros_like(w[..., :offset, :]), w[..., :-offset, :]], dim=-2),
        )
        m, u, w = aaren_combine(prev, (m, u, w))
        offset *= 2
    return aaren_output((m, u, w))


def aaren_reduce(scores: Tensor, values: Tensor, valid: Tensor | None = None) -> Tensor:
    """The last prefix of :func:`aaren_scan` alone: ``(..., head_dim)``, in ``O(length)``."""
    m, u, w = aaren_leaves(scores, values, valid)
    top = m.amax(dim=-1, keepdim=True)
    shift = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp(m - shift)
    return aaren_output((top[..., 0], (u * e).sum(-1), (w * e[..., None]).sum(-2)))


class AarenMixer(nn.Module):
    """Aaren attention: a learned query per head over every prefix, by a prefix scan.

    Parameters
    ----------
    dim: model width; ``heads`` must divide it (``head_dim = dim // heads``).
    heads: number of heads, each with its own query.
    dropout: must be ``0.0``.
    rope: must be ``None`` (the query has no position).
    bias: whether ``kv`` and ``out`` have biases.
    dtype: parameter dtype.

    Parameters: ``query (heads, head_dim)`` (standard normal at start), ``kv =
    Linear(dim, 2 * dim)`` (output rows ``[k | v]``, each split into ``(heads,
    head_dim)``) and ``out = Linear(dim, dim)``.

    Call: as :class:`~sciml_seq.torch.attention.MultiheadAttention`; returns
    ``(batch, length, dim)``.  Decoding: ``state = init_state(batch)``, then
    ``state, y_t = step(state, x_t)`` per token, equal to the causal call's
    output at that token.
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
    ) -> None:
        super().__init__()
        self.head_dim = check_heads(dim, heads)
        self.dim, self.heads = int(dim), int(heads)
        check_no_dropout("aaren", dropout)
        check_no_rope("aaren", rope)
        self.query = nn.Parameter(torch.randn(self.heads, self.head_dim, dtype=dtype))
        self.kv = nn.Linear(self.dim, 2 * self.dim, bias=bias, dtype=dtype)
        self.out = nn.Linear(self.dim, self.dim, bias=bias, dtype=dtype)

    def scores_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Scores ``(..., heads)``, values ``(..., heads, head_dim)`` of tokens ``x (..., dim)``."""
        kv = self.kv(x).unflatten(-1, (2, self.heads, self.head_dim))
        k, v = kv.unbind(-3)
        return (k * self.query).sum(-1) / math.sqrt(self.head_dim), v

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
        if rope_angles is not None:
            raise OptionError("rope_angles: expected None for mixer='aaren' (no rotary encoding)")
        s, v = self.scores_values(x)  # (batch, length, heads), (batch, length, heads, head_dim)
        s, v = s.transpose(1, 2), v.transpose(1, 2)
        valid = None if padding_mask is None else padding_mask[:, None, :]
        if causal:
            o = aaren_scan(s, v, valid)  # (batch, heads, length, head_dim)
        else:
            o = aaren_reduce(s, v, valid)[:, :, None, :].expand(-1, -1, length, -1)
        return self.out(o.transpose(1, 2).reshape(batch, length, self.dim))

    def init_state(
        self, batch: int, *, dtype: torch.dtype | None = None, device: torch.device | None = None
    ) -> State:
        """The empty prefix: ``m = -inf``, ``u = 0``, ``w = 0`` for ``batch`` sequences."""
        dtype = self.query.dtype if dtype is None else dtype
        device = self.query.device if device is None else device
        m = torch.full((batch, self.heads), -math.inf, dtype=dtype, device=device)
        w = torch.zeros(batch, self.heads, self.head_dim, dtype=dtype, device=device)
        return m, torch.zeros_like(m), w

    def step(self, state: State, x_t: Tensor, valid: Tensor | None = None) -> tuple[State, Tensor]:
        """One token: ``x_t (batch, dim)`` (``valid (batch,)`` bool: ``False`` leaves the
        state unchanged) -> ``(new state, y_t (batch, dim))``; ``O(1)`` in the length."""
        if not isinstance(x_t, Tensor) or x_t.ndim != 2 or x_t.shape[-1] != self.dim:
            got = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
            raise ShapeError(f"x_t must have shape (batch, dim={self.dim}), got {got}")
        s, v = self.scores_values(x_t)
        leaf = aaren_leaves(s, v, None if valid is None else valid[:, None])
        state = aaren_combine(state, leaf)
        return state, self.out(aaren_output(state).reshape(x_t.shape[0], self.dim))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}"


__all__ = ["AarenMixer", "aaren_combine", "aaren_reduce", "aaren_scan"]

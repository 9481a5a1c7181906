"""Time-conditioned layer norm ``γ(t)·norm(x) + β(t)`` (scOT's ``ConditionalLayerNorm``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class ConditionalLayerNorm(nn.Module):
    """Layer norm over the last axis whose gain and shift are affine in the time.

    ``x̂ = (x - mean) / sqrt(var + eps)`` with the biased variance (the official
    model writes it ``E[x²] - E[x]²``; :func:`torch.nn.functional.layer_norm`
    computes the same quantity in one fused kernel), then
    ``weight(t) * x̂ + bias(t)`` where ``weight`` and ``bias`` are
    ``nn.Linear(1, dim)``: parameters ``weight.weight (dim, 1)``,
    ``weight.bias (dim,)``, ``bias.weight``, ``bias.bias``.  Statistics are taken
    in float32 for float16/bfloat16 inputs.

    Shapes: ``x (batch, ..., dim)``, ``time (batch,)`` → ``(batch, ..., dim)``.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Linear(1, dim)
        self.bias = nn.Linear(1, dim)

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        if x.dtype in _LOW_PRECISION:
            x = x.float()
        x = F.layer_norm(x, x.shape[-1:], eps=self.eps)
        t = time.reshape(-1, 1).to(x.dtype)
        shape = (t.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        return torch.addcmul(self.bias(t).view(shape), self.weight(t).view(shape), x)


class TimeFreeLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` that accepts (and ignores) ``time``: the ``use_conditioning=False`` norm."""

    def forward(self, x: Tensor, time: Tensor) -> Tensor:  # noqa: ARG002 - same call as above
        return super().forward(x)


def make_norm(conditioned: bool, dim: int, eps: float = 1e-5) -> nn.Module:
    """The norm scOT puts everywhere: time-conditioned or plain, over ``dim`` features."""
    return ConditionalLayerNorm(dim, eps) if conditioned else TimeFreeLayerNorm(dim, eps=eps)


__all__ = ["ConditionalLayerNorm", "TimeFreeLayerNorm", "make_norm"]

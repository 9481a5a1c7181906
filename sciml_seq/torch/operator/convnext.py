"""ConvNeXt block on token grids: scOT's skip-connection refinement."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .norm import make_norm
from .swin import DropPath


class ConvNeXtBlock(nn.Module):
    """``x + weight * pwconv2(gelu(pwconv1(norm(dwconv7x7(x), t))))`` on ``(h, w)`` token grids.

    Parameters (official names): ``weight (dim,)`` layer scale (init 1e-6),
    ``dwconv`` depthwise 7x7 (padding 3), ``norm`` (time-conditioned),
    ``pwconv1 dim→4dim``, ``pwconv2 4dim→dim``.

    Shapes: ``x (batch, h*w, dim)``, ``time (batch,)``, ``resolution = (h, w)``.
    """

    def __init__(
        self,
        dim: int,
        *,
        eps: float = 1e-5,
        conditioned: bool = True,
        drop_path: float = 0.0,
        layer_scale: float = 1e-6,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(layer_scale * torch.ones(dim))
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = make_norm(conditioned, dim, eps)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, time: Tensor, resolution: tuple[int, int]) -> Tensor:
        batch, length, dim = x.shape
        y = x.transpose(1, 2).reshape(batch, dim, *resolution)
        y = self.dwconv(y).permute(0, 2, 3, 1)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y, time))))
        y = (self.weight * y).reshape(batch, length, dim)
        return x + self.drop_path(y)


__all__ = ["ConvNeXtBlock"]

"""ConvNeXt skip block on token grids in JAX (mirrors :mod:`sciml_seq.torch.operator.convnext`)."""

from __future__ import annotations

import equinox as eqx
import jax
from jax import Array

from .layers import Conv2d, Init, Linear
from .norm import make_norm


class ConvNeXtBlock(eqx.Module):
    """``x + weight * pwconv2(gelu(pwconv1(norm(dwconv7x7(x), t))))``.

    Shapes: ``x (h*w, dim)``, scalar ``time``, ``resolution = (h, w)``.
    """

    weight: Array
    dwconv: Conv2d
    norm: eqx.Module
    pwconv1: Linear
    pwconv2: Linear

    def __init__(
        self,
        dim: int,
        *,
        eps: float = 1e-5,
        conditioned: bool = True,
        layer_scale: float = 1e-6,
        init: Init,
    ) -> None:
        self.weight = init.full((dim,), layer_scale)
        self.dwconv = Conv2d(dim, dim, 7, groups=dim, init=init)
        self.norm = make_norm(conditioned, dim, eps, init=init)
        self.pwconv1 = Linear(dim, 4 * dim, init=init)
        self.pwconv2 = Linear(4 * dim, dim, init=init)

    def __call__(self, x: Array, time: Array, resolution: tuple[int, int]) -> Array:
        length, dim = x.shape
        y = self.dwconv(x.T.reshape(dim, *resolution)).transpose(1, 2, 0)
        y = self.pwconv2(jax.nn.gelu(self.pwconv1(self.norm(y, time)), approximate=False))
        return x + (self.weight * y).reshape(length, dim)


__all__ = ["ConvNeXtBlock"]

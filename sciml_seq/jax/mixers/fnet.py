"""FNet Fourier mixing (Lee-Thorp et al. 2021), mirrors :mod:`sciml_seq.torch.mixers.fnet`.

``y = Re(FFT_length(FFT_hidden(x))) * scale`` on one example ``(length, dim)``;
no parameters.  Normalisation, padding (padded tokens are zeroed; the padded
LENGTH still sets the frequencies ``k / N``) and the refused options are as
documented in :mod:`sciml_seq.torch.mixers.fnet`.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ...checks import check_choice
from ...errors import OptionError
from ...mixers import FNET_CAUSAL, FNET_NORMS, check_no_rope
from ...position import check_heads
from .common import check_call, check_no_dropout


class FNetMixer(eqx.Module):
    """Fourier token mixing ``Re(FFT2(x))`` over ``(length, dim)``; no parameters.

    Same arguments as :class:`sciml_seq.torch.mixers.fnet.FNetMixer` plus ``key``
    (unused: nothing is random).  Call: ``__call__(x, positions=None, *,
    causal=False, padding_mask=None, key=None)`` with ``x (length, dim)``,
    ``positions (length,)`` (shape-checked, unused), ``padding_mask (length,)``
    (``True`` = valid); ``causal=True`` raises :class:`OptionError`.  Returns
    ``(length, dim)``.
    """

    dim: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    norm: str = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        dropout: float = 0.0,
        rope: object | None = None,
        bias: bool = True,
        dtype=None,
        norm: str = "ortho",
        key: Array | None = None,
    ) -> None:
        check_heads(dim, heads)
        check_no_dropout("fnet", dropout)
        check_no_rope("fnet", rope)
        self.dim, self.heads = int(dim), int(heads)
        self.norm = check_choice("norm", norm, FNET_NORMS)

    def __call__(
        self,
        x: Array,
        positions: ArrayLike | None = None,
        *,
        causal: bool = False,
        padding_mask: ArrayLike | None = None,
        key: Array | None = None,
    ) -> Array:
        _, padding_mask = check_call(x, self.dim, positions, padding_mask, None)
        if causal:
            raise OptionError(FNET_CAUSAL)
        if padding_mask is not None:
            x = jnp.where(padding_mask[:, None], x, 0.0)
        return jnp.fft.fft2(x, axes=(-2, -1), norm=self.norm).real


__all__ = ["FNetMixer"]

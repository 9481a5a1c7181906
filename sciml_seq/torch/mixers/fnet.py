"""FNet Fourier mixing (Lee-Thorp et al. 2021), mirrors :mod:`sciml_seq.jax.mixers.fnet`.

``y = Re(FFT_length(FFT_hidden(x))) * scale``: a 2-D discrete Fourier transform
over the sequence and the hidden axis, real part kept; no parameters.  The
paper's transform is unnormalised (``norm="backward"``, ``scale = 1``) and sits
in a post-LayerNorm block; this library's blocks are pre-norm residual fields,
where an unnormalised transform returns entries of size ``sqrt(length * dim)``,
so the default is ``norm="ortho"`` (``scale = 1 / sqrt(length * dim)``, the
transform keeps the norm of its input).

Padding, honestly: padded tokens are set to zero before the transform, so
their CONTENT never reaches the output.  Their NUMBER does: the transform runs
over the padded length ``N``, so a valid token ``t`` receives
``sum_{s, j} x_{s j} cos(2 pi (t s / N + c j / dim))``, frequencies ``k / N`` of
the padded length (and with ``norm="ortho"`` the scale ``1 / sqrt(N dim)``).
The same sequence padded to another length, or not padded, gives different
outputs at its valid tokens; a batch of ragged sequences is mixed as if each
were its valid tokens followed by zeros up to the batch's length.  Pad every
example to one fixed length (as the FNet authors did, 512 tokens) when that
matters.  Outputs at padded positions are computed and meaningless (mask them
downstream, as for attention).

FNet mixes every token with every other: ``causal=True`` is refused.  It has no
attention weights and no per-head structure: ``heads`` must divide ``dim``
(so that the mixer can replace attention with the same arguments) and is
otherwise unused; ``dropout`` must be 0 and ``rope`` ``None``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...checks import check_choice
from ...errors import OptionError
from ...mixers import FNET_CAUSAL, FNET_NORMS, check_no_rope
from ...position import check_heads
from .common import check_call, check_no_dropout


class FNetMixer(nn.Module):
    """Fourier token mixing ``Re(FFT2(x))`` over ``(length, dim)``; no parameters.

    Parameters
    ----------
    dim, heads: model width and a divisor of it (unused beyond the check).
    dropout: must be ``0.0`` (nothing to drop).
    rope: must be ``None`` (a Fourier transform of the features would scramble
        rotated pairs; FNet encodes order through the sequence transform).
    bias, dtype: accepted for the common mixer signature; there are no parameters.
    norm: ``"ortho"`` (default) or ``"backward"`` (the paper's, unnormalised).

    Call: ``forward(x, positions=None, *, causal=False, padding_mask=None,
    rope_angles=None)`` with ``x (batch, length, dim)``; ``positions (batch,
    length)`` are shape-checked and unused; ``padding_mask (batch, length)``,
    ``True`` = valid: padded tokens are zeroed before the transform (see the
    module docstring for what the padded length still changes).
    ``causal=True`` and ``rope_angles`` raise :class:`OptionError`.
    Returns ``(batch, length, dim)`` in the dtype of ``x``.
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
        norm: str = "ortho",
    ) -> None:
        super().__init__()
        check_heads(dim, heads)
        check_no_dropout("fnet", dropout)
        check_no_rope("fnet", rope)
        self.dim, self.heads = int(dim), int(heads)
        self.norm = check_choice("norm", norm, FNET_NORMS)

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
        if causal:
            raise OptionError(FNET_CAUSAL)
        if rope_angles is not None:
            raise OptionError("rope_angles: expected None for mixer='fnet' (no rotary encoding)")
        if padding_mask is not None:
            x = x.masked_fill(~padding_mask[..., None], 0.0)
        return torch.fft.fft2(x, dim=(-2, -1), norm=self.norm).real

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}, norm={self.norm!r}"


__all__ = ["FNetMixer"]

"""Transformer baseline on :class:`sciml_seq.torch.MultiheadAttention` with rotary positions.

Pre-norm encoder blocks (``h += attn(LN(h)); h += MLP(LN(h))``), rotary position
encoding (RoPE, no parameters) at the integer positions ``0 .. L-1`` in every
attention, a final LayerNorm, pooling and a linear decoder::

    h = encoder(x)                                  # Linear(d_input, d_model)
    for block in blocks:                            # n_layers times
        h = h + attn(LN(h), positions, causal)      # MultiheadAttention(d_model, heads, rope)
        h = h + W2 GELU(W1 LN(h))                   # d_model -> d_ff -> d_model
    out = decoder(pool(LN(h)))
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ...checks import check_int
from ...errors import OptionError
from ...mixers import MIXER_FACTS
from ...models import check_backbone_options
from ..attention import MultiheadAttention
from ..mixers import make_mixer
from ..position import RotaryEncoding
from .common import check_sequence, pool, positions_like

__all__ = ["TransformerBlock", "TransformerSequenceModel"]


class TransformerBlock(nn.Module):
    """One pre-norm encoder block: attention (or another token mixer) and MLP, each with a
    residual."""

    def __init__(
        self,
        d_model: int,
        heads: int,
        d_ff: int,
        dropout: float,
        mixer: str = "softmax",
        mixer_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        if mixer == "softmax":
            self.attn = MultiheadAttention(
                d_model, heads, dropout=dropout, rope=RotaryEncoding(d_model // heads)
            )
        else:  # the registry checks the name and options; RoPE where the mixer takes it
            rope = (
                RotaryEncoding(d_model // heads)
                if MIXER_FACTS.get(mixer) and MIXER_FACTS[mixer].rope
                else None
            )
            self.attn = make_mixer(mixer, d_model, heads, rope=rope, **dict(mixer_options or {}))
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, d_ff),
            nn.GELU(),
            nn.Linear(d_ff, d_model),
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, h: Tensor, positions: Tensor, causal: bool) -> Tensor:
        h = h + self.dropout(self.attn(self.norm1(h), positions, causal=causal))
        return h + self.dropout(self.mlp(self.norm2(h)))


class TransformerSequenceModel(nn.Module):
    """Transformer encoder classifier / regressor / sequence-to-sequence model.

    Parameters
    ----------
    d_input, d_output: input channels; outputs per prediction.
    d_model: width; ``heads`` must divide it with an even head size (RoPE).
    n_layers: encoder blocks.
    heads: attention heads.
    ff_mult: MLP hidden width as a multiple of ``d_model``.
    d_ff: MLP hidden width (overrides ``ff_mult``; :func:`~.sizing.build_sized` uses
        it to match a parameter count finely).
    causal: causal attention (each step sees the past only, as the SSM and RNN
        models); default False (bidirectional).
    pool: ``"mean"`` (default), ``"last"`` -> ``(batch, d_output)``; ``"none"`` ->
        ``(batch, length, d_output)``.
    dropout: on attention weights and block outputs.
    mixer, mixer_options: the token mixer of every block (:data:`sciml_seq.mixers.MIXERS`)
        and its options; ``"softmax"`` (default) is :class:`MultiheadAttention` with
        RoPE and attention dropout.  Others are built by
        :func:`sciml_seq.torch.mixers.make_mixer`, with RoPE where the mixer takes it
        (performer, sliding_window, lsh) and without any positional encoding otherwise
        (fnet and gmlp mix by token index; aaren sees order only when causal).

    Shapes: ``forward(x (batch, length, d_input))`` -> ``(batch, d_output)`` or
    ``(batch, length, d_output)``.
    """

    def __init__(
        self,
        d_input: int,
        d_output: int,
        *,
        d_model: int = 64,
        n_layers: int = 2,
        heads: int = 4,
        ff_mult: int = 2,
        d_ff: int | None = None,
        causal: bool = False,
        pool: str = "mean",
        dropout: float = 0.0,
        mixer: str = "softmax",
        mixer_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        opts = check_backbone_options(d_input, d_output, d_model, n_layers, pool, dropout)
        self.d_input, self.d_output, self.pool = opts.d_input, opts.d_output, opts.pool
        d_model, dropout = opts.d_model, opts.dropout
        heads = check_int("heads", heads)
        if d_model % heads or (d_model // heads) % 2:
            raise OptionError(
                f"heads: expected a divisor of d_model={d_model} that leaves an even head size "
                f"(rotary positions rotate pairs); got {heads}"
            )
        d_ff = check_int("ff_mult", ff_mult) * d_model if d_ff is None else d_ff
        d_ff = check_int("d_ff", d_ff)
        self.causal = bool(causal)
        self.encoder = nn.Linear(self.d_input, d_model)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, heads, d_ff, dropout, mixer, mixer_options)
            for _ in range(opts.n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.decoder = nn.Linear(d_model, self.d_output)

    def forward(self, x: Tensor) -> Tensor:
        """``x (batch, length, d_input)`` -> outputs (see the class docstring)."""
        h = self.encoder(check_sequence(x, self.d_input))
        positions = positions_like(h)
        for block in self.blocks:
            h = block(h, positions, self.causal)
        return self.decoder(pool(self.norm(h), self.pool))

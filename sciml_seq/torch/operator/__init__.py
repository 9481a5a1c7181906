"""Operator transformers in PyTorch: scOT (Poseidon), mirrored by :mod:`sciml_seq.jax.operator`."""

from ...operator.config import ScOTConfig
from .convnext import ConvNeXtBlock
from .loss import scot_loss
from .norm import ConditionalLayerNorm
from .resample import fft_resample
from .scot import ScOT, ScOTOutput
from .swin import PatchMerging, PatchUnmerging, SwinBlock, WindowSelfAttention

__all__ = [
    "ConditionalLayerNorm",
    "ConvNeXtBlock",
    "PatchMerging",
    "PatchUnmerging",
    "ScOT",
    "ScOTConfig",
    "ScOTOutput",
    "SwinBlock",
    "WindowSelfAttention",
    "fft_resample",
    "scot_loss",
]

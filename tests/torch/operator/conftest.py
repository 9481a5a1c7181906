"""Shared pieces of the PyTorch scOT tests."""

from __future__ import annotations

import pytest
import torch

from sciml_seq.operator import ScOTConfig
from sciml_seq.torch.operator import ScOT


def micro_config(**overrides) -> ScOTConfig:
    """A two-stage scOT small enough for fast tests.

    On a 16 x 32 input its stage grids are (8, 16) and (4, 8): stage 0 shifts both
    axes, stage 1 only the width (its height fits one window).
    """
    values = dict(
        image_size=16,
        patch_size=2,
        num_channels=3,
        num_out_channels=2,
        embed_dim=6,
        depths=(2, 2),
        num_heads=(1, 2),
        skip_connections=(1, 0),
        window_size=4,
        channel_slice_list_normalized_loss=(0, 1, 2),
        pretrained_window_sizes=(0, 0),
    )
    values.update(overrides)
    return ScOTConfig(**values)


NORM_GAINS = ("norm.weight.bias", "layernorm_before.weight.bias", "layernorm_after.weight.bias")


def perturb_(model: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Move every parameter off the official init (as the fixtures do) so that all matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            if name.endswith(NORM_GAINS):
                p.add_(1.0)
    return model


def micro_model(dtype=torch.float64, seed: int = 0, **overrides) -> ScOT:
    torch.manual_seed(seed)
    return perturb_(ScOT(micro_config(**overrides)).to(dtype), seed).eval()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine they lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def micro() -> ScOT:
    return micro_model()


def micro_inputs(batch: int = 2, height: int = 16, width: int = 32, channels: int = 3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, height, width, generator=gen, dtype=torch.float64)
    t = torch.rand(batch, generator=gen, dtype=torch.float64)
    return x, t

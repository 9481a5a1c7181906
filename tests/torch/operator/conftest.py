"""Shared pieces of the PyTorch scOT tests."""

from __future__ import annotations

import pytest
import torch

from sciml_seq.torch.operator import ScOT
from tests.operator.reference import micro_config

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
def one_thread(one_torch_thread):
    """Every test of this folder runs torch on one thread (``one_torch_thread``)."""


@pytest.fixture
def micro() -> ScOT:
    return micro_model()


def micro_inputs(batch: int = 2, height: int = 16, width: int = 32, channels: int = 3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, height, width, generator=gen, dtype=torch.float64)
    t = torch.rand(batch, generator=gen, dtype=torch.float64)
    return x, t

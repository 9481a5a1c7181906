"""scOT on CUDA: no host synchronisation in forward/backward, fused attention, official numbers.

Skipped without a GPU (the design targets are in benchmarks/scot.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.operator import ScOTConfig
from sciml_seq.torch.operator import ScOT
from tests.operator.reference import FLOAT64_ATOL, fixture_dirs, load_io

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_forward_backward_never_synchronise_and_attention_is_fused():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = ScOT(ScOTConfig.preset("T")).cuda()
    x = torch.randn(2, 4, 128, 128, device="cuda")
    t = torch.rand(2, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with (
            sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]),
            torch.autocast("cuda", dtype=torch.bfloat16),
        ):
            y = model(x, t)
            loss = y.float().square().mean()
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert y.shape == (2, 4, 128, 128)
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("folder", fixture_dirs())
def test_official_output_on_cuda_float64(folder):
    io = load_io(folder)
    model = ScOT.from_pretrained(folder, dtype=torch.float64, device="cuda").eval()
    with torch.no_grad():
        out = model(
            torch.from_numpy(io["pixel_values"]).cuda(), torch.from_numpy(io["time"]).cuda()
        )
    np.testing.assert_allclose(out.cpu().numpy(), io["output"], rtol=0, atol=FLOAT64_ATOL)

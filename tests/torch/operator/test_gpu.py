"""scOT on CUDA: no host synchronisation in forward/backward, fused attention, official
numbers; the FNO baseline trains under bf16 autocast (as benchmarks/operator_training.py
runs it).

Skipped without a GPU (the design targets are in benchmarks/scot.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.operator import ScOTConfig
from sciml_seq.torch.operator import ScOT
from tests.operator.reference import FLOAT64_ATOL, fixture_dirs, load_io

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_forward_backward_never_synchronise_and_attention_is_fused():
    """The window attention (additive bias + shift mask: FlashAttention takes no mask) runs
    on the memory-efficient kernel: inside sdpa_kernel([EFFICIENT]) PyTorch raises instead
    of falling back.  set_sync_debug_mode("error") raises on any synchronising call; the
    first step (cuBLAS / cuDNN set-up) runs before it, the second is checked."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = ScOT(ScOTConfig.preset("T")).cuda()
    x = torch.randn(2, 4, 128, 128, device="cuda")
    t = torch.rand(2, device="cuda")

    def step():
        model.zero_grad(set_to_none=True)
        with (
            sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]),
            torch.autocast("cuda", dtype=torch.bfloat16),
        ):
            y = model(x, t)
            loss = y.float().square().mean()
        loss.backward()
        return y

    step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        y = step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert y.shape == (2, 4, 128, 128)
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_fno_trains_under_autocast_on_cuda(precision):
    """CUDA autocast has no float32 policy for torch.fft (the CPU's has), so a
    half-precision activation reaching neuralop's SpectralConv meets an FFT that takes no
    bfloat16 (and float16 only at power-of-two sizes).  Forward and backward under
    autocast, as the Trainer runs them for benchmarks/operator_training.py (default
    --precision bf16); the output must match float32 to autocast rounding."""
    pytest.importorskip("neuralop")
    from sciml_seq.torch.operator.fno import TimeFNO
    from sciml_seq.train.predict import AUTOCAST_DTYPES

    torch.manual_seed(0)
    model = TimeFNO(1, 1, (8, 8), hidden_channels=16, n_layers=2).cuda()
    x = torch.randn(2, 1, 48, 48, device="cuda")  # 48: not a power of two
    t = torch.rand(2, device="cuda")
    with torch.autocast("cuda", dtype=AUTOCAST_DTYPES[precision]):
        y = model(x, t)
    y.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with torch.no_grad():
        want = model(x, t)
    assert float((y.float() - want).abs().max()) <= 5e-2 * float(want.abs().max())


@pytest.mark.parametrize("folder", fixture_dirs())
def test_official_output_on_cuda_float64(folder):
    io = load_io(folder)
    model = ScOT.from_pretrained(folder, dtype=torch.float64, device="cuda").eval()
    with torch.no_grad():
        out = model(
            torch.from_numpy(io["pixel_values"]).cuda(), torch.from_numpy(io["time"]).cuda()
        )
    np.testing.assert_allclose(out.cpu().numpy(), io["output"], rtol=0, atol=FLOAT64_ATOL)

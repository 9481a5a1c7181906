"""CUDA runs give the CPU's numbers and statistics; attention takes the fused kernels it
is meant to (FlashAttention without a mask under bf16 autocast, the memory-efficient
kernel with a padding mask) without host synchronisation (skipped without a GPU)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from sciml_seq.torch import ODEBlock, TimeMLP, solve
from sciml_seq.torch.attention import MultiheadAttention
from sciml_seq.torch.position import RotaryEncoding

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
NO_TORCHODE = pytest.mark.skipif(
    importlib.util.find_spec("torchode") is None, reason="torchode is not installed"
)


@pytest.mark.parametrize(
    ("options", "atol"),
    [
        (dict(method="rk4", n_steps=6), 1e-12),
        (dict(method="dopri5", rtol=1e-9, atol=1e-11), 1e-7),
        (dict(method="tsit5", rtol=1e-9, atol=1e-11, adjoint="checkpoint"), 1e-7),
        (dict(method="dopri5", rtol=1e-9, atol=1e-11, adjoint="backsolve"), 1e-7),
        (dict(method="dopri5", rtol=1e-9, atol=1e-11, engine="torchdiffeq"), 1e-7),
        (
            dict(method="dopri5", rtol=1e-9, atol=1e-11, adjoint="backsolve", engine="torchdiffeq"),
            1e-7,
        ),
        pytest.param(
            dict(method="tsit5", rtol=1e-9, atol=1e-11, engine="torchode"), 1e-7, marks=NO_TORCHODE
        ),
    ],
)
def test_cuda_matches_cpu_with_gradients(options, atol):
    torch.manual_seed(0)
    field = TimeMLP(8, 32, time_conditioning="concat+film", dtype=torch.float64)
    h0 = torch.randn(16, 8, dtype=torch.float64)
    results = []
    for device in ("cpu", "cuda"):
        block = ODEBlock(field.to(device), **options)
        x = h0.to(device).detach().requires_grad_()
        out = block(x)
        out.pow(2).sum().backward()
        results.append((out.cpu(), x.grad.cpu(), block.last_stats))
        field.zero_grad()
    (out_cpu, grad_cpu, stats_cpu), (out_gpu, grad_gpu, stats_gpu) = results
    torch.testing.assert_close(out_gpu, out_cpu, rtol=0, atol=atol)
    torch.testing.assert_close(grad_gpu, grad_cpu, rtol=0, atol=10 * atol)
    counts = ("nfe_forward", "n_steps", "n_accepted", "n_rejected")
    if options["method"] == "rk4":
        assert [stats_gpu.mean(c) for c in counts] == [stats_cpu.mean(c) for c in counts]


def test_cuda_solution_stays_on_device():
    y0 = torch.randn(4, 3, device="cuda")
    ts = torch.linspace(0, 1, 5, device="cuda")
    sol = solve(lambda t, y: -y, y0, ts, method="dopri5")
    assert sol.ys.device.type == "cuda"
    torch.testing.assert_close(
        sol.ys[:, -1], y0 * torch.exp(torch.tensor(-1.0)), rtol=1e-5, atol=1e-6
    )


def _attention_inputs(padded: bool):
    torch.manual_seed(0)
    attn = MultiheadAttention(64, 4, rope=RotaryEncoding(16)).cuda()
    x = torch.randn(3, 40, 64, device="cuda", requires_grad=True)
    positions = torch.cumsum(torch.rand(3, 40, device="cuda"), dim=1)
    mask = None
    if padded:
        mask = torch.ones(3, 40, dtype=torch.bool, device="cuda")
        mask[1, 25:] = False
        mask[2, :] = False  # a row without any key: zero attention output
    return attn, x, positions, mask


def _close_in_bf16(got, want):
    """Within bfloat16 rounding of two different kernels: 3 % of the largest magnitude."""
    assert float((got - want).abs().max()) <= 3e-2 * float(want.abs().max())


def _attend(attn, x, positions, mask, backend, *, causal=False, rope_angles=None):
    """Output and input gradient under bf16 autocast with ``sdpa_kernel(backend)``."""
    x = x.detach().requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel([backend]):
        y = attn(x, positions, causal=causal, padding_mask=mask, rope_angles=rope_angles)
    (grad,) = torch.autograd.grad(y.float().square().sum(), x)
    return y.float(), grad


@pytest.mark.parametrize("causal", [False, True])
def test_attention_runs_flash_without_a_mask_and_matches_math(causal):
    """Inside sdpa_kernel([FLASH]) PyTorch raises rather than fall back, so running at all
    shows FlashAttention was taken: the RoPE-rotated float32 q, k and the bf16 v all reach
    it in bf16 through autocast."""
    attn, x, positions, _ = _attention_inputs(padded=False)
    flash = _attend(attn, x, positions, None, SDPBackend.FLASH_ATTENTION, causal=causal)
    math = _attend(attn, x, positions, None, SDPBackend.MATH, causal=causal)
    for a, b in zip(flash, math, strict=True):
        _close_in_bf16(a, b)


def test_padding_mask_takes_the_efficient_kernel_not_flash():
    attn, x, positions, mask = _attention_inputs(padded=True)
    with pytest.raises(RuntimeError):  # FlashAttention takes no attn_mask
        _attend(attn, x, positions, mask, SDPBackend.FLASH_ATTENTION)
    efficient = _attend(attn, x, positions, mask, SDPBackend.EFFICIENT_ATTENTION)
    math = _attend(attn, x, positions, mask, SDPBackend.MATH)
    for a, b in zip(efficient, math, strict=True):
        _close_in_bf16(a, b)
    # the fully padded row gets the out projection's bias only
    torch.testing.assert_close(
        efficient[0][2], attn.out.bias.float().expand(40, 64), rtol=1e-2, atol=1e-2
    )


@pytest.mark.parametrize("padded", [False, True])
def test_attention_never_synchronises(padded):
    """With the RoPE angles computed beforehand, as the ODE encoder does once per solve
    (RotaryEncoding.angles itself checks the positions for NaN on the host and copies
    its frequencies from numpy: two synchronisations per call)."""
    attn, x, positions, mask = _attention_inputs(padded)
    angles = attn.rope.angles(positions, x.dtype)
    backend = SDPBackend.EFFICIENT_ATTENTION if padded else SDPBackend.FLASH_ATTENTION
    _attend(attn, x, None, mask, backend, rope_angles=angles)  # warm-up: cuBLAS handles
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        y, grad = _attend(attn, x, None, mask, backend, rope_angles=angles)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert y.shape == x.shape and grad.shape == x.shape

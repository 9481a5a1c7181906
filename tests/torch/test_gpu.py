"""CUDA runs give the CPU's numbers and statistics (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from sciml_seq.torch import ODEBlock, TimeMLP, solve

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize(
    ("options", "atol"),
    [
        (dict(method="rk4", n_steps=6), 1e-12),
        (dict(method="dopri5", rtol=1e-9, atol=1e-11), 1e-7),
        (dict(method="dopri5", rtol=1e-9, atol=1e-11, adjoint="backsolve"), 1e-7),
        (dict(method="tsit5", rtol=1e-9, atol=1e-11, backend="torchode"), 1e-7),
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
    if options["method"] == "rk4":
        assert stats_gpu.as_dict() == stats_cpu.as_dict()


def test_cuda_solution_stays_on_device():
    y0 = torch.randn(4, 3, device="cuda")
    ts = torch.linspace(0, 1, 5, device="cuda")
    sol = solve(lambda t, y: -y, y0, ts, method="dopri5")
    assert sol.ys.device.type == "cuda"
    torch.testing.assert_close(
        sol.ys[:, -1], y0 * torch.exp(torch.tensor(-1.0)), rtol=1e-5, atol=1e-6
    )

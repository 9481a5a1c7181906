"""Host engines with GPU inputs: results and gradients come back on the GPU, equal to
the CPU's, for the TimeMLP (numpy fast path) and for a field torch evaluates on the GPU
at every callback (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.gpu


class _Wrapped(torch.nn.Module):
    """A TimeMLP behind another module: evaluated by torch on its device at every callback."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, t, y):
        return self.inner(t, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("callback", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_cuda_tensors_round_trip_through_the_scipy_engine(dtype, callback) -> None:
    from sciml_seq.torch import ODEBlock, TimeMLP

    torch.manual_seed(0)
    field = TimeMLP(3, 8, time_conditioning="concat+film", dtype=dtype)
    if callback:
        field = _Wrapped(field)
    h0 = torch.randn(4, 3, dtype=dtype)
    results = []
    for device in ("cpu", "cuda"):
        block = ODEBlock(field.to(device), engine="scipy", method="DOP853", rtol=1e-9, atol=1e-11)
        x = h0.to(device).detach().requires_grad_()
        out = block(x)
        assert out.device.type == device and out.dtype == dtype
        out.pow(2).sum().backward()
        assert x.grad.device.type == device
        assert all(q.grad.device.type == device for q in field.parameters())
        results.append((out.cpu(), x.grad.cpu(), [q.grad.cpu() for q in field.parameters()]))
        field.zero_grad()
    (out_cpu, grad_cpu, p_cpu), (out_gpu, grad_gpu, p_gpu) = results
    if not callback:  # the same numpy computation on the host
        tol = dict(rtol=0, atol=0)
    else:  # torch evaluates on each device: rounding differs (float32: by its rounding)
        tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(out_gpu, out_cpu, **tol)
    torch.testing.assert_close(grad_gpu, grad_cpu, **tol)
    for a, b in zip(p_gpu, p_cpu, strict=True):
        torch.testing.assert_close(a, b, **tol)


@pytest.fixture
def jax_gpu_x64():
    """``(jax, the first GPU)`` with float64 enabled for the test only (the setting is global)."""
    jax = pytest.importorskip("jax")
    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError:
        pytest.skip("needs a JAX GPU device")
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield jax, gpu
    jax.config.update("jax_enable_x64", previous)


def test_jax_gpu_arrays_through_the_scipy_backend(jax_gpu_x64) -> None:
    jax, gpu = jax_gpu_x64
    from sciml_seq.jax import TimeMLP, solve

    field = TimeMLP(3, 8, key=jax.random.key(0))
    ts = jax.numpy.array([0.0, 0.5, 1.0])
    y0 = jax.numpy.array([0.3, -0.2, 0.1])

    def loss(model, y):
        sol = solve(model, y, ts, engine="scipy", method="DOP853", rtol=1e-9, atol=1e-11)
        return jax.numpy.sum(sol.ys**2)

    values = []
    for device in (jax.devices("cpu")[0], gpu):
        model, y = jax.device_put((field, y0), device)
        value, grad = jax.jit(jax.value_and_grad(loss, argnums=1))(model, y)
        assert grad.devices() == {device}
        values.append((np.asarray(value), np.asarray(grad)))
    np.testing.assert_allclose(values[1][0], values[0][0], rtol=1e-12)
    np.testing.assert_allclose(values[1][1], values[0][1], rtol=1e-10)

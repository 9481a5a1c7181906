"""Triton kernels against their materialising references (float64 and float32),
gradients included, at small sizes (the CPU interpreter where there is no GPU);
the S4D / S4 layers with backend="triton" against backend="naive"; errors."""

from __future__ import annotations

import os

import pytest
import torch

from sciml_seq import kernels
from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.torch.ssm import S4, S4D

#: On CUDA where there is one (``pytest -m gpu``), else in the Triton interpreter.
pytestmark = pytest.mark.gpu
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
#: (rtol, atol) per complex dtype, relative to the output scale.
TOL = {torch.complex128: (1e-12, 1e-12), torch.complex64: (2e-5, 2e-5)}


def _rand(*shape, dtype, seed, scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    re = torch.randn(*shape, generator=g, dtype=torch.float64) * scale + shift
    im = torch.randn(*shape, generator=g, dtype=torch.float64)
    return torch.complex(re, im).to(device=DEVICE, dtype=dtype)


def _log_x(*shape, dtype, seed):
    """Stable diagonal: Re < 0, phases up to a few radians per step."""
    x = _rand(*shape, dtype=torch.complex128, seed=seed)
    x = torch.complex(-x.real.abs() * 0.05, x.imag * 3)
    return x.to(dtype)


def _close(a, b, dtype):
    rtol, atol = TOL[dtype]
    scale = max(1.0, float(b.detach().abs().max()))
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol * scale)


def _check_grads(fn, ref, inputs, dtype, seed=5):
    inputs = [x.detach().requires_grad_() for x in inputs]
    out, want = fn(*inputs), ref(*inputs)
    _close(out, want, dtype)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    g = g.to(DEVICE)
    got = torch.autograd.grad(out, inputs, g)
    exp = torch.autograd.grad(want, inputs, g)
    for a, b in zip(got, exp, strict=True):
        _close(a, b, dtype)


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
def test_vandermonde_matches_reference_with_gradients(dtype):
    # v broadcasts over a channel and a batch dimension of x's (H, N); N and L
    # are not multiples of the block sizes.
    v = _rand(2, 3, 5, dtype=dtype, seed=0)
    x = _log_x(3, 5, dtype=dtype, seed=1)
    _check_grads(
        lambda v, x: kernels.vandermonde_triton(v, x, 150),
        lambda v, x: kernels.vandermonde_ref(v, x, 150),
        [v, x],
        dtype,
    )


def test_vandermonde_general_broadcast():
    v = _rand(3, 4, dtype=torch.complex128, seed=2)  # x has a batch dim v lacks
    x = _log_x(2, 1, 4, dtype=torch.complex128, seed=3)
    _check_grads(
        lambda v, x: kernels.vandermonde_triton(v, x, 33),
        lambda v, x: kernels.vandermonde_ref(v, x, 33),
        [v, x],
        torch.complex128,
    )


def test_vandermonde_long_phases_in_float32():
    """Angles l·Im x up to ~1e4 rad: the in-kernel range reduction keeps float32 accuracy."""
    v = _rand(1, 8, dtype=torch.complex64, seed=4)
    x = torch.complex(torch.full((1, 8), -1e-4), torch.linspace(0.1, 3.1, 8).reshape(1, 8))
    x = x.to(DEVICE)
    ref = kernels.vandermonde_ref(v.to(torch.complex128), x.to(torch.complex128), 4096)
    err = float((kernels.vandermonde_triton(v, x, 4096).double() - ref).abs().max())
    # the float32 reference has the same angle rounding (l·Im x up to 1.3e4): ~1.6e-4 relative
    err_ref32 = float((kernels.vandermonde_ref(v, x, 4096).double() - ref).abs().max())
    assert err <= 2 * err_ref32 + 1e-6 * float(ref.abs().max())


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
def test_cauchy_matches_reference_with_gradients(dtype):
    v = _rand(2, 3, 6, dtype=dtype, seed=6)
    w = _rand(3, 6, dtype=dtype, seed=7, scale=0.2, shift=-0.5)
    n = 150  # nodes include ω = 1 and ω = -1
    k = torch.arange(n // 2 + 1, dtype=torch.float64)
    omega = torch.polar(torch.ones_like(k), -2 * torch.pi * k / n).to(DEVICE, dtype)
    _check_grads(
        lambda v, w: kernels.bilinear_cauchy_triton(v, w, omega),
        lambda v, w: kernels.bilinear_cauchy_ref(v, w, omega),
        [v, w],
        dtype,
    )


@pytest.mark.parametrize("cls", [S4D, S4])
def test_layers_with_triton_backend_match_naive(cls):
    torch.manual_seed(0)
    kw = {"d_state": 8, "channels": 2, "l_max": 16, "dtype": torch.float64}
    naive = cls(3, backend="naive", **kw).to(DEVICE)
    fused = cls(3, backend="triton", **kw).to(DEVICE)
    fused.load_state_dict(naive.state_dict())
    u = torch.randn(2, 16, 3, dtype=torch.float64, device=DEVICE)
    s0 = naive.default_state(2) + 0.1
    outs = []
    for layer in (naive, fused):
        y, state = layer(u, state=s0)
        grads = torch.autograd.grad(y.square().sum(), list(layer.parameters()))
        outs.append((y, state, grads))
    for a, b in zip(outs[0][:2], outs[1][:2], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-11, atol=1e-12)
    for a, b in zip(outs[0][2], outs[1][2], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-11)


def test_error_without_triton(monkeypatch):
    monkeypatch.setattr(kernels.common, "triton_available", lambda: False)
    v = _rand(3, 4, dtype=torch.complex64, seed=0)
    with pytest.raises(OptionError, match="backend: 'triton' needs the triton package"):
        kernels.vandermonde_triton(v, v, 8)


@pytest.mark.skipif(DEVICE == "cuda", reason="checks the CPU refusal")
def test_error_on_cpu_tensors_without_the_interpreter(monkeypatch):
    monkeypatch.setitem(os.environ, "TRITON_INTERPRET", "0")
    v = _rand(3, 4, dtype=torch.complex64, seed=0)
    with pytest.raises(OptionError, match="TRITON_INTERPRET=1"):
        kernels.bilinear_cauchy_triton(v, v, v[0])


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
def test_error_on_real_mixed_or_half_inputs():
    v = _rand(3, 4, dtype=torch.complex64, seed=0)
    with pytest.raises(DTypeError, match=r"^v: expected a complex tensor \(complex64 or complex1"):
        kernels.vandermonde_triton(v.real, v, 8)
    with pytest.raises(DTypeError, match=r"^x: expected the dtype of v \(torch.complex64\)"):
        kernels.vandermonde_triton(v, v.to(torch.complex128), 8)
    with pytest.raises(DTypeError, match=r"^w: expected a complex tensor .*got torch.complex32"):
        kernels.bilinear_cauchy_triton(v, v.to(torch.complex32), v[0])
    with pytest.raises(ShapeError, match=r"^w: expected the last dimension of v \(4\)"):
        kernels.bilinear_cauchy_triton(v, v[:, :3], v[0])


@pytest.mark.skipif(DEVICE == "cuda", reason="the interpreter accepts tensors on any device")
def test_error_on_inputs_on_two_devices():
    v = _rand(3, 4, dtype=torch.complex64, seed=0)
    with pytest.raises(OptionError, match=r"^x: expected a tensor on the device of v \(cpu\)"):
        kernels.vandermonde_triton(v, v.to("meta"), 8)


def test_conjugate_views_are_read_conjugated():
    """``x.conj()`` is a lazy view: the kernels must read the conjugated numbers."""
    v = _rand(2, 5, dtype=torch.complex128, seed=8)
    x = _log_x(2, 5, dtype=torch.complex128, seed=9).conj()
    w = _rand(2, 5, dtype=torch.complex128, seed=10, scale=0.2, shift=-0.5)
    angle = torch.linspace(0, 3, 7, dtype=torch.float64)
    omega = torch.polar(torch.ones_like(angle), angle).to(DEVICE).conj()
    assert x.is_conj() and omega.is_conj()
    _close(
        kernels.vandermonde_triton(v.conj(), x, 20),
        kernels.vandermonde_ref(v.conj().resolve_conj(), x.resolve_conj(), 20),
        torch.complex128,
    )
    _close(
        kernels.bilinear_cauchy_triton(v, w.conj(), omega),
        kernels.bilinear_cauchy_ref(v, w.conj().resolve_conj(), omega.resolve_conj()),
        torch.complex128,
    )


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_kernels_run_on_a_gpu_other_than_the_current_one():
    v = _rand(2, 3, 5, dtype=torch.complex64, seed=0).to("cuda:1")
    x = _log_x(3, 5, dtype=torch.complex64, seed=1).to("cuda:1")
    assert torch.cuda.current_device() == 0
    out = kernels.vandermonde_triton(v, x, 40)
    assert out.device == v.device
    _close(out, kernels.vandermonde_ref(v, x, 40), torch.complex64)

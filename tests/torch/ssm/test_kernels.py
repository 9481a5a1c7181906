"""sciml_seq.torch.ssm.kernels against direct numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sciml_seq.errors import OptionError
from sciml_seq.torch.ssm import kernels

GEN = np.random.default_rng(0)


def crandn(*shape):
    return GEN.standard_normal(shape) + 1j * GEN.standard_normal(shape)


def test_vandermonde_and_transpose():
    v, x = crandn(3, 5), -np.abs(crandn(3, 5)) * 0.1 + 0.3j * crandn(3, 5).real
    L = 7
    ref = 2 * np.einsum("hn,hnl->hl", v, np.exp(x[..., None] * np.arange(L))).real
    out = kernels.vandermonde(torch.as_tensor(v), torch.as_tensor(x), L)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-13)
    u = GEN.standard_normal((2, 3, L))
    ref_t = np.einsum("bhl,hn,hnl->bhn", u, v, np.exp(x[..., None] * np.arange(L)))
    out_t = kernels.vandermonde_transpose(
        torch.as_tensor(u), torch.as_tensor(v), torch.as_tensor(x)
    )
    np.testing.assert_allclose(out_t.numpy(), ref_t, rtol=1e-12, atol=1e-13)


def test_causal_conv_is_an_exact_linear_convolution():
    u, k = GEN.standard_normal((2, 3, 9)), GEN.standard_normal((2, 3, 6))
    ref = np.zeros((2, 2, 3, 9))
    for t in range(9):
        for j in range(min(t + 1, 6)):
            ref[..., t] += k[None, ..., j] * u[:, None, :, t - j]
    out = kernels.causal_conv(torch.as_tensor(u), torch.as_tensor(k))
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)


def test_power_and_scan_sum():
    A = torch.as_tensor(crandn(2, 4, 4) * 0.4)
    v = torch.as_tensor(crandn(3, 2, 4, 11))
    AL, acc = kernels.power(11, A, v)
    np.testing.assert_allclose(AL.numpy(), np.linalg.matrix_power(A.numpy(), 11), atol=1e-12)
    ref = sum(
        np.einsum("hij,bhj->bhi", np.linalg.matrix_power(A.numpy(), i), v[..., i].numpy())
        for i in range(11)
    )
    np.testing.assert_allclose(acc.numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(kernels.power(0, A).numpy(), np.broadcast_to(np.eye(4), (2, 4, 4)))


def test_krylov():
    A, b = torch.as_tensor(crandn(2, 3, 3) * 0.5), torch.as_tensor(crandn(2, 3))
    out = kernels.krylov(6, A, b)
    ref = np.stack(
        [
            np.einsum("hij,hj->hi", np.linalg.matrix_power(A.numpy(), i), b.numpy())
            for i in range(6)
        ],
        -1,
    )
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)


# ---------------------------------------------------------------- lean backends
def _stable_log(*shape):
    x = crandn(*shape)
    return torch.as_tensor(-np.abs(x.real) * 0.05 + 2j * x.imag)


class _LargestOutput(TorchDispatchMode):
    """Record the largest tensor any op produces (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.numel())
        return out


@pytest.mark.parametrize("L", [1, 2, 7, 16, 50])
def test_vandermonde_lean_equals_reference(L):
    v, x = torch.as_tensor(crandn(2, 3, 5)), _stable_log(3, 5)
    ref = kernels.vandermonde(v, x, L, backend="naive")
    torch.testing.assert_close(kernels.vandermonde(v, x, L), ref, rtol=1e-12, atol=1e-12)
    u = torch.as_tensor(GEN.standard_normal((2, 3, L)))
    torch.testing.assert_close(
        kernels.vandermonde_transpose(u, v[0], x),
        kernels.vandermonde_transpose(u, v[0], x, backend="naive"),
        rtol=1e-12,
        atol=1e-12,
    )


def test_lean_gradients():
    v, x = torch.as_tensor(crandn(2, 2, 3)), _stable_log(2, 3)
    w = torch.as_tensor(crandn(2, 3) * 0.2 - 0.5)
    omega = kernels.roots_of_unity(10, torch.complex128)
    u = torch.as_tensor(GEN.standard_normal((2, 9)))
    for fn, second in (
        (lambda v, x: kernels.vandermonde(v, x, 11), x),
        (lambda v, x: kernels.vandermonde_transpose(u, v[0], x), x),
        (lambda v, w: kernels.bilinear_cauchy(v, w, omega), w),
    ):
        args = (v.clone().requires_grad_(), second.clone().requires_grad_())
        assert torch.autograd.gradcheck(fn, args)


def test_chunked_cauchy_equals_reference(monkeypatch):
    monkeypatch.setattr(kernels, "CAUCHY_CHUNK_ELEMENTS", 3 * 8 * 4)  # w: (3, 8); chunks of 4 nodes
    v = torch.as_tensor(crandn(2, 3, 4), dtype=torch.complex128).requires_grad_()
    w = torch.as_tensor(crandn(3, 4) * 0.2 - 0.5).requires_grad_()
    omega = kernels.roots_of_unity(21, torch.complex128)  # 11 nodes: 3 chunks, the last short
    lean = kernels.bilinear_cauchy(v, w, omega)
    naive = kernels.bilinear_cauchy(v, w, omega, backend="naive")
    torch.testing.assert_close(lean, naive, rtol=1e-12, atol=1e-12)
    g = torch.as_tensor(crandn(*lean.shape))
    for a, b in zip(
        torch.autograd.grad(lean, (v, w), g), torch.autograd.grad(naive, (v, w), g), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", ["S4D", "S4"])
def test_lean_layers_never_form_the_h_n_l_tensor(cls, monkeypatch):
    """Forward + backward of the whole layer: no op output as large as (H, N, L)."""
    from sciml_seq.torch import ssm

    monkeypatch.setattr(kernels, "CAUCHY_CHUNK_ELEMENTS", 1 << 11)
    H, N, L = 2, 64, 256  # (H, N/2, L): 16384 elements; the largest other tensors: ~2048
    sizes = {}
    for backend in ("naive", "lean"):
        torch.manual_seed(0)
        layer = getattr(ssm, cls)(H, N, l_max=L, backend=backend)
        u = torch.randn(1, L, H)
        with _LargestOutput() as probe:
            layer(u)[0].sum().backward()
        sizes[backend] = probe.numel
    assert sizes["naive"] >= H * N // 2 * L
    assert sizes["lean"] < H * N // 2 * L // 4


@pytest.mark.parametrize("cls", ["S4D", "S4"])
def test_layer_backends_agree(cls):
    from sciml_seq.torch import ssm

    outs = []
    for backend in ("naive", "lean"):
        torch.manual_seed(0)
        layer = getattr(ssm, cls)(3, 8, l_max=20, channels=2, backend=backend, dtype=torch.float64)
        u = torch.randn(2, 20, 3, dtype=torch.float64)
        y, state = layer(u, state=layer.default_state(2) + 0.3)
        grads = torch.autograd.grad(y.square().sum(), list(layer.parameters()))
        outs.append((y, state, *grads))
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("cls", ["S4D", "S4"])
def test_unknown_backend(cls):
    from sciml_seq.torch import ssm

    with pytest.raises(OptionError, match="backend: expected one of 'auto', 'naive', 'lean'"):
        getattr(ssm, cls)(3, 8, l_max=8, backend="cuda")

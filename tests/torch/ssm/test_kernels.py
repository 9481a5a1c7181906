"""sciml_seq.torch.ssm.kernels against direct numpy formulas."""

from __future__ import annotations

import numpy as np
import torch

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

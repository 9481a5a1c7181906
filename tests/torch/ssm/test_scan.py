"""sciml_seq.torch.ssm.scan: the parallel scan equals the sequential loop and a
numpy float64 closed form (real, complex, odd lengths, h0, reverse), gradients
(gradcheck, and the adjoint reverse scan), errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.torch.ssm.scan import linear_scan, linear_scan_sequential

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def numpy_scan(a, b, h0=None, reverse=False):
    """Closed form ``h_t = Σ_{s<=t} (Π_{s<r<=t} a_r) b_s + (Π_{r<=t} a_r) h0`` in numpy."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    if reverse:
        h = numpy_scan(a[:, ::-1], b[:, ::-1], h0)
        return h[:, ::-1]
    L = a.shape[1]
    h = np.zeros(b.shape, dtype=np.result_type(a, b, np.float64))
    for t in range(L):
        for s in range(t + 1):
            h[:, t] += np.prod(a[:, s + 1 : t + 1], axis=1) * b[:, s]
        if h0 is not None:
            h[:, t] += np.prod(a[:, : t + 1], axis=1) * h0
    return h


def rand(*shape, complex_=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, dtype=torch.float64, generator=g)
    if complex_:
        x = torch.complex(x, torch.randn(*shape, dtype=torch.float64, generator=g))
    return x


@pytest.mark.parametrize("L", [1, 2, 3, 7, 16, 33])
@pytest.mark.parametrize("complex_", [False, True])
def test_parallel_equals_sequential_and_closed_form(L, complex_):
    a = 0.9 * rand(2, L, 3, complex_=complex_, seed=L)
    b = rand(2, L, 3, complex_=complex_, seed=L + 100)
    h_par = linear_scan(a, b)
    h_seq = linear_scan_sequential(a, b)
    torch.testing.assert_close(h_par, h_seq, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_par.numpy(), numpy_scan(a.numpy(), b.numpy()), 1e-12, 1e-12)


@pytest.mark.parametrize("reverse", [False, True])
def test_initial_state_reverse_and_broadcasting(reverse):
    L = 11
    a = rand(2, L, 1, 4, complex_=True, seed=1) * 0.8  # broadcasts over the channel dim
    b = rand(2, L, 3, 4, seed=2)  # real b, complex a: the result is complex
    h0 = rand(2, 3, 4, complex_=True, seed=3)
    h_par = linear_scan(a, b, h0, reverse=reverse)
    h_seq = linear_scan_sequential(a, b, h0, reverse=reverse)
    assert h_par.shape == (2, L, 3, 4) and h_par.dtype == torch.complex128
    torch.testing.assert_close(h_par, h_seq, rtol=1e-12, atol=1e-12)
    ref = numpy_scan(a.numpy(), b.numpy(), h0.numpy(), reverse=reverse)
    np.testing.assert_allclose(h_par.numpy(), ref, 1e-12, 1e-12)
    torch.testing.assert_close(
        linear_scan(a, b, h0, reverse=reverse, method="sequential"), h_seq, rtol=0, atol=0
    )


def test_gradcheck_complex_with_h0():
    a = (0.7 * rand(1, 5, 2, complex_=True, seed=4)).requires_grad_()
    b = rand(1, 5, 2, complex_=True, seed=5).requires_grad_()
    h0 = rand(1, 2, complex_=True, seed=6).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, h0: linear_scan(a, b, h0), (a, b, h0))
    assert torch.autograd.gradcheck(
        lambda a, b, h0: linear_scan(a, b, h0, reverse=True), (a, b, h0)
    )


def test_gradient_is_the_adjoint_reverse_scan():
    """dL/db_t = g_t with g_t = dL/dh_t + conj(a_{t+1}) g_{t+1}; dL/da_t = g_t conj(h_{t-1})."""
    L = 9
    a = (0.9 * rand(2, L, 3, complex_=True, seed=7)).requires_grad_()
    b = rand(2, L, 3, complex_=True, seed=8).requires_grad_()
    w = rand(2, L, 3, complex_=True, seed=9)
    h = linear_scan(a, b)
    (h * w).real.sum().backward()
    grad_h = w.conj()  # torch's convention: the gradient of Re(h w) w.r.t. h is conj(w)
    a_next = torch.cat([a.detach()[:, 1:], torch.zeros_like(a[:, :1])], 1)
    g = linear_scan_sequential(a_next.conj(), grad_h, reverse=True)
    h_prev = torch.cat([torch.zeros_like(h[:, :1]), h.detach()[:, :-1]], 1)
    torch.testing.assert_close(b.grad, g, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.grad, g * h_prev.conj(), rtol=1e-12, atol=1e-12)


def test_errors_name_the_argument():
    a = rand(2, 5, 3)
    with pytest.raises(ShapeError, match=r"^a, b: expected shapes broadcasting"):
        linear_scan(a, rand(2, 4, 3))
    with pytest.raises(ShapeError, match=r"^a, b: expected shape \(batch, length, \.\.\.\)"):
        linear_scan(rand(2), rand(2))
    with pytest.raises(ShapeError, match=r"^h0: expected shape \(2, 3\) .*; got \(2, 5\)$"):
        linear_scan(a, a, rand(2, 5))
    with pytest.raises(DTypeError, match=r"^b: expected a real or complex floating tensor"):
        linear_scan(a, torch.ones(2, 5, 3, dtype=torch.int64))
    with pytest.raises(OptionError, match=r"^method: expected one of 'parallel', 'sequential'"):
        linear_scan(a, a, method="blelloch")

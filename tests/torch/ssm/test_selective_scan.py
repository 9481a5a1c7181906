"""The PyTorch selective scan (reference loop and parallel associative scan) against
the official ``selective_scan_ref`` fixtures (outputs, last states, gradients; float64
and float32), an independent numpy loop for the layouts the fixtures do not cover
(fixed and grouped B/C, no softplus), and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.torch.ssm import selective_scan

from ...mamba_reference import assert_close, fixture_names, load, scan_call

pytestmark = pytest.mark.usefixtures("one_torch_thread")
IMPLS = ("reference", "parallel")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", fixture_names("scan_ref_"))
def test_official_scan_fixtures_float64(name, impl):
    meta, arrays = load(name)
    inputs, flags = scan_call(meta, arrays)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
    out, last = selective_scan(**t, **flags, return_last_state=True, implementation=impl)
    assert_close(out.detach().numpy(), arrays["out"], "out")
    assert_close(last.detach().numpy(), arrays["last_state"], "last_state")
    grads = torch.autograd.grad(out, list(t.values()), torch.tensor(arrays["g"]))
    for k, g in zip(t, grads, strict=True):
        assert_close(g.numpy(), arrays[f"grad/{k}"], f"grad/{k}")


@pytest.mark.parametrize("name", fixture_names("scan_ref_"))
def test_official_scan_fixtures_float32(name):
    """In float32 within 1e-5·max|ref| (the official code in float32 lands within 8e-7)."""
    meta, arrays = load(name)
    inputs, flags = scan_call(meta, arrays)
    t = {k: torch.tensor(v, dtype=torch.float32) for k, v in inputs.items()}
    out, last = selective_scan(**t, **flags, return_last_state=True, implementation="parallel")
    assert out.dtype == torch.float32
    assert_close(out.double().numpy(), arrays["out"], "out", rtol=1e-5)
    assert_close(last.double().numpy(), arrays["last_state"], "last_state", rtol=1e-5)


def numpy_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, softplus=False):
    """Independent float64 loop over (b, d, l) with explicit group lookup."""
    batch, d, L = u.shape
    N = A.shape[1]
    dt = delta + (0 if delta_bias is None else delta_bias[:, None])
    dt = np.log1p(np.exp(dt)) if softplus else dt

    def coef(X, b, c, l):  # noqa: E741
        if X.ndim == 2:
            return X[c]
        if X.ndim == 3:
            return X[b, :, l]
        return X[b, c // (d // X.shape[1]), :, l]

    out, last = np.zeros((batch, d, L)), np.zeros((batch, d, N))
    for b in range(batch):
        for c in range(d):
            x = np.zeros(N)
            for l in range(L):  # noqa: E741
                x = np.exp(dt[b, c, l] * A[c]) * x + dt[b, c, l] * coef(B, b, c, l) * u[b, c, l]
                y = x @ coef(C, b, c, l) + (0 if D is None else D[c] * u[b, c, l])
                out[b, c, l] = y if z is None else y * z[b, c, l] / (1 + np.exp(-z[b, c, l]))
            last[b, c] = x
    return out, last


@pytest.mark.parametrize("layout", ["fixed", "groups"])
def test_layouts_match_numpy_loop(layout):
    rng = np.random.default_rng(3)
    batch, d, N, L = 2, 4, 3, 7  # odd length: the parallel scan's ragged tail
    u, delta, z = rng.standard_normal((3, batch, d, L))
    A = -np.exp(0.5 * rng.standard_normal((d, N)))
    if layout == "fixed":
        B, C = rng.standard_normal((2, d, N))
        kw = {"softplus": False}
        delta = np.abs(delta)
    else:  # B with 2 groups, C with 4 (one per channel)
        B = rng.standard_normal((batch, 2, N, L))
        C = rng.standard_normal((batch, 4, N, L))
        kw = {"softplus": True}
    D, bias = rng.standard_normal((2, d))
    want, want_last = numpy_scan(u, delta, A, B, C, D, z, bias, **kw)
    args = [torch.tensor(x) for x in (u, delta, A, B, C, D, z, bias)]
    for impl in IMPLS:
        out, last = selective_scan(
            *args, delta_softplus=kw["softplus"], return_last_state=True, implementation=impl
        )
        assert_close(out.numpy(), want, f"{impl} out", rtol=1e-12)
        assert_close(last.numpy(), want_last, f"{impl} last_state", rtol=1e-12)


def test_errors(monkeypatch):
    u = torch.zeros(2, 4, 5)
    A, B = torch.zeros(4, 3), torch.zeros(2, 3, 5)
    with pytest.raises(ShapeError, match="delta: expected the shape of u"):
        selective_scan(u, torch.zeros(2, 4, 6), A, B, B)
    with pytest.raises(ShapeError, match="A: expected shape"):
        selective_scan(u, u, torch.zeros(5, 3), B, B)
    with pytest.raises(ShapeError, match="C: expected shape"):
        selective_scan(u, u, A, B, torch.zeros(2, 3, 4))
    with pytest.raises(ShapeError, match="B: expected a group count dividing"):
        selective_scan(u, u, A, torch.zeros(2, 3, 3, 5), B)
    with pytest.raises(ShapeError, match="D: expected shape"):
        selective_scan(u, u, A, B, B, D=torch.zeros(3))
    with pytest.raises(OptionError, match="implementation: expected one of"):
        selective_scan(u, u, A, B, B, implementation="cuda")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(OptionError, match="implementation: 'triton' runs on CUDA tensors"):
        selective_scan(u, u, A, B, B, implementation="triton")
    with pytest.raises(DTypeError, match="u: expected a real floating tensor"):
        selective_scan(u.long(), u, A, B, B)

"""The Triton selective scan (forward and backward) against the sequential reference
at tiny sizes (the CPU interpreter where there is no GPU; float64 and float32,
every gradient), over the B/C layouts and options; slow: the official fixtures
through the kernel and the Mamba block with implementation="triton"."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from sciml_seq.kernels.selective_scan import selective_scan_triton
from sciml_seq.torch.ssm import selective_scan, selective_scan_ref

from ..mamba_reference import assert_close, fixture_names, load, official_params, scan_call

#: On CUDA where there is one (``pytest -m gpu``), else in the Triton interpreter.
pytestmark = pytest.mark.gpu
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
RTOL = {torch.float64: 1e-12, torch.float32: 2e-5}


def _inputs(batch, d, N, L, B_shape, C_shape, dtype, *, D=True, z=True, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    args = [r(batch, d, L), r(batch, d, L), -torch.exp(0.5 * r(d, N)), r(*B_shape), r(*C_shape)]
    args += [r(d) if D else None, r(batch, d, L) if z else None, 0.5 * r(d) if bias else None]
    return [None if a is None else a.to(DEVICE, dtype).requires_grad_() for a in args]


def _check(args, dtype, softplus, **blocks):
    out, last = selective_scan_triton(
        *args, delta_softplus=softplus, return_last_state=True, **blocks
    )
    ref, ref_last = selective_scan_ref(*args, delta_softplus=softplus, return_last_state=True)
    assert out.dtype == dtype and last.dtype == dtype
    rtol = RTOL[dtype]
    assert_close(
        out.detach().double().cpu().numpy(), ref.detach().double().cpu().numpy(), "out", rtol
    )
    assert_close(
        last.double().cpu().numpy(), ref_last.detach().double().cpu().numpy(), "last", rtol
    )
    go = torch.randn(out.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    go = go.to(DEVICE, dtype)
    inputs = [a for a in args if a is not None]
    got = torch.autograd.grad(out, inputs, go)
    want = torch.autograd.grad(ref, inputs, go)
    names = [
        n
        for n, a in zip("u delta A B C D z delta_bias".split(), args, strict=True)
        if a is not None
    ]
    for name, a, b in zip(names, got, want, strict=True):
        assert a.dtype == dtype and a.shape == b.shape, name
        assert_close(a.double().cpu().numpy(), b.double().cpu().numpy(), f"grad {name}", rtol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_variable_bc_with_gate_skip_bias_softplus(dtype):
    """Two chunks of 4 over L = 5 (a ragged last chunk), channels in blocks of 2."""
    batch, d, N, L = 1, 2, 2, 5
    args = _inputs(batch, d, N, L, (batch, N, L), (batch, N, L), dtype)
    _check(args, dtype, True, block_d=2, block_l=4)


def test_fixed_b_grouped_c_without_options():
    """Fixed B (d, N); C in 2 groups that a block of 4 channels straddles (atomic path);
    no D, z, delta_bias or softplus; N = 3 is not a power of two."""
    batch, d, N, L = 1, 4, 3, 5
    args = _inputs(
        batch, d, N, L, (d, N), (batch, 2, N, L), torch.float64, D=False, z=False, bias=False
    )
    with torch.no_grad():
        args[1].abs_()  # a positive step without the softplus
    _check(args, torch.float64, False, block_d=4, block_l=4)


@pytest.mark.slow
@pytest.mark.parametrize("name", fixture_names("scan_ref_"))
def test_official_fixtures_through_the_kernel(name):
    meta, arrays = load(name)
    inputs, flags = scan_call(meta, arrays)
    t = {k: torch.tensor(v, device=DEVICE, requires_grad=True) for k, v in inputs.items()}
    out, last = selective_scan(**t, **flags, return_last_state=True, implementation="triton")
    assert_close(out.detach().cpu().numpy(), arrays["out"], "out")
    assert_close(last.cpu().numpy(), arrays["last_state"], "last_state")
    grads = torch.autograd.grad(out, list(t.values()), torch.tensor(arrays["g"], device=DEVICE))
    for k, g in zip(t, grads, strict=True):
        assert_close(g.cpu().numpy(), arrays[f"grad/{k}"], f"grad/{k}")


@pytest.mark.slow
@pytest.mark.parametrize("name", fixture_names("mamba_block_"))
def test_official_mamba_block_with_the_kernel(name):
    from sciml_seq.torch.ssm import from_official_state_dict

    _, arrays = load(name)
    model = from_official_state_dict(official_params(arrays), implementation="triton").to(DEVICE)
    h = torch.tensor(arrays["hidden_states"], device=DEVICE, requires_grad=True)
    out = model(h)
    assert_close(out.detach().cpu().numpy(), arrays["out"], "out")
    params = dict(model.named_parameters())
    g = torch.tensor(arrays["g"], device=DEVICE)
    grads = torch.autograd.grad(out, [h, *params.values()], g)
    assert_close(grads[0].cpu().numpy(), arrays["grad/hidden_states"], "grad/hidden_states")
    for k, gr in zip(params, grads[1:], strict=True):
        assert_close(gr.cpu().numpy(), arrays[f"grad/param/{k}"], f"grad/param/{k}")
    assert np.isfinite(out.detach().cpu().numpy()).all()


COMPILE_FOR_H100 = """
import inspect, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from sciml_seq.kernels import _selective_scan_tl as K
flags = dict(C_VAR=True, HAS_D=True, HAS_Z=True, HAS_BIAS=True, SOFTPLUS=True, BD=4, BN=16, BL=32)
for dtype in ("fp32", "fp64"):
    for fn, extra in ((K._fwd, {}), (K._bwd, {"B_ONE_GROUP": True, "C_ONE_GROUP": False})):
        consts = dict(flags, B_VAR=dtype == "fp32", **extra)
        sig = {n: "constexpr" if n in consts else ("*" + dtype if n.endswith("_ptr") else "i32")
               for n in inspect.signature(fn.fn).parameters}
        triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts),
                       target=GPUTarget("cuda", 90, 32))
print("compiled")
"""


@pytest.mark.slow
def test_kernels_compile_for_sm90_without_a_gpu():
    """The interpreter runs Python, not Triton's compiler: compile both kernels (float32
    with variable B, float64 with fixed B) down to an sm_90 binary, in a process
    without ``TRITON_INTERPRET``."""
    pytest.importorskip("triton.backends.nvidia")
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-c", COMPILE_FOR_H100], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "compiled" in done.stdout, done.stderr[-3000:]

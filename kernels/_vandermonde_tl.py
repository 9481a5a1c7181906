"""Triton source of the Vandermonde kernels (imported on first use by :mod:`.vandermonde`)."""

import triton
import triton.language as tl


@triton.jit
def _power(x_re, x_im, lf):
    """``exp(l x)`` on an ``(n, l)`` tile as (re, im), angle reduced to [-π, π]."""
    mag = tl.exp(x_re[:, None] * lf[None, :])
    theta = x_im[:, None] * lf[None, :]
    k = tl.floor(theta * 0.15915494309189535 + 0.5)
    theta = theta - k * 6.28125  # 2π = 6.28125 + 1.9353071795864769e-3 (Cody-Waite)
    theta = theta - k * 1.9353071795864769e-3
    return mag * tl.cos(theta), mag * tl.sin(theta)


@triton.jit
def _fwd(v_ptr, x_ptr, out_ptr, MX, N, L, BN: tl.constexpr, BL: tl.constexpr):
    m = tl.program_id(0).to(tl.int64)  # offsets m * L pass 2**31 on large inputs
    ell = tl.program_id(1) * BL + tl.arange(0, BL)
    acc = tl.zeros([BL], dtype=out_ptr.dtype.element_ty)
    lf = ell.to(out_ptr.dtype.element_ty)
    mx = m % MX
    for n0 in range(0, N, BN):
        n = n0 + tl.arange(0, BN)
        mask = n < N
        v_re = tl.load(v_ptr + (m * N + n) * 2, mask=mask, other=0.0)
        v_im = tl.load(v_ptr + (m * N + n) * 2 + 1, mask=mask, other=0.0)
        x_re = tl.load(x_ptr + (mx * N + n) * 2, mask=mask, other=0.0)
        x_im = tl.load(x_ptr + (mx * N + n) * 2 + 1, mask=mask, other=0.0)
        e_re, e_im = _power(x_re, x_im, lf)
        acc += tl.sum(v_re[:, None] * e_re - v_im[:, None] * e_im, axis=0)
    tl.store(out_ptr + m * L + ell, 2 * acc, mask=ell < L)


@triton.jit
def _bwd(g_ptr, x_ptr, s0_ptr, s1_ptr, MX, N, L, BN: tl.constexpr, BL: tl.constexpr):
    m = tl.program_id(0).to(tl.int64)  # offsets m * L pass 2**31 on large inputs
    n = tl.program_id(1) * BN + tl.arange(0, BN)
    mask_n = n < N
    mx = m % MX
    x_re = tl.load(x_ptr + (mx * N + n) * 2, mask=mask_n, other=0.0)
    x_im = tl.load(x_ptr + (mx * N + n) * 2 + 1, mask=mask_n, other=0.0)
    s0_re = tl.zeros([BN], dtype=x_re.dtype)
    s0_im = tl.zeros([BN], dtype=x_re.dtype)
    s1_re = tl.zeros([BN], dtype=x_re.dtype)
    s1_im = tl.zeros([BN], dtype=x_re.dtype)
    for l0 in range(0, L, BL):
        ell = l0 + tl.arange(0, BL)
        g = tl.load(g_ptr + m * L + ell, mask=ell < L, other=0.0).to(x_re.dtype)
        lf = ell.to(x_re.dtype)
        e_re, e_im = _power(x_re, x_im, lf)
        ge_re, ge_im = g[None, :] * e_re, g[None, :] * e_im
        s0_re += tl.sum(ge_re, axis=1)
        s0_im -= tl.sum(ge_im, axis=1)
        s1_re += tl.sum(ge_re * lf[None, :], axis=1)
        s1_im -= tl.sum(ge_im * lf[None, :], axis=1)
    base = (m * N + n) * 2
    tl.store(s0_ptr + base, s0_re, mask=mask_n)
    tl.store(s0_ptr + base + 1, s0_im, mask=mask_n)
    tl.store(s1_ptr + base, s1_re, mask=mask_n)
    tl.store(s1_ptr + base + 1, s1_im, mask=mask_n)

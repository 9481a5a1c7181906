"""The selective scan of Mamba (S6) as a Triton kernel, forward and backward.

Per batch ``b``, channel ``d``, state ``n`` (real ``A``; official argument
names and shapes, as :func:`sciml_seq.torch.ssm.selective_scan`)::

    Δ = softplus(delta + delta_bias)         (or without softplus / bias)
    x_l = exp(Δ_l A) x_{l-1} + Δ_l B_l u_l    x_{-1} = 0
    out_l = (Σ_n x_l C_l + D u_l) · silu(z_l)

:func:`sciml_seq.torch.ssm.selective_scan_ref` is its plain-PyTorch reference (a
sequential loop; materialises ``(batch, d, L, N)``); it lives in the torch layer,
which dispatches between the two, because a kernel module imports nothing above it.
:func:`selective_scan_triton` fuses the discretisation (``exp(Δ A)``,
``Δ B u``), softplus and bias, skip and gate into one kernel and never forms
the ``(batch, d, L, N)`` tensor in memory: one program per (batch, block of
``block_d`` channels) walks the sequence in chunks of ``block_l`` tokens,
scanning each chunk in registers (``tl.associative_scan``).  It stores the
state at each chunk start (``(batch, d, L / block_l, N)``) for the backward
pass, which recomputes the states of a chunk from it and runs the adjoint
recurrence backwards in time (a reverse scan per chunk), so memory stays
linear in ``L`` with a factor ``N / block_l`` on ``u``'s size.

Gradients: every input (``u, delta, A, B, C, D, z, delta_bias``); the
gradients of variable ``B``/``C`` (summed over the channels sharing a group)
are accumulated with atomic adds (so their last bits can vary between runs
on a GPU), the others are written once per (batch, channel) and summed over
the batch outside.  ``last_state`` is returned without a gradient (as the
official CUDA function).  Computation is in float32 (float16/bfloat16 inputs
are promoted; the output has ``u``'s dtype) or float64.  Real ``A`` only.

The block sizes are not tuned on a GPU (none was available when this was
written); ``block_d``/``block_l`` can be passed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import DTypeError
from ..mamba import check_scan_shapes
from .common import cdiv, on_device, require_triton

__all__ = ["selective_scan_triton"]

#: Channels per program and tokens per chunk (powers of two).
BLOCK_D = 4
BLOCK_L = 32
#: Warps of the backward kernel: at 4 its (4, 16, 32) tiles spill a few bytes on sm_90
#: (ptxas: 255 registers); at 8 none (245).  The forward uses Triton's default, 4 (176).
BWD_WARPS = 8


def _next_pow2(x: int) -> int:
    return 1 << max(0, int(x) - 1).bit_length()


def _layout(u, delta, A, B, C, D, z, delta_bias):
    shapes = check_scan_shapes(
        u.shape,
        delta.shape,
        A.shape,
        B.shape,
        C.shape,
        None if D is None else D.shape,
        None if z is None else z.shape,
        None if delta_bias is None else delta_bias.shape,
    )
    for name, t in (("u", u), ("A", A)):
        if t.is_complex() or not t.is_floating_point():
            raise DTypeError(f"{name}: expected a real floating tensor; got {t.dtype}")
    return shapes


def _bc(X: Tensor, kind: str, dtype: torch.dtype) -> tuple[Tensor, int]:
    X = X.to(dtype).contiguous()
    if kind == "fixed":
        return X, 1
    if X.dim() == 3:
        X = X.unsqueeze(1)
    return X, X.shape[1]


class _SelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus, block_d, block_l):  # type: ignore[override]
        shapes = _layout(u, delta, A, B, C, D, z, delta_bias)
        dtype = torch.promote_types(u.dtype, torch.float32)
        cast = [None if x is None else x.to(dtype).contiguous() for x in (u, delta, A, D, z)]
        uu, dd, AA, DD, zz = cast
        bias = None if delta_bias is None else delta_bias.to(dtype).contiguous()
        BB, GB = _bc(B, shapes.b_kind, dtype)
        CC, GC = _bc(C, shapes.c_kind, dtype)
        batch, d, L, N = shapes.batch, shapes.d, shapes.length, shapes.n
        BD = min(block_d, _next_pow2(d))
        BL = max(2, min(block_l, _next_pow2(L)))
        BN = max(2, _next_pow2(N))
        n_chunks = cdiv(L, BL)
        out = torch.empty(batch, d, L, dtype=dtype, device=u.device)
        states = torch.empty(batch, d, n_chunks, N, dtype=dtype, device=u.device)
        last = torch.zeros(batch, d, N, dtype=dtype, device=u.device)
        from ._selective_scan_tl import _fwd

        dummy = uu
        with on_device(u):
            if batch * d and L:
                _fwd[(batch, cdiv(d, BD))](
                    uu, dd, AA, BB, CC,
                    dummy if DD is None else DD,
                    dummy if zz is None else zz,
                    dummy if bias is None else bias,
                    out, states, last, d, L, N, GB, GC, n_chunks,
                    B_VAR=shapes.b_kind == "variable",
                    C_VAR=shapes.c_kind == "variable",
                    HAS_D=DD is not None,
                    HAS_Z=zz is not None,
                    HAS_BIAS=bias is not None,
                    SOFTPLUS=bool(softplus),
                    BD=BD, BN=BN, BL=BL,
                )  # fmt: skip
        ctx.save_for_backward(uu, dd, AA, BB, CC, DD, zz, bias, states)
        ctx.meta = (shapes, softplus, BD, BN, BL, n_chunks, GB, GC)
        ctx.dtypes = tuple(None if x is None else x.dtype for x in (u, delta, A, B, C, D, z))
        ctx.bias_dtype = None if delta_bias is None else delta_bias.dtype
        ctx.ranks = (B.dim(), C.dim())
        ctx.mark_non_differentiable(last)
        return out.to(u.dtype), last

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout, _glast):  # type: ignore[override]
        uu, dd, AA, BB, CC, DD, zz, bias, states = ctx.saved_tensors
        shapes, softplus, BD, BN, BL, n_chunks, GB, GC = ctx.meta
        batch, d, L, N = shapes.batch, shapes.d, shapes.length, shapes.n
        dtype, dev = uu.dtype, uu.device
        go = gout.to(dtype).contiguous()
        du, ddelta = torch.zeros_like(uu), torch.zeros_like(uu)
        dz = torch.zeros_like(uu) if zz is not None else None
        dA = torch.zeros(batch, d, N, dtype=dtype, device=dev)
        b_var, c_var = shapes.b_kind == "variable", shapes.c_kind == "variable"
        dB = torch.zeros_like(BB) if b_var else torch.zeros(batch, d, N, dtype=dtype, device=dev)
        dC = torch.zeros_like(CC) if c_var else torch.zeros(batch, d, N, dtype=dtype, device=dev)
        dD = torch.zeros(batch, d, dtype=dtype, device=dev)
        dbias = torch.zeros(batch, d, dtype=dtype, device=dev)
        from ._selective_scan_tl import _bwd

        dummy = uu
        with on_device(uu):
            if batch * d and L:
                _bwd[(batch, cdiv(d, BD))](
                    uu, dd, AA, BB, CC,
                    dummy if DD is None else DD,
                    dummy if zz is None else zz,
                    dummy if bias is None else bias,
                    states, go, du, ddelta,
                    dummy if dz is None else dz,
                    dA, dB, dC, dD, dbias, d, L, N, GB, GC, n_chunks,
                    B_VAR=b_var,
                    C_VAR=c_var,
                    B_ONE_GROUP=(d // GB) % BD == 0 or GB == 1,
                    C_ONE_GROUP=(d // GC) % BD == 0 or GC == 1,
                    HAS_D=DD is not None,
                    HAS_Z=zz is not None,
                    HAS_BIAS=bias is not None,
                    SOFTPLUS=bool(softplus),
                    BD=BD, BN=BN, BL=BL,
                    num_warps=BWD_WARPS,
                )  # fmt: skip
        t_u, t_delta, t_A, t_B, t_C, t_D, t_z = ctx.dtypes
        if not b_var:
            dB = dB.sum(0)
        elif ctx.ranks[0] == 3:
            dB = dB[:, 0]
        if not c_var:
            dC = dC.sum(0)
        elif ctx.ranks[1] == 3:
            dC = dC[:, 0]
        need = ctx.needs_input_grad
        return (
            du.to(t_u) if need[0] else None,
            ddelta.to(t_delta) if need[1] else None,
            dA.sum(0).to(t_A) if need[2] else None,
            dB.to(t_B) if need[3] else None,
            dC.to(t_C) if need[4] else None,
            dD.sum(0).to(t_D) if need[5] and t_D is not None else None,
            dz.to(t_z) if need[6] and dz is not None else None,
            dbias.sum(0).to(ctx.bias_dtype) if need[7] and ctx.bias_dtype else None,
            None,
            None,
            None,
        )


def selective_scan_triton(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    block_d: int = BLOCK_D,
    block_l: int = BLOCK_L,
):
    """Triton selective scan: ``out (batch, d, L)`` (and ``last_state (batch, d, N)``).

    Arguments as :func:`sciml_seq.torch.ssm.selective_scan`; ``block_d``, ``block_l``
    (powers of two) are the channels per program and the tokens per chunk.
    Differentiable once in every input except through ``last_state``.
    """
    tensors = [x for x in (u, delta, A, B, C, D, z, delta_bias) if x is not None]
    require_triton(*tensors, what="the selective scan")
    out, last = _SelectiveScan.apply(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, block_d, block_l
    )
    return (out, last.to(u.dtype)) if return_last_state else out

"""The S4D Vandermonde kernel ``K[m, l] = 2 Re Σ_n v[m, n] exp(l · x[m, n])``.

:func:`vandermonde_ref` is the plain reference: it materialises the
``(..., N, L)`` matrix.  :func:`vandermonde_triton` never does: the forward
tiles ``(rows, l)`` and loops over ``n``; the backward tiles ``(rows, n)`` and
loops over ``l``, accumulating

* ``S0[m, n] = Σ_l g[m, l] conj(exp(l x))``  -> ``∂/∂v = 2 S0``,
* ``S1[m, n] = Σ_l g[m, l] l conj(exp(l x))`` -> ``∂/∂x = 2 conj(v) S1``

(PyTorch's convention: the gradient of a real loss w.r.t. ``z`` is
``∂/∂Re z + i ∂/∂Im z``).  Memory is ``O(M (N + L))``.  Angles ``l · Im x``
are reduced to ``[-π, π]`` (Cody-Waite) before ``cos``/``sin``, so fast
hardware trigonometry stays accurate at long lengths.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .common import cdiv, on_device, real_view, require_triton, rows

__all__ = ["vandermonde_ref", "vandermonde_triton"]

BLOCK_N = 16
BLOCK_L = 128


def vandermonde_ref(v: Tensor, x: Tensor, L: int) -> Tensor:
    """``2 Re Σ_n v[..., n] exp(l x[..., n])`` for ``l < L``: real ``(..., L)``; materialises."""
    ell = torch.arange(L, device=x.device, dtype=x.real.dtype)
    return 2 * torch.einsum("...n,...nl->...l", v, torch.exp(x.unsqueeze(-1) * ell)).real


class _Vandermonde(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: Tensor, x: Tensor, L: int) -> Tensor:
        r = rows(v, x, ("v", "x"))
        out = torch.empty(r.M, L, dtype=v.real.dtype, device=v.device)
        from ._vandermonde_tl import _fwd

        with on_device(v):
            _fwd[(r.M, cdiv(L, BLOCK_L))](
                real_view(r.a), real_view(r.b), out, r.MB, r.N, L, BN=BLOCK_N, BL=BLOCK_L
            )
        ctx.save_for_backward(v, x)
        ctx.L = L
        return out.reshape(*r.batch, L)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        v, x = ctx.saved_tensors
        r = rows(v, x, ("v", "x"))
        g = grad.reshape(r.M, ctx.L).to(v.real.dtype).contiguous()
        s0 = torch.empty(r.M, r.N, 2, dtype=v.real.dtype, device=v.device)
        s1 = torch.empty_like(s0)
        from ._vandermonde_tl import _bwd

        with on_device(v):
            _bwd[(r.M, cdiv(r.N, BLOCK_N))](
                g, real_view(r.b), s0, s1, r.MB, r.N, ctx.L, BN=BLOCK_N, BL=BLOCK_L
            )
        s0, s1 = torch.view_as_complex(s0), torch.view_as_complex(s1)
        grad_v = r.reduce(2 * s0, v) if ctx.needs_input_grad[0] else None
        grad_x = r.reduce(2 * r.a.conj() * s1, x) if ctx.needs_input_grad[1] else None
        return grad_v, grad_x, None


def vandermonde_triton(v: Tensor, x: Tensor, L: int) -> Tensor:
    """Triton ``2 Re Σ_n v[..., n] exp(l x[..., n])``, ``l < L``: real ``(..., L)``.

    ``v`` and ``x`` are complex of one dtype (complex64 or complex128) and
    broadcast; differentiable in both (once).  Never forms ``(..., N, L)``.
    """
    require_triton(v, x, what="the Vandermonde kernel")
    return _Vandermonde.apply(v, x, int(L))

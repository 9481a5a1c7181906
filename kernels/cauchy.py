"""The bilinear Cauchy sums of the S4 (DPLR) kernel.

``r[m, k] = Σ_n 2 v[m, n] / (2(1 - ω_k) - (1 + ω_k) w[m, n])``: the resolvent
of the bilinear-discretised diagonal part at the nodes ``ω_k`` (``2/(1+ω)``
times the Cauchy sum ``Σ v / (z - w)`` at ``z = 2(1-ω)/(1+ω)``, finite at
``ω = -1``).  ``v``, ``w`` are the conjugate-extended vectors (the caller
stacks ``[x, conj x]``).

:func:`bilinear_cauchy_ref` materialises ``(..., N, K)``.
:func:`bilinear_cauchy_triton` tiles ``(rows, k)`` and loops over ``n``;
its backward tiles ``(rows, n)`` and loops over ``k``, accumulating

* ``S0[m, n] = Σ_k g[m, k] conj(2 / d)``             -> ``∂/∂v = S0``,
* ``S1[m, n] = Σ_k g[m, k] conj(2 (1 + ω_k) / d²)``  -> ``∂/∂w = conj(v) S1``

with ``d = 2(1-ω) - (1+ω) w`` (holomorphic in ``v`` and ``w``; PyTorch's
conjugate convention for complex gradients).  The nodes get no gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .common import cdiv, on_device, real_view, require_triton, rows

__all__ = ["bilinear_cauchy_ref", "bilinear_cauchy_triton"]

BLOCK_N = 16
BLOCK_K = 128


def bilinear_cauchy_ref(v: Tensor, w: Tensor, omega: Tensor) -> Tensor:
    """``Σ_n 2 v[..., n] / (2(1-ω) - (1+ω) w[..., n])``: complex ``(..., K)``; materialises."""
    den = 2 * (1 - omega) - (1 + omega) * w.unsqueeze(-1)  # (..., N, K)
    return torch.sum(2 * v.unsqueeze(-1) / den, dim=-2)


class _BilinearCauchy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: Tensor, w: Tensor, omega: Tensor) -> Tensor:
        r = rows(v, w, ("v", "w"))
        K = omega.shape[-1]
        out = torch.empty(r.M, K, 2, dtype=v.real.dtype, device=v.device)
        omega = omega.to(device=v.device, dtype=v.dtype)  # saved as converted
        o = real_view(omega)
        from ._cauchy_tl import _fwd

        with on_device(v):
            _fwd[(r.M, cdiv(K, BLOCK_K))](
                real_view(r.a), real_view(r.b), o, out, r.MB, r.N, K, BN=BLOCK_N, BK=BLOCK_K
            )
        ctx.save_for_backward(v, w, omega)
        return torch.view_as_complex(out).reshape(*r.batch, K)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        v, w, omega = ctx.saved_tensors
        r = rows(v, w, ("v", "w"))
        K = omega.shape[-1]
        g = real_view(grad.reshape(r.M, K).to(v.dtype))
        s0 = torch.empty(r.M, r.N, 2, dtype=v.real.dtype, device=v.device)
        s1 = torch.empty_like(s0)
        from ._cauchy_tl import _bwd

        with on_device(v):
            _bwd[(r.M, cdiv(r.N, BLOCK_N))](
                g, real_view(r.b), real_view(omega), s0, s1, r.MB, r.N, K, BN=BLOCK_N, BK=BLOCK_K
            )
        s0, s1 = torch.view_as_complex(s0), torch.view_as_complex(s1)
        grad_v = r.reduce(s0, v) if ctx.needs_input_grad[0] else None
        grad_w = r.reduce(r.a.conj() * s1, w) if ctx.needs_input_grad[1] else None
        return grad_v, grad_w, None


def bilinear_cauchy_triton(v: Tensor, w: Tensor, omega: Tensor) -> Tensor:
    """Triton ``Σ_n 2 v[..., n] / (2(1-ω) - (1+ω) w[..., n])``: complex ``(..., K)``.

    ``v``, ``w`` complex of one dtype, broadcast, with the modes last (``N``);
    ``omega`` ``(K,)`` complex nodes.  Differentiable in ``v`` and ``w`` (once).
    Never forms ``(..., N, K)``.
    """
    require_triton(v, w, what="the Cauchy kernel")
    return _BilinearCauchy.apply(v, w, omega)

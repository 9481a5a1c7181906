"""LSSL: the linear state-space layer with a dense state matrix.

Mirrors :mod:`sciml_seq.jax.ssm.lssl`.

The original layer of Gu et al. (2021), "Combining Recurrent, Convolutional,
and Continuous-time Models with Linear State-Space Layers": a real system
``x' = A x + B u``, ``y = C x + D u`` with a dense ``N × N`` HiPPO matrix ``A``
per feature, discretised with a learned step Δ, run as a convolution with the
Krylov kernel ``K[l] = C dA^l dB`` or as a recurrence.  It costs ``O(N^2 L)``
for the kernel (``O(N^3 log L)`` for state forwarding); S4 and S4D are its
structured, faster successors.  The layer around the kernel (D skip, GELU,
GLU output, bidirectional, rate, steps) is the one of
:class:`~sciml_seq.torch.ssm.S4D`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...checks import check_choice
from ...ssm import (
    DISCRETIZATIONS,
    check_common,
    dense_init,
)
from ..checks import check_float_dtype
from .kernels import krylov, power
from .layer import SSMLayer, init_log_dt, real_dtype

__all__ = ["LSSL", "LSSLKernel"]


class LSSLKernel(nn.Module):
    """Dense real SSM kernel.

    Parameters: ``inv_dt`` (H, 1) = log Δ, ``A`` (H, N, N), ``B`` (1, H, N),
    ``C`` (channels, H, N), all real.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        channels: int,
        *,
        init: str,
        disc: str,
        dt_min: float,
        dt_max: float,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dtype = check_float_dtype("dtype", torch.get_default_dtype() if dtype is None else dtype)
        self.H, self.N, self.channels = int(d_model), int(d_state), int(channels)
        self.disc = check_choice("disc", disc, DISCRETIZATIONS)
        det = dense_init(init, d_state, d_model)
        self.inv_dt = nn.Parameter(init_log_dt(self.H, dt_min, dt_max, dtype))
        self.A = nn.Parameter(torch.as_tensor(det["A"], dtype=dtype))
        self.B = nn.Parameter(torch.as_tensor(det["B"], dtype=dtype))
        self.C = nn.Parameter(torch.randn(self.channels, self.H, self.N, dtype=dtype))

    def discretize(self, rate: float = 1.0):
        """``dA`` (H, N, N) and ``dB`` (H, N) of ``x' = A x + B u`` with step ``Δ·rate``."""
        rdt = real_dtype(self.inv_dt)
        dt = torch.exp(self.inv_dt.to(rdt)) * rate  # (H, 1)
        A, B = self.A.to(rdt), self.B.to(rdt)[0]
        eye = torch.eye(self.N, dtype=rdt, device=A.device)
        dtA = dt.unsqueeze(-1) * A
        if self.disc == "zoh":
            aug = torch.zeros(self.H, self.N + 1, self.N + 1, dtype=rdt, device=A.device)
            aug[:, : self.N, : self.N] = dtA
            aug[:, : self.N, self.N] = dt * B
            E = torch.linalg.matrix_exp(aug)
            return E[:, : self.N, : self.N], E[:, : self.N, self.N]
        if self.disc == "bilinear":
            lhs = eye - dtA / 2
            dA = torch.linalg.solve(lhs, eye + dtA / 2)
            return dA, torch.linalg.solve(lhs, (dt * B).unsqueeze(-1)).squeeze(-1)
        if self.disc == "forward_euler":
            return eye + dtA, dt * B
        lhs = eye - dtA  # backward Euler
        dA = torch.linalg.solve(lhs, eye.expand_as(lhs))
        return dA, torch.linalg.solve(lhs, (dt * B).unsqueeze(-1)).squeeze(-1)

    def forward(self, L: int, rate: float = 1.0, state: Tensor | None = None):
        """``K[c, h, l] = C dA^l dB`` (C, H, L) and ``K_state = C dA^{l+1} s`` (B, C, H, L)."""
        dA, dB = self.discretize(rate)
        C = self.C.to(dA.dtype)
        K = torch.einsum("chn,hnl->chl", C, krylov(L, dA, dB))
        if state is None:
            return K, None
        x1 = torch.einsum("hmn,bhn->bhm", dA, state.to(dA.dtype))
        return K, torch.einsum("chn,bhnl->bchl", C, krylov(L, dA, x1))

    def forward_state(self, u: Tensor, state: Tensor, rate: float = 1.0) -> Tensor:
        """State after the chunk ``u`` (B, H, L): ``dA^L s + Σ_j dA^{L-1-j} dB u_j``."""
        dA, dB = self.discretize(rate)
        v = dB.unsqueeze(-1) * u.flip(-1).unsqueeze(-2).to(dB.dtype)  # (B, H, N, L)
        AL, acc = power(u.shape[-1], dA, v)
        return torch.einsum("hmn,bhn->bhm", AL, state.to(dA.dtype)) + acc

    def step_params(self, rate: float = 1.0) -> dict[str, Tensor]:
        """``{"dA"}`` (H, N, N), ``"dB"`` (H, N), ``"C"`` (C, H, N)."""
        dA, dB = self.discretize(rate)
        return {"dA": dA, "dB": dB, "C": self.C.to(dA.dtype)}

    def step(self, u: Tensor, state: Tensor, params: dict[str, Tensor]):
        """``x' = dA x + dB u``; returns ``(C x'`` (B, C, H), ``x'`` (B, H, N))."""
        x = torch.einsum("hmn,bhn->bhm", params["dA"], state) + params["dB"] * u.unsqueeze(-1)
        return torch.einsum("chn,bhn->bch", params["C"], x), x

    def state_spec(self) -> tuple[tuple[int, ...], torch.dtype]:
        """Per-example state shape ``(H, N)`` and its (real) dtype."""
        return (self.H, self.N), real_dtype(self.inv_dt)


class LSSL(SSMLayer):
    """Linear state-space layer with a dense HiPPO state matrix (LSSL).

    Parameters
    ----------
    d_model, l_max, channels, bidirectional, dt_min, dt_max, dropout, lr, wd,
    check_finite, dtype:
        As :class:`~sciml_seq.torch.ssm.S4D`.
    d_state:
        ``N``, the real state size (any integer >= 1; even for ``"fout"``).
    init:
        HiPPO transition matrix: ``"legs"`` (default), ``"legt"``, ``"lagt"``,
        ``"fout"`` (alias ``"fourier"``); see :func:`sciml_seq.math.hippo.transition`.
    disc:
        ``"bilinear"`` (default), ``"zoh"``, ``"forward_euler"``, ``"backward_euler"``.

    Parameter names: ``kernel.inv_dt`` (H, 1), ``kernel.A`` (H, N, N),
    ``kernel.B`` (1, H, N), ``kernel.C`` (C', H, N), ``D`` (C, H),
    ``output_linear.0.weight`` (2H, C·H), ``output_linear.0.bias`` (2H,).  Δ, A
    and B carry the optimizer hint; to keep ``A`` fixed (the LSSL-fixed variant),
    set ``layer.kernel.A.requires_grad_(False)``.  State ``(B, H, N)`` real.
    """

    _hinted = ("inv_dt", "A", "B")

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int | None = None,
        *,
        channels: int = 1,
        bidirectional: bool = False,
        init: str = "legs",
        disc: str = "bilinear",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dropout: float = 0.0,
        lr: float | None = 1e-3,
        wd: float = 0.0,
        check_finite: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_common(
            d_model, d_state, l_max, channels, dt_min, dt_max, dropout, lr, wd, even_state=False
        )
        self.kernel = LSSLKernel(
            d_model,
            d_state,
            channels * (2 if bidirectional else 1),
            init=init,
            disc=disc,
            dt_min=dt_min,
            dt_max=dt_max,
            dtype=dtype,
        )
        self._build(
            d_model, d_state, l_max, channels, bidirectional, dropout, lr, wd, check_finite, dtype
        )

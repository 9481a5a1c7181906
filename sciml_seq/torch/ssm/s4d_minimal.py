"""S4D in about 60 lines: the whole idea of the layer, runnable, as the official
minimal ``models/s4/s4d.py`` of state-spaces/s4 shows it (written anew here).

A diagonal linear ODE per feature, ``x' = λ x + B u``, ``y = 2 Re(C x) + D u``,
discretised with zero-order hold and run as one long causal convolution (FFT).
With the same weights it equals ``S4D(d_model, d_state, init="lin")`` in
convolution mode (tested); the full :class:`~sciml_seq.torch.ssm.S4D` adds
recurrent steps, state forwarding, rate change, bidirectional and multi-head
kernels, other discretisations and initialisations, a finite ``l_max``, fast
kernels, dropout and input checks.

    layer = S4DMinimal(d_model=8, d_state=16)
    y = layer(torch.randn(2, 100, 8))          # (batch, length, d_model)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["S4DMinimal"]


class S4DMinimal(nn.Module):
    """``u (B, L, H) -> y (B, L, H)``; parameter names and shapes as in :class:`S4D`'s kernel."""

    def __init__(self, d_model: int, d_state: int = 64, dt_min=1e-3, dt_max=1e-1) -> None:
        super().__init__()
        H, N2 = d_model, d_state // 2
        lo, hi = math.log(dt_min), math.log(dt_max)
        self.inv_dt = nn.Parameter(torch.rand(H, 1) * (hi - lo) + lo)  # log Δ, log-uniform
        # S4D-Lin: λ_n = -1/2 + iπn, stored as λ = -exp(A_real) - i A_imag
        self.A_real = nn.Parameter(torch.full((H, N2), math.log(0.5)))
        self.A_imag = nn.Parameter((math.pi * torch.arange(N2)).clamp(min=1e-4).repeat(H, 1))
        pairs = torch.zeros(1, H, N2, 2)  # complex numbers as (re, im) pairs
        self.B = nn.Parameter(pairs.index_fill(-1, torch.tensor(0), 1.0))  # B = 1
        self.C = nn.Parameter(torch.randn(1, H, N2, 2) * math.sqrt(0.5))
        self.D = nn.Parameter(torch.randn(H))
        self.output_linear = nn.Linear(H, 2 * H)  # followed by a GLU

    def kernel(self, L: int) -> Tensor:
        """The convolution kernel ``K[h, l] = 2 Re Σ_n C_n dB_n dA_n^l``, shape ``(H, L)``."""
        dt = torch.exp(self.inv_dt)  # (H, 1)
        lam = torch.complex(-torch.exp(self.A_real), -self.A_imag)  # (H, N2)
        dtA = dt * lam
        dB = (torch.exp(dtA) - 1) / lam * torch.view_as_complex(self.B)[0]  # zero-order hold
        C = torch.view_as_complex(self.C)[0]
        powers = torch.exp(dtA.unsqueeze(-1) * torch.arange(L, device=lam.device))  # dA^l
        return 2 * torch.einsum("hn,hnl->hl", C * dB, powers).real

    def forward(self, u: Tensor) -> Tensor:
        L = u.shape[1]
        k_f = torch.fft.rfft(self.kernel(L), n=2 * L)  # zero padding: a linear, causal conv
        u_f = torch.fft.rfft(u.transpose(1, 2), n=2 * L)
        y = torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L].transpose(1, 2)  # (B, L, H)
        y = y + u * self.D
        return F.glu(self.output_linear(F.gelu(y)), dim=-1)

"""S4: the diagonal-plus-low-rank (DPLR) state-space layer (mirrors :mod:`sciml_seq.jax.ssm.s4`).

The state matrix is ``A = diag(λ_f) - Σ_r P_f[r] P_f[r]ᴴ`` on the
conjugate-extended state (a HiPPO matrix in its eigenbasis at
initialisation), discretised by the bilinear transform.  As in the official
``SSMKernelDPLR``, the parameter ``C`` holds **C-tilde** ``= C_f (I - dA^L)``
(first ``N/2`` entries) for ``L = l_max``, which turns the kernel's
generating function into a rational function evaluated at the ``L`` roots of
unity by Cauchy sums and a Woodbury correction, then an inverse FFT.  At rate
``r`` the same C-tilde is used with ``r·Δ`` and ``round(l_max / r)`` nodes (the
official route).

Unlike the official layer, C-tilde is formed once at construction (for the
``l_max`` given), not on the first forward pass; official checkpoints are
re-tuned to ``l_max`` on loading (:func:`load_official_state_dict`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...ssm import check_backend, check_common, dplr_init, retune_ctilde
from ..checks import check_float_dtype
from .kernels import conj_ext, dplr_dense, dplr_kernel, power
from .layer import (
    SSMLayer,
    as_complex,
    complex_dtype,
    init_complex_normal,
    init_log_dt,
    real_dtype,
)

__all__ = ["S4", "S4Kernel"]


class S4Kernel(nn.Module):
    """DPLR SSM kernel: parameters and the math of S4.

    Parameters (official ``SSMKernelDPLR`` names and shapes): ``inv_dt`` (H, 1),
    ``A_real``, ``A_imag`` (H, N2), ``B`` (1, H, N2, 2), ``C`` (channels, H, N2, 2)
    = C-tilde tuned to ``l_max``, ``P`` (rank, H, N2, 2).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        channels: int,
        *,
        l_max: int,
        init: str,
        rank: int | None,
        dt_min: float,
        dt_max: float,
        backend: str = "auto",
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dtype = check_float_dtype("dtype", torch.get_default_dtype() if dtype is None else dtype)
        self.H, self.N2, self.channels = int(d_model), int(d_state) // 2, int(channels)
        self.l_max = int(l_max)
        self.backend = check_backend(backend)
        det = dplr_init(init, d_state, d_model, rank)
        self.rank = det["P"].shape[0]
        inv_dt = init_log_dt(self.H, dt_min, dt_max, torch.float64)
        C = init_complex_normal(self.channels, self.H, self.N2, dtype=torch.float64)
        det["inv_dt"] = inv_dt.numpy()
        C_tilde = retune_ctilde({f"kernel.{k}": v for k, v in det.items()}, C.numpy(), 0, l_max)
        self.inv_dt = nn.Parameter(inv_dt.to(dtype))
        self.A_real = nn.Parameter(torch.as_tensor(det["A_real"], dtype=dtype))
        self.A_imag = nn.Parameter(torch.as_tensor(det["A_imag"], dtype=dtype))
        self.B = nn.Parameter(torch.as_tensor(det["B"], dtype=dtype))
        self.C = nn.Parameter(torch.as_tensor(C_tilde, dtype=dtype))
        self.P = nn.Parameter(torch.as_tensor(det["P"], dtype=dtype))

    # ---------------------------------------------------------------- parameters
    def params(self, rate: float = 1.0):
        """``dt`` (H, 1) (× rate); complex ``λ`` (H, N2), ``B`` (1, H, N2), C-tilde, ``P``."""
        rdt = real_dtype(self.inv_dt)
        dt = torch.exp(self.inv_dt.to(rdt)) * rate
        lam = torch.complex(-torch.exp(self.A_real.to(rdt)), -self.A_imag.to(rdt))
        return (
            dt,
            lam,
            as_complex(self.B, rdt),
            as_complex(self.C, rdt),
            as_complex(self.P, rdt),
        )

    def plain_C(self) -> Tensor:
        """The plain ``C`` (C, H, N2) from C-tilde: ``C_f = C̃_f (I - dA^{l_max})^{-1}``."""
        dt, lam, _, C, P = self.params()
        dA, _ = dplr_dense(dt, lam, P)
        M = torch.eye(dA.shape[-1], dtype=dA.dtype, device=dA.device) - power(self.l_max, dA)
        Cf = torch.linalg.solve(M.transpose(-1, -2), conj_ext(C).unsqueeze(-1)).squeeze(-1)
        return Cf[..., : self.N2]

    def dense_step_matrices(self, rate: float = 1.0):
        """Dense ``dA`` (H, N, N), ``dB`` (H, N) and plain ``C_f`` (C, H, N) on the full state."""
        dt, lam, B, _, P = self.params(rate)
        dA, dB = dplr_dense(dt, lam, P, B[0])
        return dA, dB, conj_ext(self.plain_C())

    # ---------------------------------------------------------------- conv mode
    def tuning(self, L: int, rate: float = 1.0) -> tuple[int, int]:
        """``(T, n)``: C-tilde length and number of roots of unity for ``L`` samples at ``rate``.

        The official rule: ``T = l_max``, doubled while ``round(rate · L) > T`` (the
        official layer then doubles its C-tilde in place); ``n = round(T / rate)``.
        """
        T = self.l_max
        while round(rate * L) > T or round(T / rate) < L:
            T *= 2
        return T, round(T / rate)

    def ctilde(self, T: int) -> Tensor:
        """C-tilde (C, H, N2) for length ``T = l_max · 2^k``: ``C̃_{2L} = C̃_L (I + dA^L)``."""
        C = self.params()[3]
        if T == self.l_max:
            return C
        dt, lam, _, _, P = self.params()
        dA, _ = dplr_dense(dt, lam, P)
        Cf, length = conj_ext(C), self.l_max
        while length < T:
            Cf = Cf + torch.einsum("chn,hnm->chm", Cf, power(length, dA))
            length *= 2
        return Cf[..., : self.N2]

    def forward(self, L: int, rate: float = 1.0, state: Tensor | None = None):
        """Kernel ``K`` (C, H, L) and, given ``state`` (B, H, N2), ``K_state`` (B, C, H, L).

        Evaluated at ``n`` roots of unity with the C-tilde of length ``T``
        (:meth:`tuning`): for ``L <= round(l_max / rate)``, ``T = l_max``.
        """
        T, n_nodes = self.tuning(L, rate)
        dt, lam, B, C, P = self.params(rate)
        if state is not None:
            # "un-bilinear" the state into the role of B: (I + dt/2 A) s / dt
            s = conj_ext(state.to(lam.dtype))
            Pf = conj_ext(P)
            As = s * conj_ext(lam) - torch.einsum("bhm,rhm,rhn->bhn", s, Pf.conj(), Pf)
            B = torch.cat([(s / dt + As / 2)[..., : self.N2], B], dim=0)
        if T != self.l_max:
            C = self.ctilde(T)
        k = dplr_kernel(dt, lam, B, C, P, n_nodes, L, self.backend)  # (nB, C, H, L)
        return k[-1], (k[:-1] if state is not None else None)

    def forward_state(self, u: Tensor, state: Tensor, rate: float = 1.0) -> Tensor:
        """State after the chunk ``u`` (B, H, L), by dense powers of ``dA`` (first N2 entries)."""
        dt, lam, B, _, P = self.params(rate)
        dA, dB = dplr_dense(dt, lam, P, B[0])
        v = dB.unsqueeze(-1) * u.flip(-1).unsqueeze(-2).to(dB.dtype)  # (B, H, N, L)
        AL, acc = power(u.shape[-1], dA, v)
        out = torch.einsum("hmn,bhn->bhm", AL, conj_ext(state.to(dA.dtype))) + acc
        return out[..., : self.N2]

    # ---------------------------------------------------------------- step mode
    def step_params(self, rate: float = 1.0) -> dict[str, Tensor]:
        """Linear-time (in N) bilinear step on the half state, via the Woodbury identity.

        ``(2/dt - A) x' = (2/dt + A) x + 2 B u`` with ``A = diag(λ) - P Pᴴ``:
        ``Dinv = (2/dt - λ)^{-1}``, ``E = 2/dt + λ``, ``Rm = (I + Pᴴ Dinv P)^{-1} Pᴴ Dinv``.
        The output uses the plain ``C``.
        """
        dt, lam, B, _, P = self.params(rate)
        Q = P.conj()
        Dinv = 1 / (2 / dt - lam)  # (H, N2)
        E = 2 / dt + lam
        gram = 2 * torch.einsum("rhn,hn,shn->hrs", Q, Dinv, P).real  # full-space sums
        R = torch.eye(self.rank, dtype=gram.dtype, device=gram.device) + gram
        Rm = torch.linalg.solve(R.to(Q.dtype), (Q * Dinv).transpose(0, 1))  # (H, R, N2)
        return {
            "Dinv": Dinv,
            "E": E,
            "P": P,
            "Rm": Rm.transpose(0, 1),
            "B": B[0],
            "C": self.plain_C(),
        }

    def step(self, u: Tensor, state: Tensor, params: dict[str, Tensor]):
        """One bilinear step on the half state (B, H, N2); output ``2 Re Σ C x'`` (B, C, H)."""
        P, Rm = params["P"], params["Rm"]
        qx = 2 * torch.einsum("rhn,bhn->brh", P.conj(), state).real.to(P.dtype)
        t = params["E"] * state - torch.einsum("rhn,brh->bhn", P, qx)
        t = t + 2 * params["B"] * u.unsqueeze(-1).to(t.dtype)
        rt = 2 * torch.einsum("rhn,bhn->brh", Rm, t).real.to(P.dtype)
        x = params["Dinv"] * (t - torch.einsum("rhn,brh->bhn", P, rt))
        y = 2 * torch.einsum("chn,bhn->bch", params["C"], x).real
        return y, x

    def state_spec(self) -> tuple[tuple[int, ...], torch.dtype]:
        """Per-example state shape ``(H, N2)`` (the kept half) and its complex dtype."""
        return (self.H, self.N2), complex_dtype(real_dtype(self.inv_dt))


class S4(SSMLayer):
    """DPLR state-space layer (S4), the official ``S4Block(mode="dplr")``.

    Parameters
    ----------
    d_model, d_state, channels, bidirectional, dt_min, dt_max, dropout, lr, wd,
    check_finite, backend, dtype:
        As :class:`~sciml_seq.torch.ssm.S4D` (``backend`` computes the Cauchy sums).
    l_max:
        Required: the length C-tilde is tuned to, and the longest kernel
        (``min(L, round(l_max / rate))`` samples are used).  Where a longer kernel
        is needed (state forwarding over a longer chunk, or rounding at odd
        lengths) C-tilde is doubled as the official layer does, without
        changing the stored parameter.
        As for S4D, the convolution sees only the last ``l_max`` inputs and
        the recurrence (``step``) all of them: they agree on the first ``l_max``
        outputs from a zero state and differ after.
    init:
        HiPPO measure: ``"legs"`` (default), ``"legt"`` (rank 2), ``"lagt"``,
        ``"fout"`` (alias ``"fourier"``).
    rank:
        Rank of the low-rank term (``None``: the measure's own, 2 for LegT, else 1).

    Parameter names: those of :class:`S4D` plus ``kernel.P`` (rank, H, N/2, 2);
    ``kernel.C`` is C-tilde.  The discretisation is always bilinear.  The
    recurrent step runs on the half state ``(B, H, N/2)`` in ``O(N)`` per step
    (the official "linear" step mode).
    """

    _hinted = ("inv_dt", "A_real", "A_imag", "B", "P")
    _official_kind = "s4"

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int | None = None,
        *,
        channels: int = 1,
        bidirectional: bool = False,
        init: str = "legs",
        rank: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dropout: float = 0.0,
        lr: float | None = 1e-3,
        wd: float = 0.0,
        check_finite: bool = True,
        backend: str = "auto",
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_common(
            d_model, d_state, l_max, channels, dt_min, dt_max, dropout, lr, wd, need_l_max=True
        )
        self.kernel = S4Kernel(
            d_model,
            d_state,
            channels * (2 if bidirectional else 1),
            l_max=l_max,
            init=init,
            rank=rank,
            dt_min=dt_min,
            dt_max=dt_max,
            backend=backend,
            dtype=dtype,
        )
        self._build(
            d_model, d_state, l_max, channels, bidirectional, dropout, lr, wd, check_finite, dtype
        )

"""S4: the DPLR state-space layer in JAX (mirrors :mod:`sciml_seq.torch.ssm.s4`).

Equinox modules acting on one example; see the PyTorch module for the math
(C-tilde tuned to ``l_max`` at construction, Cauchy + Woodbury kernel, the
official C-tilde route at other rates, linear-time half-state steps).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ...ssm import check_backend, check_common, dplr_init
from .kernels import conj_ext, dplr_dense, dplr_kernel, power
from .s4d import (
    JAX_BACKENDS,
    SSMLayer,
    as_complex,
    complex_dtype,
    default_float,
    init_complex_normal,
    init_log_dt,
    real_dtype,
)

__all__ = ["S4", "S4Kernel"]


class S4Kernel(eqx.Module):
    """DPLR SSM kernel (see :class:`sciml_seq.torch.ssm.S4Kernel`); one example at a time."""

    inv_dt: Array
    A_real: Array
    A_imag: Array
    B: Array
    C: Array
    P: Array
    H: int = eqx.field(static=True)
    N2: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    rank: int = eqx.field(static=True)
    l_max: int = eqx.field(static=True)
    backend: str = eqx.field(static=True)

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
        dtype=None,
        key: Array,
    ) -> None:
        dtype = default_float(dtype)
        self.H, self.N2, self.channels = int(d_model), int(d_state) // 2, int(channels)
        self.l_max = int(l_max)
        self.backend = check_backend(backend, JAX_BACKENDS)
        det = dplr_init(init, d_state, d_model, rank)
        self.rank = det["P"].shape[0]
        k_dt, k_c = jax.random.split(key)
        self.inv_dt = init_log_dt(self.H, dt_min, dt_max, dtype, k_dt)
        self.A_real = jnp.asarray(det["A_real"], dtype=dtype)
        self.A_imag = jnp.asarray(det["A_imag"], dtype=dtype)
        self.B = jnp.asarray(det["B"], dtype=dtype)
        self.P = jnp.asarray(det["P"], dtype=dtype)
        # C-tilde = C_f (I - dA^l_max) of a plain complex-normal C (traceable: jit/vmap work)
        self.C = init_complex_normal(self.channels, self.H, self.N2, dtype=dtype, key=k_c)
        dt, lam, _, C, P = self.params()
        dA, _ = dplr_dense(dt, lam, P)
        M = jnp.eye(dA.shape[-1], dtype=dA.dtype) - power(self.l_max, dA)
        C_tilde = jnp.einsum("chn,hnm->chm", conj_ext(C), M)[..., : self.N2]
        self.C = jnp.stack([C_tilde.real, C_tilde.imag], axis=-1).astype(dtype)

    def params(self, rate: float = 1.0):
        """``dt`` (H, 1) (× rate); complex ``λ`` (H, N2), ``B`` (1, H, N2), C-tilde, ``P``."""
        rdt = real_dtype(self.inv_dt)
        dt = jnp.exp(self.inv_dt.astype(rdt)) * rate
        lam = jax.lax.complex(-jnp.exp(self.A_real.astype(rdt)), -self.A_imag.astype(rdt))
        return (
            dt,
            lam,
            as_complex(self.B, rdt),
            as_complex(self.C, rdt),
            as_complex(self.P, rdt),
        )

    def plain_C(self) -> Array:
        """The plain ``C`` (C, H, N2) from C-tilde: ``C_f = C̃_f (I - dA^{l_max})^{-1}``."""
        dt, lam, _, C, P = self.params()
        dA, _ = dplr_dense(dt, lam, P)
        M = jnp.eye(dA.shape[-1], dtype=dA.dtype) - power(self.l_max, dA)
        Mt = jnp.broadcast_to(jnp.swapaxes(M, -1, -2), (C.shape[0], *M.shape))
        Cf = jnp.linalg.solve(Mt, conj_ext(C)[..., None])[..., 0]
        return Cf[..., : self.N2]

    def dense_step_matrices(self, rate: float = 1.0):
        """Dense ``dA`` (H, N, N), ``dB`` (H, N) and plain ``C_f`` (C, H, N) on the full state."""
        dt, lam, B, _, P = self.params(rate)
        dA, dB = dplr_dense(dt, lam, P, B[0])
        return dA, dB, conj_ext(self.plain_C())

    def tuning(self, L: int, rate: float = 1.0) -> tuple[int, int]:
        """``(T, n)``: C-tilde length and number of roots of unity (the official rule)."""
        T = self.l_max
        while round(rate * L) > T or round(T / rate) < L:
            T *= 2
        return T, round(T / rate)

    def ctilde(self, T: int) -> Array:
        """C-tilde (C, H, N2) for length ``T = l_max · 2^k``: ``C̃_{2L} = C̃_L (I + dA^L)``."""
        C = self.params()[3]
        if T == self.l_max:
            return C
        dt, lam, _, _, P = self.params()
        dA, _ = dplr_dense(dt, lam, P)
        Cf, length = conj_ext(C), self.l_max
        while length < T:
            Cf = Cf + jnp.einsum("chn,hnm->chm", Cf, power(length, dA))
            length *= 2
        return Cf[..., : self.N2]

    def __call__(self, L: int, rate: float = 1.0, state: Array | None = None):
        """Kernel ``K`` (C, H, L) and, given ``state`` (H, N2), ``K_state`` (C, H, L)."""
        T, n_nodes = self.tuning(L, rate)
        dt, lam, B, C, P = self.params(rate)
        if state is not None:
            s = conj_ext(state.astype(lam.dtype))  # (H, N)
            Pf = conj_ext(P)
            As = s * conj_ext(lam) - jnp.einsum("hm,rhm,rhn->hn", s, jnp.conj(Pf), Pf)
            B = jnp.concatenate([(s / dt + As / 2)[None, :, : self.N2], B], axis=0)
        if T != self.l_max:
            C = self.ctilde(T)
        k = dplr_kernel(dt, lam, B, C, P, n_nodes, L, self.backend)
        return k[-1], (k[0] if state is not None else None)

    def forward_state(self, u: Array, state: Array, rate: float = 1.0) -> Array:
        """State after the chunk ``u`` (H, L), by dense powers of ``dA`` (first N2 entries)."""
        dt, lam, B, _, P = self.params(rate)
        dA, dB = dplr_dense(dt, lam, P, B[0])
        v = dB[..., None] * u[..., ::-1][:, None, :].astype(dB.dtype)  # (H, N, L)
        AL, acc = power(u.shape[-1], dA, v)
        out = jnp.einsum("hmn,hn->hm", AL, conj_ext(state.astype(dA.dtype))) + acc
        return out[..., : self.N2]

    def step_params(self, rate: float = 1.0) -> dict[str, Array]:
        """Linear-time bilinear step matrices (see the PyTorch ``S4Kernel.step_params``)."""
        dt, lam, B, _, P = self.params(rate)
        Q = jnp.conj(P)
        Dinv = 1 / (2 / dt - lam)
        E = 2 / dt + lam
        gram = 2 * jnp.einsum("rhn,hn,shn->hrs", Q, Dinv, P).real
        R = jnp.eye(self.rank, dtype=gram.dtype) + gram
        Rm = jnp.linalg.solve(R.astype(Q.dtype), jnp.swapaxes(Q * Dinv, 0, 1))  # (H, R, N2)
        return {
            "Dinv": Dinv,
            "E": E,
            "P": P,
            "Rm": jnp.swapaxes(Rm, 0, 1),
            "B": B[0],
            "C": self.plain_C(),
        }

    def step(self, u: Array, state: Array, params: dict[str, Array]):
        """One bilinear step on the half state (H, N2); output ``2 Re Σ C x'`` (C, H)."""
        P, Rm = params["P"], params["Rm"]
        qx = (2 * jnp.einsum("rhn,hn->rh", jnp.conj(P), state).real).astype(P.dtype)
        t = params["E"] * state - jnp.einsum("rhn,rh->hn", P, qx)
        t = t + 2 * params["B"] * u[:, None].astype(t.dtype)
        rt = (2 * jnp.einsum("rhn,hn->rh", Rm, t).real).astype(P.dtype)
        x = params["Dinv"] * (t - jnp.einsum("rhn,rh->hn", P, rt))
        y = 2 * jnp.einsum("chn,hn->ch", params["C"], x).real
        return y, x

    def state_spec(self):
        """Per-example state shape ``(H, N2)`` (the kept half) and its complex dtype."""
        return (self.H, self.N2), complex_dtype(real_dtype(self.inv_dt))


class S4(SSMLayer):
    """DPLR state-space layer (S4); see :class:`sciml_seq.torch.ssm.S4`.

    Same arguments plus ``key``.
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
        dtype=None,
        key: Array,
    ) -> None:
        check_common(
            d_model, d_state, l_max, channels, dt_min, dt_max, dropout, lr, wd, need_l_max=True
        )
        k_kernel, k_rest = jax.random.split(key)
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
            key=k_kernel,
        )
        self._build(
            d_model,
            d_state,
            l_max,
            channels,
            bidirectional,
            dropout,
            lr,
            wd,
            check_finite,
            dtype,
            k_rest,
        )

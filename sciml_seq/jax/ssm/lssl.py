"""LSSL: the dense linear state-space layer in JAX (mirrors :mod:`sciml_seq.torch.ssm.lssl`).

Equinox modules acting on one example; see the PyTorch module for the math.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ...checks import check_choice
from ...ssm import (
    DISCRETIZATIONS,
    check_common,
    dense_init,
)
from .kernels import krylov, power
from .s4d import SSMLayer, default_float, init_log_dt, real_dtype

__all__ = ["LSSL", "LSSLKernel"]


class LSSLKernel(eqx.Module):
    """Dense real SSM kernel (see :class:`sciml_seq.torch.ssm.LSSLKernel`), one example."""

    inv_dt: Array
    A: Array
    B: Array
    C: Array
    H: int = eqx.field(static=True)
    N: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    disc: str = eqx.field(static=True)

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
        dtype=None,
        key: Array,
    ) -> None:
        dtype = default_float(dtype)
        self.H, self.N, self.channels = int(d_model), int(d_state), int(channels)
        self.disc = check_choice("disc", disc, DISCRETIZATIONS)
        det = dense_init(init, d_state, d_model)
        k_dt, k_c = jax.random.split(key)
        self.inv_dt = init_log_dt(self.H, dt_min, dt_max, dtype, k_dt)
        self.A = jnp.asarray(det["A"], dtype=dtype)
        self.B = jnp.asarray(det["B"], dtype=dtype)
        self.C = jax.random.normal(k_c, (self.channels, self.H, self.N), dtype=dtype)

    def discretize(self, rate: float = 1.0):
        """``dA`` (H, N, N) and ``dB`` (H, N) with step ``Δ·rate``."""
        rdt = real_dtype(self.inv_dt)
        dt = jnp.exp(self.inv_dt.astype(rdt)) * rate
        A, B = self.A.astype(rdt), self.B.astype(rdt)[0]
        eye = jnp.eye(self.N, dtype=rdt)
        dtA = dt[..., None] * A
        if self.disc == "zoh":
            aug = jnp.zeros((self.H, self.N + 1, self.N + 1), dtype=rdt)
            aug = aug.at[:, : self.N, : self.N].set(dtA).at[:, : self.N, self.N].set(dt * B)
            E = jax.vmap(jax.scipy.linalg.expm)(aug)
            return E[:, : self.N, : self.N], E[:, : self.N, self.N]
        if self.disc == "bilinear":
            lhs = eye - dtA / 2
            dA = jnp.linalg.solve(lhs, eye + dtA / 2)
            return dA, jnp.linalg.solve(lhs, (dt * B)[..., None])[..., 0]
        if self.disc == "forward_euler":
            return eye + dtA, dt * B
        lhs = eye - dtA
        dA = jnp.linalg.solve(lhs, jnp.broadcast_to(eye, lhs.shape))
        return dA, jnp.linalg.solve(lhs, (dt * B)[..., None])[..., 0]

    def __call__(self, L: int, rate: float = 1.0, state: Array | None = None):
        """Kernel ``K`` (C, H, L) and, given ``state`` (H, N), ``K_state`` (C, H, L)."""
        dA, dB = self.discretize(rate)
        C = self.C.astype(dA.dtype)
        K = jnp.einsum("chn,hnl->chl", C, krylov(L, dA, dB))
        if state is None:
            return K, None
        x1 = jnp.einsum("hmn,hn->hm", dA, state.astype(dA.dtype))
        return K, jnp.einsum("chn,hnl->chl", C, krylov(L, dA, x1))

    def forward_state(self, u: Array, state: Array, rate: float = 1.0) -> Array:
        """State after the chunk ``u`` (H, L)."""
        dA, dB = self.discretize(rate)
        v = dB[..., None] * u[..., ::-1][:, None, :].astype(dB.dtype)  # (H, N, L)
        AL, acc = power(u.shape[-1], dA, v)
        return jnp.einsum("hmn,hn->hm", AL, state.astype(dA.dtype)) + acc

    def step_params(self, rate: float = 1.0) -> dict[str, Array]:
        """``{"dA"}`` (H, N, N), ``"dB"`` (H, N), ``"C"`` (C, H, N)."""
        dA, dB = self.discretize(rate)
        return {"dA": dA, "dB": dB, "C": self.C.astype(dA.dtype)}

    def step(self, u: Array, state: Array, params: dict[str, Array]):
        """``x' = dA x + dB u`` (u (H,)); returns ``(C x'`` (C, H), ``x'`` (H, N))."""
        x = jnp.einsum("hmn,hn->hm", params["dA"], state) + params["dB"] * u[:, None]
        return jnp.einsum("chn,hn->ch", params["C"], x), x

    def state_spec(self):
        """Per-example state shape ``(H, N)`` and its (real) dtype."""
        return (self.H, self.N), real_dtype(self.inv_dt)


class LSSL(SSMLayer):
    """Dense linear state-space layer (LSSL); see :class:`sciml_seq.torch.ssm.LSSL`.

    Same arguments plus ``key``.  State ``(H, N)`` real.
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
        dtype=None,
        key: Array,
    ) -> None:
        check_common(
            d_model, d_state, l_max, channels, dt_min, dt_max, dropout, lr, wd, even_state=False
        )
        k_kernel, k_rest = jax.random.split(key)
        self.kernel = LSSLKernel(
            d_model,
            d_state,
            channels * (2 if bidirectional else 1),
            init=init,
            disc=disc,
            dt_min=dt_min,
            dt_max=dt_max,
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

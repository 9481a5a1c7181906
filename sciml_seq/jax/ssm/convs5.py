"""ConvS5: S5 over 2-D fields with convolutional input and output maps (mirrors
:mod:`sciml_seq.torch.ssm.convs5`).

Equinox module acting on one example: a sequence of fields is ``(length, U, H,
W)``, a state ``(P', H, W)`` complex, ``dt`` ``(length,)``; ``jax.vmap``
batches them.  Same constructor arguments, parameter names and numbers as the
PyTorch layer.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ...checks import check_choice
from ...errors import DTypeError, ShapeError
from ...s5 import CONV_PADDINGS, check_kernel_size, check_s5, s5_init, trunc_normal_scale
from ...ssm import check_rate, hints
from .s4d import complex_dtype, default_float, glu_head, real_dtype
from .s5 import check_dt, check_finite_array, s5_discretize
from .scan import SCAN_METHODS, linear_scan

__all__ = ["CONV_PADDINGS", "ConvS5"]


def _conv(x: Array, weight: Array, padding: str) -> Array:
    """'Same' 2-D convolution of ``x`` (N, Cin, H, W) with ``weight`` (Cout, Cin, k, k)."""
    p = weight.shape[-1] // 2
    if padding == "circular" and p:
        x = jnp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="wrap")
        pads = [(0, 0), (0, 0)]
    else:
        pads = [(p, p), (p, p)]
    return jax.lax.conv_general_dilated(
        x, weight, (1, 1), pads, dimension_numbers=("NCHW", "OIHW", "NCHW")
    )


class ConvS5(eqx.Module):
    """Convolutional S5 layer; see :class:`sciml_seq.torch.ssm.ConvS5`.

    Same arguments plus ``key``.  Shapes: ``__call__(u (L, U, H, W), state=None,
    *, rate=1.0, dt=None) -> (y (L, U, H, W), next_state (P', H, W))``.
    """

    Lambda_re: Array
    Lambda_im: Array
    B: Array
    C: Array
    log_step: Array
    D: Array
    output_linear: tuple[eqx.nn.Linear]
    dropout: eqx.nn.Dropout
    d_model: int = eqx.field(static=True)
    d_state: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    padding: str = eqx.field(static=True)
    blocks: int = eqx.field(static=True)
    n_states: int = eqx.field(static=True)
    conj_sym: bool = eqx.field(static=True)
    disc: str = eqx.field(static=True)
    clip_eigs: bool = eqx.field(static=True)
    lr: float | None = eqx.field(static=True)
    wd: float = eqx.field(static=True)
    check_finite: bool = eqx.field(static=True)
    scan: str = eqx.field(static=True)

    _hinted = ("Lambda_re", "Lambda_im", "B", "log_step")

    def __init__(
        self,
        d_model: int,
        d_state: int = 32,
        *,
        kernel_size: int = 3,
        padding: str = "zeros",
        blocks: int = 1,
        conj_sym: bool = True,
        disc: str = "zoh",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        clip_eigs: bool = False,
        dropout: float = 0.0,
        lr: float | None = 1e-3,
        wd: float = 0.0,
        check_finite: bool = True,
        scan: str = "parallel",
        dtype=None,
        key: Array,
    ) -> None:
        self.disc = check_s5(d_model, d_state, blocks, disc, dt_min, dt_max, dropout, lr, wd)
        self.kernel_size = check_kernel_size(kernel_size)
        self.padding = check_choice("padding", padding, CONV_PADDINGS)
        self.scan = check_choice("scan", scan, SCAN_METHODS)
        self.d_model, self.d_state, self.blocks = int(d_model), int(d_state), int(blocks)
        self.conj_sym, self.clip_eigs = bool(conj_sym), bool(clip_eigs)
        self.check_finite = bool(check_finite)
        self.lr = None if lr is None else float(lr)
        self.wd = float(wd)
        dtype = default_float(dtype)
        cdt = complex_dtype(dtype)
        U, k = self.d_model, self.kernel_size
        lam, V = s5_init(d_state, blocks, conj_sym)
        P = V.shape[0]
        Vj = jnp.asarray(V, dtype=cdt)
        keys = iter(jax.random.split(key, 6))

        def lecun(fan_in: int, *shape: int) -> Array:
            z = jax.random.truncated_normal(next(keys), -2.0, 2.0, shape, dtype=dtype)
            return z * trunc_normal_scale(fan_in)

        B = jnp.einsum("qp,puij->quij", Vj.conj().T, lecun(U * k * k, P, U, k, k).astype(cdt))
        C0 = jax.lax.complex(lecun(P * k * k, U, P, k, k), lecun(P * k * k, U, P, k, k))
        C = jnp.einsum("upij,pq->uqij", C0.astype(cdt), Vj)
        self.Lambda_re = jnp.asarray(lam.real, dtype=dtype)
        self.Lambda_im = jnp.asarray(lam.imag, dtype=dtype)
        self.B = jnp.stack([B.real, B.imag], -1).astype(dtype)
        self.C = jnp.stack([C.real, C.imag], -1).astype(dtype)
        lo, hi = math.log(dt_min), math.log(dt_max)
        self.log_step = jax.random.uniform(next(keys), (lam.size, 1), dtype=dtype) * (hi - lo) + lo
        self.D = jax.random.normal(next(keys), (U,), dtype=dtype)
        self.n_states = int(lam.size)
        self.dropout = eqx.nn.Dropout(float(dropout))
        self.output_linear = (eqx.nn.Linear(U, 2 * U, dtype=dtype, key=next(keys)),)

    @property
    def optim_hints(self) -> dict[str, dict[str, float]]:
        """Optimizer hints of Λ, B and the step (as S5)."""
        return hints(self._hinted, self.lr, self.wd)

    # ---------------------------------------------------------------- pieces
    def discretize(self, step_scale: Array | float = 1.0) -> tuple[Array, Array]:
        """``Lambda_bar`` and ``gain``: (P',) or ``step_scale``'s shape + (P',)."""
        rdt = real_dtype(self.Lambda_re)
        re = self.Lambda_re.astype(rdt)
        if self.clip_eigs:
            re = jnp.minimum(re, -1e-4)
        lam = jax.lax.complex(re, self.Lambda_im.astype(rdt))
        step = jnp.exp(self.log_step.astype(rdt)[:, 0])
        step = step * (jnp.asarray(step_scale, dtype=rdt)[..., None])
        return s5_discretize(lam, step, self.disc)

    def input_map(self, u: Array) -> Array:
        """``B * u``: (N, U, H, W) real -> (N, P', H, W) complex."""
        B = self.B.astype(u.dtype)
        w = jnp.concatenate([B[..., 0], B[..., 1]], 0)
        re, im = jnp.split(_conv(u, w, self.padding), 2, axis=1)
        return jax.lax.complex(re, im)

    def output_map(self, x: Array) -> Array:
        """``2 Re(C * x)`` (``Re`` without ``conj_sym``): (N, P', H, W) -> (N, U, H, W)."""
        C = self.C.astype(x.real.dtype)
        w = jnp.concatenate([C[..., 0], -C[..., 1]], 1)
        y = _conv(jnp.concatenate([x.real, x.imag], 1), w, self.padding)
        return 2 * y if self.conj_sym else y

    def _check_input(self, u: Array, name: str, ndim: int) -> Array:
        shape = "(length, channels, H, W)" if ndim == 4 else "(channels, H, W)"
        u = jnp.asarray(u)
        if u.ndim != ndim or u.shape[-3] != self.d_model or (ndim == 4 and u.shape[0] < 1):
            raise ShapeError(
                f"{name}: expected shape {shape} with {self.d_model} channels (d_model); "
                f"got {tuple(u.shape)}"
            )
        if not jnp.issubdtype(u.dtype, jnp.floating):
            raise DTypeError(f"{name}: expected a floating-point array; got {u.dtype}")
        return check_finite_array(u, name) if self.check_finite else u

    def _check_state(self, state: object, u: Array) -> Array:
        want = (self.n_states, *u.shape[-2:])
        if not hasattr(state, "shape") or tuple(state.shape) != want:
            got = tuple(state.shape) if hasattr(state, "shape") else type(state).__name__
            raise ShapeError(
                f"state: expected shape {want} (states, H, W) as returned by default_state; "
                f"got {got}"
            )
        if not jnp.iscomplexobj(state):
            raise DTypeError(f"state: expected a complex tensor; got {state.dtype}")
        return state

    # ---------------------------------------------------------------- scan mode
    def ssm_unchecked(
        self, u: Array, state: Array | None, step_scale: Array | float
    ) -> tuple[Array, Array]:
        """``y_ssm`` (L, U, H, W) and the final state; ``step_scale`` a float or (L,)."""
        L = u.shape[0]
        bar, gain = self.discretize(step_scale)
        bar = jnp.broadcast_to(bar, (L, self.n_states))
        gain = jnp.broadcast_to(gain, (L, self.n_states))
        Bu = gain[..., None, None] * self.input_map(u)  # (L, P', H, W)
        h0 = None if state is None else state.astype(Bu.dtype)
        h = linear_scan(jnp.broadcast_to(bar[..., None, None], Bu.shape), Bu, h0, method=self.scan)
        y = self.output_map(h) + self.D.astype(u.dtype)[:, None, None] * u
        return y, h[-1]

    def ssm(
        self,
        u: Array,
        state: Array | None = None,
        *,
        rate: float = 1.0,
        dt: Array | None = None,
    ) -> tuple[Array, Array]:
        """The linear part: ``(y_ssm (L, U, H, W), final state (P', H, W))``."""
        rate = check_rate(rate)
        u = self._check_input(u, "u", 4)
        if state is not None:
            state = self._check_state(state, u)
        scale = rate
        if dt is not None:
            scale = check_dt(dt, (u.shape[0],), "(length,)", self.check_finite) * rate
        dtype = jnp.promote_types(u.dtype, real_dtype(self.D))
        y, last = self.ssm_unchecked(u.astype(dtype), state, scale)
        return y.astype(u.dtype), last

    def _head(self, y: Array, key: Array | None, inference: bool | None) -> Array:
        """:func:`~sciml_seq.jax.ssm.s4d.glu_head` over the channel axis (``-3``)."""
        y = glu_head(jnp.moveaxis(y, -3, -1), self.output_linear[0], self.dropout, key, inference)
        return jnp.moveaxis(y, -1, -3)

    def __call__(
        self,
        u: Array,
        state: Array | None = None,
        *,
        rate: float = 1.0,
        dt: Array | None = None,
        key: Array | None = None,
        inference: bool | None = None,
    ) -> tuple[Array, Array]:
        """``u`` (L, U, H, W) -> ``(y (L, U, H, W), next_state (P', H, W))``."""
        y, last = self.ssm(u, state, rate=rate, dt=dt)
        return self._head(y, key, inference), last

    # ---------------------------------------------------------------- step mode
    def default_state(self, height: int, width: int) -> Array:
        """Zero state ``(P', H, W)`` complex."""
        dtype = complex_dtype(real_dtype(self.Lambda_re))
        return jnp.zeros((self.n_states, height, width), dtype=dtype)

    def step(
        self,
        u_t: Array,
        state: Array,
        *,
        rate: float = 1.0,
        dt: Array | None = None,
        key: Array | None = None,
        inference: bool | None = None,
    ) -> tuple[Array, Array]:
        """One frame: ``u_t`` (U, H, W) -> ``(y_t (U, H, W), next state)``; ``dt`` a scalar."""
        rate = check_rate(rate)
        u_t = self._check_input(u_t, "u_t", 3)
        state = self._check_state(state, u_t)
        scale = rate
        if dt is not None:
            scale = check_dt(dt, (), "()", self.check_finite) * rate
        dtype = jnp.promote_types(u_t.dtype, real_dtype(self.D))
        x = u_t.astype(dtype)
        bar, gain = self.discretize(scale)
        new = bar[:, None, None] * state + gain[:, None, None] * self.input_map(x[None])[0]
        y = self.output_map(new[None])[0] + self.D.astype(dtype)[:, None, None] * x
        return self._head(y.astype(u_t.dtype), key, inference), new

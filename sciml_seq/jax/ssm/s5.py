"""S5: MIMO diagonal state-space layer, parallel scan (mirrors :mod:`sciml_seq.torch.ssm.s5`).

Equinox module acting on one example: a sequence is ``(length, channels)``, a
state ``(P',)`` complex, a time-step sequence ``dt`` ``(length,)``; ``jax.vmap``
batches them.  Same constructor arguments, parameter names and numbers as the
PyTorch layer (:func:`sciml_seq.convert.torch_to_jax` moves weights); the scan
is ``jax.lax.associative_scan`` (:func:`~sciml_seq.jax.ssm.scan.linear_scan`).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ...checks import check_choice
from ...errors import DTypeError, NonFiniteError, OptionError, ShapeError
from ...s5 import check_s5, s5_init, trunc_normal_scale
from ...ssm import check_rate, hints
from .s4d import as_complex, complex_dtype, default_float, glu_head, real_dtype
from .scan import SCAN_METHODS, linear_scan

__all__ = ["S5", "check_dt", "check_finite_array", "s5_discretize", "s5_init_params"]


def check_finite_array(x: Array, name: str) -> Array:
    """``x`` if finite: NonFiniteError now, or ``eqx.error_if`` under a trace."""
    msg = f"{name}: expected finite values; got NaN or infinity"
    if isinstance(x, jax.core.Tracer):
        return eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), msg)
    if not bool(jnp.all(jnp.isfinite(x))):
        raise NonFiniteError(msg)
    return x


def s5_discretize(lam: Array, step: Array, disc: str) -> tuple[Array, Array]:
    """``(Lambda_bar, gain)`` with ``B_bar = gain[..., None] * B`` (see the PyTorch twin)."""
    z = lam * step
    if disc == "zoh":
        bar = jnp.exp(z)
        return bar, (bar - 1) / lam
    den = 1 - z / 2
    return (1 + z / 2) / den, step / den


def s5_init_params(
    d_in: int,
    d_out: int,
    d_state: int,
    blocks: int,
    conj_sym: bool,
    n_c: int,
    dt_min: float,
    dt_max: float,
    dtype,
    key: Array,
) -> dict[str, Array]:
    """Random S5 parameters (see :func:`sciml_seq.torch.ssm.s5.s5_init_params`)."""
    lam, V = s5_init(d_state, blocks, conj_sym)
    P = V.shape[0]
    keys = iter(jax.random.split(key, 2 + 2 * n_c))

    cdt = complex_dtype(dtype)
    Vj = jnp.asarray(V, dtype=cdt)

    def lecun(*shape: int) -> Array:  # traceable (modules are built under filter_eval_shape)
        z = jax.random.truncated_normal(next(keys), -2.0, 2.0, shape, dtype=dtype)
        return z * trunc_normal_scale(P)

    B = Vj.conj().T @ lecun(P, d_in).astype(cdt)
    C = jnp.concatenate(
        [jax.lax.complex(lecun(d_out, P), lecun(d_out, P)).astype(cdt) @ Vj for _ in range(n_c)],
        axis=-1,
    )
    lo, hi = math.log(dt_min), math.log(dt_max)
    log_step = jax.random.uniform(next(keys), (lam.size, 1), dtype=dtype) * (hi - lo) + lo

    def t(x) -> Array:
        return jnp.asarray(x, dtype=dtype)

    return {
        "Lambda_re": t(lam.real),
        "Lambda_im": t(lam.imag),
        "B": t(jnp.stack([B.real, B.imag], -1)),
        "C": t(jnp.stack([C.real, C.imag], -1)),
        "log_step": log_step,
    }


def check_dt(dt: object, shape: tuple[int, ...], what: str, check_finite: bool) -> Array:
    """``dt`` a real array of ``shape`` with finite values > 0 (values checked if asked)."""
    dt = jnp.asarray(dt)
    if tuple(dt.shape) != tuple(shape):
        raise ShapeError(f"dt: expected shape {what} = {tuple(shape)}; got {tuple(dt.shape)}")
    if not jnp.issubdtype(dt.dtype, jnp.floating):
        raise DTypeError(f"dt: expected a real floating-point tensor; got {dt.dtype}")
    if check_finite:
        dt = check_finite_array(dt, "dt")
        if isinstance(dt, jax.core.Tracer):
            dt = eqx.error_if(dt, ~jnp.all(dt > 0), "dt: expected values > 0 (time steps)")
        elif not bool(jnp.all(dt > 0)):
            raise OptionError(f"dt: expected values > 0 (time steps); got {float(dt.min())!r}")
    return dt


class S5(eqx.Module):
    """MIMO diagonal state-space layer (S5); see :class:`sciml_seq.torch.ssm.S5`.

    Same arguments plus ``key`` (a PRNG key for the initialisation); ``dtype=None``
    is equinox's default float (float64 with ``jax_enable_x64``).

    Shapes: ``__call__(u (L, H), state=None, *, rate=1.0, dt=None, key=None) ->
    (y (L, H), next_state (P',) or None when bidirectional)``.
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
    blocks: int = eqx.field(static=True)
    n_states: int = eqx.field(static=True)
    conj_sym: bool = eqx.field(static=True)
    bidirectional: bool = eqx.field(static=True)
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
        d_state: int = 64,
        *,
        blocks: int = 1,
        conj_sym: bool = True,
        bidirectional: bool = False,
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
        self.scan = check_choice("scan", scan, SCAN_METHODS)
        self.d_model, self.d_state, self.blocks = int(d_model), int(d_state), int(blocks)
        self.conj_sym, self.bidirectional = bool(conj_sym), bool(bidirectional)
        self.clip_eigs, self.check_finite = bool(clip_eigs), bool(check_finite)
        self.lr = None if lr is None else float(lr)
        self.wd = float(wd)
        dtype = default_float(dtype)
        H = self.d_model
        k_init, k_d, k_lin = jax.random.split(key, 3)
        init = s5_init_params(
            H, H, d_state, blocks, conj_sym, 2 if bidirectional else 1, dt_min, dt_max, dtype,
            k_init,
        )  # fmt: skip
        self.Lambda_re, self.Lambda_im = init["Lambda_re"], init["Lambda_im"]
        self.B, self.C, self.log_step = init["B"], init["C"], init["log_step"]
        self.n_states = int(self.Lambda_re.shape[0])
        self.D = jax.random.normal(k_d, (H,), dtype=dtype)
        self.dropout = eqx.nn.Dropout(float(dropout))
        self.output_linear = (eqx.nn.Linear(H, 2 * H, dtype=dtype, key=k_lin),)

    @property
    def optim_hints(self) -> dict[str, dict[str, float]]:
        """Optimizer hints of Λ, B and the step (see ``param_groups.optax_labels``)."""
        return hints(self._hinted, self.lr, self.wd)

    # ---------------------------------------------------------------- parameters
    def params(self) -> tuple[Array, Array, Array, Array]:
        """Complex ``λ`` (P',), ``B`` (P', H), ``C`` (H, P' or 2P'), real ``Δ`` (P',)."""
        rdt = real_dtype(self.Lambda_re)
        re = self.Lambda_re.astype(rdt)
        if self.clip_eigs:
            re = jnp.minimum(re, -1e-4)
        lam = jax.lax.complex(re, self.Lambda_im.astype(rdt))
        step = jnp.exp(self.log_step.astype(rdt)[:, 0])
        return lam, as_complex(self.B, rdt), as_complex(self.C, rdt), step

    def discretize(self, rate: float = 1.0, dt: Array | None = None):
        """``Lambda_bar``, ``gain`` (P',) or (L, P') for ``dt`` (L,); and ``λ``-free ``B, C``."""
        lam, B, C, step = self.params()
        step = step * rate
        if dt is not None:
            step = step * dt.astype(step.dtype)[..., None]
        bar, gain = s5_discretize(lam, step, self.disc)
        return bar, gain, B, C

    # ------------------------------------------------------------------- checks
    def _check_input(self, u: Array, name: str, shape: str, ndim: int) -> Array:
        u = jnp.asarray(u)
        if u.ndim != ndim or u.shape[-1] != self.d_model or (ndim == 2 and u.shape[0] < 1):
            raise ShapeError(
                f"{name}: expected shape {shape} with {self.d_model} channels (d_model); "
                f"got {u.shape}"
            )
        if not jnp.issubdtype(u.dtype, jnp.floating):
            raise DTypeError(f"{name}: expected a floating-point array; got {u.dtype}")
        return check_finite_array(u, name) if self.check_finite else u

    def _check_state(self, state: object) -> Array:
        want = (self.n_states,)
        if state is None or not hasattr(state, "shape"):
            raise OptionError(
                f"state: expected the {want} array returned by default_state(); got {state!r}"
            )
        if tuple(state.shape) != want:
            raise ShapeError(
                f"state: expected shape {want} (states) as returned by default_state() "
                f"(vmap it for a batch); got {tuple(state.shape)}"
            )
        if not jnp.iscomplexobj(state):
            raise DTypeError(f"state: expected a complex tensor; got {state.dtype}")
        return state

    def _no_state_bidirectional(self, what: str) -> None:
        if self.bidirectional:
            raise OptionError(
                f"{what}: a bidirectional layer (bidirectional=True) is not causal and has "
                f"no recurrent state; build it with bidirectional=False"
            )

    def _readout(self, C: Array, x: Array) -> Array:
        y = jnp.einsum("hp,...p->...h", C, x)
        return 2 * y.real if self.conj_sym else y.real

    # ---------------------------------------------------------------- scan mode
    def ssm(
        self,
        u: Array,
        state: Array | None = None,
        *,
        rate: float = 1.0,
        dt: Array | None = None,
    ) -> tuple[Array, Array | None]:
        """The linear SSM: ``u`` (L, H) -> ``(y_ssm (L, H), final state or None)``."""
        rate = check_rate(rate)
        u = self._check_input(u, "u", "(length, channels)", 2)
        L = u.shape[0]
        if state is not None:
            self._no_state_bidirectional("state")
            state = self._check_state(state)
        if dt is not None:
            dt = check_dt(dt, (L,), "(length,)", self.check_finite)
        dtype = jnp.promote_types(u.dtype, real_dtype(self.D))
        x = u.astype(dtype)
        bar, gain, B, C = self.discretize(rate, dt)
        Bu = gain * jnp.einsum("ph,lh->lp", B, x.astype(B.dtype))  # (L, P')
        a = jnp.broadcast_to(bar, Bu.shape)
        h0 = None if state is None else state.astype(Bu.dtype)
        P = self.n_states
        h = linear_scan(a, Bu, h0, method=self.scan)
        y = self._readout(C[:, :P], h)
        if self.bidirectional:
            y = y + self._readout(C[:, P:], linear_scan(a, Bu, reverse=True, method=self.scan))
        y = y + self.D.astype(dtype) * x
        return y.astype(u.dtype), None if self.bidirectional else h[-1]

    def _head(self, y: Array, key: Array | None, inference: bool | None) -> Array:
        return glu_head(y, self.output_linear[0], self.dropout, key, inference)

    def __call__(
        self,
        u: Array,
        state: Array | None = None,
        *,
        rate: float = 1.0,
        dt: Array | None = None,
        key: Array | None = None,
        inference: bool | None = None,
    ) -> tuple[Array, Array | None]:
        """``u`` (L, H) -> ``(y (L, H), next_state)``; see the PyTorch ``forward``.

        ``key`` drives dropout (needed when ``dropout > 0`` and not ``inference``).
        """
        y, next_state = self.ssm(u, state, rate=rate, dt=dt)
        return self._head(y, key, inference), next_state

    # ---------------------------------------------------------------- step mode
    def default_state(self) -> Array:
        """Zero state ``(P',)`` complex."""
        self._no_state_bidirectional("default_state")
        return jnp.zeros(self.n_states, dtype=complex_dtype(real_dtype(self.Lambda_re)))

    def step_params(self, rate: float = 1.0) -> dict[str, Array]:
        """``Lambda_bar`` (P',), ``B_bar`` (P', H), ``C`` (H, P'): compute once per generation."""
        bar, gain, B, C = self.discretize(check_rate(rate))
        return {"Lambda_bar": bar, "B_bar": gain[:, None] * B, "C": C}

    def step(
        self,
        u_t: Array,
        state: Array,
        *,
        params: dict[str, Array] | None = None,
        rate: float = 1.0,
        dt: Array | None = None,
        key: Array | None = None,
        inference: bool | None = None,
    ) -> tuple[Array, Array]:
        """One token: ``u_t`` (H,) -> ``(y_t (H,), next state (P',))``; ``dt`` a scalar step."""
        self._no_state_bidirectional("step")
        u_t = self._check_input(u_t, "u_t", "(channels,)", 1)
        state = self._check_state(state)
        dtype = jnp.promote_types(u_t.dtype, real_dtype(self.D))
        x = u_t.astype(dtype)
        if dt is not None:
            dt = check_dt(dt, (), "()", self.check_finite)
            bar, gain, B, C = self.discretize(check_rate(rate), dt)
            Bu = gain * (B @ x.astype(B.dtype))
        else:
            params = self.step_params(rate) if params is None else params
            bar, C = params["Lambda_bar"], params["C"]
            Bu = params["B_bar"] @ x.astype(C.dtype)
        new_state = bar * state + Bu
        y = self._readout(C, new_state) + self.D.astype(dtype) * x
        return self._head(y.astype(u_t.dtype), key, inference), new_state

"""S4D: the diagonal state-space layer (mirrors :mod:`sciml_seq.torch.ssm.s4d`).

Equinox modules acting on one example: a sequence is ``(length, channels)``,
a state ``(H, state size)``; ``jax.vmap`` batches them.  Same constructor
arguments, parameter names and numbers as the PyTorch layer
(:func:`sciml_seq.convert.torch_to_jax` moves weights).  ``rate`` and lengths
are Python numbers (static under ``jax.jit``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ...checks import check_choice
from ...convert import _get_path, _jax_arrays
from ...errors import DTypeError, NonFiniteError, OptionError, ShapeError
from ...ssm import (
    DISCRETIZATIONS,
    KERNEL_BACKENDS,
    check_backend,
    check_common,
    check_rate,
    diag_init,
    hints,
    kernel_length,
    official_to_sciml,
    read_official,
)
from .kernels import causal_conv, two_sided_kernel, vandermonde, vandermonde_transpose

__all__ = ["S4D", "S4DKernel", "SSMLayer", "load_official_state_dict"]

#: Kernel backends of the JAX layers (no Triton path here).
JAX_BACKENDS = tuple(b for b in KERNEL_BACKENDS if b != "triton")


def default_float(dtype=None):
    """``dtype``, or equinox's default float (float64 with ``jax_enable_x64``, else float32)."""
    return jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)


def real_dtype(param: Array):
    """Compute dtype of the SSM: the parameters' dtype, at least float32."""
    return jnp.promote_types(param.dtype, jnp.float32)


def complex_dtype(dtype):
    return jnp.complex128 if dtype == jnp.float64 else jnp.complex64


def as_complex(pairs: Array, dtype) -> Array:
    """Real pairs ``(..., 2)`` -> complex ``(...)``."""
    pairs = pairs.astype(dtype)
    return jax.lax.complex(pairs[..., 0], pairs[..., 1])


def init_log_dt(d_model: int, dt_min: float, dt_max: float, dtype, key: Array) -> Array:
    """``log Δ`` with Δ log-uniform in ``[dt_min, dt_max]``, shape ``(H, 1)``."""
    lo, hi = math.log(dt_min), math.log(dt_max)
    return jax.random.uniform(key, (d_model, 1), dtype=dtype) * (hi - lo) + lo


def init_complex_normal(*shape: int, dtype, key: Array) -> Array:
    """Complex normal as real pairs ``(*shape, 2)``: re and im each with variance 1/2."""
    return jax.random.normal(key, (*shape, 2), dtype=dtype) * math.sqrt(0.5)


class S4DKernel(eqx.Module):
    """Diagonal SSM kernel (see :class:`sciml_seq.torch.ssm.S4DKernel`).

    Methods act on one example: ``state`` is ``(H, N2)``, ``u`` is ``(H, L)``.
    """

    inv_dt: Array
    A_real: Array
    A_imag: Array
    B: Array
    C: Array
    H: int = eqx.field(static=True)
    N2: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    disc: str = eqx.field(static=True)
    backend: str = eqx.field(static=True)

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
        backend: str = "auto",
        dtype=None,
        key: Array,
    ) -> None:
        dtype = default_float(dtype)
        self.H, self.N2, self.channels = int(d_model), int(d_state) // 2, int(channels)
        self.disc = check_choice("disc", disc, DISCRETIZATIONS)
        self.backend = check_backend(backend, JAX_BACKENDS)
        det = diag_init(init, d_state, d_model)
        k_dt, k_c = jax.random.split(key)
        self.inv_dt = init_log_dt(self.H, dt_min, dt_max, dtype, k_dt)
        self.A_real = jnp.asarray(det["A_real"], dtype=dtype)
        self.A_imag = jnp.asarray(det["A_imag"], dtype=dtype)
        self.B = jnp.asarray(det["B"], dtype=dtype)
        self.C = init_complex_normal(self.channels, self.H, self.N2, dtype=dtype, key=k_c)

    def params(self, rate: float = 1.0):
        """``dt`` (H, 1) (× rate); complex ``λ`` (H, N2), ``B`` (1, H, N2), ``C`` (C, H, N2)."""
        rdt = real_dtype(self.inv_dt)
        dt = jnp.exp(self.inv_dt.astype(rdt)) * rate
        lam = jax.lax.complex(-jnp.exp(self.A_real.astype(rdt)), -self.A_imag.astype(rdt))
        return dt, lam, as_complex(self.B, rdt), as_complex(self.C, rdt)

    def discretize(self, rate: float = 1.0):
        """``dA, dB`` (H, N2) (``dB`` includes B), ``log dA``, and ``C`` (C, H, N2)."""
        dt, lam, B, C = self.params(rate)
        dtA = dt * lam
        B = B[0]
        if self.disc == "zoh":
            dA, log_dA = jnp.exp(dtA), dtA
            dB = B * (dA - 1) / lam
        elif self.disc == "bilinear":
            dA = (1 + dtA / 2) / (1 - dtA / 2)
            dB = B * dt / (1 - dtA / 2)
            log_dA = jnp.log(dA)
        elif self.disc == "forward_euler":
            dA, dB = 1 + dtA, B * dt
            log_dA = jnp.log(dA)
        else:  # backward_euler
            dA = 1 / (1 - dtA)
            dB = B * dt * dA
            log_dA = jnp.log(dA)
        return dA, dB, log_dA, C

    def __call__(self, L: int, rate: float = 1.0, state: Array | None = None):
        """Kernel ``K`` (C, H, L) and, given ``state`` (H, N2), ``K_state`` (C, H, L)."""
        dA, dB, log_dA, C = self.discretize(rate)
        K = vandermonde(C * dB, log_dA, L, self.backend)
        if state is None:
            return K, None
        return K, vandermonde(C * (dA * state.astype(dA.dtype)), log_dA, L, self.backend)

    def forward_state(self, u: Array, state: Array, rate: float = 1.0) -> Array:
        """State after the chunk ``u`` (H, L): ``dA^L s + Σ_j dA^{L-1-j} dB u_j``."""
        dA, dB, log_dA, _ = self.discretize(rate)
        L = u.shape[-1]
        return jnp.exp(L * log_dA) * state.astype(dA.dtype) + vandermonde_transpose(
            u[..., ::-1], dB, log_dA, self.backend
        )

    def step_params(self, rate: float = 1.0) -> dict[str, Array]:
        """``{"dA", "dB"}`` (H, N2) and ``"C"`` (C, H, N2), complex."""
        dA, dB, _, C = self.discretize(rate)
        return {"dA": dA, "dB": dB, "C": C}

    def step(self, u: Array, state: Array, params: dict[str, Array]):
        """``x' = dA x + dB u`` (u (H,)); returns ``(2 Re Σ_n C x'`` (C, H), ``x'`` (H, N2))."""
        x = params["dA"] * state + params["dB"] * u[:, None]
        y = 2 * jnp.einsum("chn,hn->ch", params["C"], x).real
        return y, x

    def state_spec(self):
        """Per-example state shape ``(H, N2)`` and its (complex) dtype."""
        return (self.H, self.N2), complex_dtype(real_dtype(self.inv_dt))


def _check_finite(x: Array, name: str) -> Array:
    msg = f"{name}: expected finite values; got NaN or infinity"
    if isinstance(x, jax.core.Tracer):
        return eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), msg)
    if not bool(jnp.all(jnp.isfinite(x))):
        raise NonFiniteError(msg)
    return x


def glu_head(
    y: Array,
    linear: eqx.nn.Linear,
    dropout: eqx.nn.Dropout,
    key: Array | None,
    inference: bool | None,
) -> Array:
    """The output head of the SSM layers (S4D, S4, LSSL, S5, ConvS5): GELU, dropout, then
    ``linear`` (``H -> 2H``) over the last axis and a GLU.  ``y (..., H)`` -> ``(..., H)``."""
    y = jax.nn.gelu(y, approximate=False)
    if dropout.p > 0:
        y = dropout(y, key=key, inference=inference)
    z = y @ linear.weight.T if linear.bias is None else y @ linear.weight.T + linear.bias
    a, b = jnp.split(z, 2, axis=-1)
    return a * jax.nn.sigmoid(b)


class SSMLayer(eqx.Module):
    """The full layer around an SSM kernel (see :class:`sciml_seq.torch.ssm.SSMLayer`).

    ``u (L, H) -> y_ssm = causal_conv(u, K) + D u -> GELU -> dropout ->
    Linear(C·H, 2H) -> GLU``.  ``output_linear`` is a 1-tuple holding the linear
    layer, so its parameter path is ``output_linear.0.weight`` as in PyTorch.
    """

    kernel: eqx.Module
    D: Array
    output_linear: tuple[eqx.nn.Linear]
    dropout: eqx.nn.Dropout
    d_model: int = eqx.field(static=True)
    d_state: int = eqx.field(static=True)
    l_max: int | None = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    bidirectional: bool = eqx.field(static=True)
    lr: float | None = eqx.field(static=True)
    wd: float = eqx.field(static=True)
    check_finite: bool = eqx.field(static=True)

    _hinted = ()
    _official_kind = None

    def _build(
        self,
        d_model: int,
        d_state: int,
        l_max: int | None,
        channels: int,
        bidirectional: bool,
        dropout: float,
        lr: float | None,
        wd: float,
        check_finite: bool,
        dtype,
        key: Array,
    ) -> None:
        dtype = default_float(dtype)
        self.d_model, self.d_state, self.l_max = int(d_model), int(d_state), l_max
        self.channels, self.bidirectional = int(channels), bool(bidirectional)
        self.lr = None if lr is None else float(lr)
        self.wd, self.check_finite = float(wd), bool(check_finite)
        k_d, k_lin = jax.random.split(key)
        self.D = jax.random.normal(k_d, (self.channels, self.d_model), dtype=dtype)
        self.dropout = eqx.nn.Dropout(float(dropout))
        self.output_linear = (
            eqx.nn.Linear(self.channels * self.d_model, 2 * self.d_model, dtype=dtype, key=k_lin),
        )

    @property
    def optim_hints(self) -> dict[str, dict[str, float]]:
        """Optimizer hints of Δ, A, B (and P): ``{"kernel.inv_dt": {"lr": ..}, ...}``.

        See :func:`sciml_seq.train.param_groups.optax_labels`.
        """
        return hints(tuple(f"kernel.{n}" for n in self._hinted), self.lr, self.wd)

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
        return _check_finite(u, name) if self.check_finite else u

    def _check_state(self, state: object) -> Array:
        shape, dtype = self.kernel.state_spec()
        if state is None or not hasattr(state, "shape"):
            raise OptionError(
                f"state: expected the {shape} array returned by default_state() (call "
                f"default_state before the first step); got {state!r}"
            )
        if tuple(state.shape) != shape:
            raise ShapeError(
                f"state: expected shape {shape} (d_model, state size) as returned by "
                f"default_state() (vmap it for a batch); got {tuple(state.shape)}"
            )
        if jnp.iscomplexobj(state) != jnp.issubdtype(dtype, jnp.complexfloating):
            kind = "complex" if jnp.issubdtype(dtype, jnp.complexfloating) else "real"
            raise DTypeError(f"state: expected a {kind} array ({dtype}); got {state.dtype}")
        return state

    def _no_state_bidirectional(self, what: str) -> None:
        if self.bidirectional:
            raise OptionError(
                f"{what}: a bidirectional layer (bidirectional=True) is not causal and has "
                f"no recurrent state; build it with bidirectional=False"
            )

    # ---------------------------------------------------------------- conv mode
    def ssm(self, u: Array, state: Array | None = None, *, rate: float = 1.0):
        """The linear SSM part: ``(y_ssm (L, C·H), next_state or None)``."""
        rate = check_rate(rate)
        u = self._check_input(u, "u", "(length, channels)", 2)
        L = u.shape[0]
        if state is not None:
            self._no_state_bidirectional("state")
            state = self._check_state(state)
        Lk = kernel_length(L, self.l_max, rate)
        dtype = jnp.promote_types(u.dtype, real_dtype(self.D))
        x = u.T.astype(dtype)  # (H, L)
        K, K_state = self.kernel(L if state is not None else Lk, rate=rate, state=state)
        K = K[..., :Lk].astype(dtype)
        if self.bidirectional:
            y = causal_conv(x, two_sided_kernel(K, L), n=Lk + L)
        else:
            y = causal_conv(x, K)
        y = y + x[None] * self.D.astype(dtype)[:, :, None]
        next_state = None
        if state is not None:
            y = y + K_state.astype(dtype)
            next_state = self.kernel.forward_state(x, state, rate)
        y = y.reshape(self.channels * self.d_model, L).T
        return y.astype(u.dtype), next_state

    def _head(self, y: Array, key: Array | None, inference: bool | None) -> Array:
        return glu_head(y, self.output_linear[0], self.dropout, key, inference)

    def __call__(
        self,
        u: Array,
        state: Array | None = None,
        *,
        rate: float = 1.0,
        key: Array | None = None,
        inference: bool | None = None,
    ):
        """``u`` (L, H) -> ``(y (L, H), next_state)``; see the PyTorch ``forward``.

        ``key`` drives dropout (needed when ``dropout > 0`` and not ``inference``).
        """
        y, next_state = self.ssm(u, state, rate=rate)
        return self._head(y, key, inference), next_state

    # ---------------------------------------------------------------- step mode
    def default_state(self) -> Array:
        """Zero state ``(H, state size)`` (complex for S4D/S4, real for LSSL)."""
        self._no_state_bidirectional("default_state")
        shape, dtype = self.kernel.state_spec()
        return jnp.zeros(shape, dtype=dtype)

    def step_params(self, rate: float = 1.0) -> dict[str, Array]:
        """The discretised matrices :meth:`step` uses; compute once per generation."""
        return self.kernel.step_params(check_rate(rate))

    def step(
        self,
        u_t: Array,
        state: Array,
        *,
        params: dict[str, Array] | None = None,
        rate: float = 1.0,
        key: Array | None = None,
        inference: bool | None = None,
    ):
        """One recurrent step: ``u_t`` (H,) -> ``(y_t (H,), next state)``."""
        self._no_state_bidirectional("step")
        u_t = self._check_input(u_t, "u_t", "(channels,)", 1)
        state = self._check_state(state)
        if params is None:
            params = self.step_params(rate)
        dtype = jnp.promote_types(u_t.dtype, real_dtype(self.D))
        x = u_t.astype(dtype)
        y, new_state = self.kernel.step(x, state, params)
        y = y.astype(dtype) + x[None] * self.D.astype(dtype)
        y = y.reshape(self.channels * self.d_model)
        return self._head(y.astype(u_t.dtype), key, inference), new_state


class S4D(SSMLayer):
    """Diagonal state-space layer (S4D); see :class:`sciml_seq.torch.ssm.S4D`.

    Same arguments plus ``key`` (a PRNG key for the initialisation); ``dtype=None``
    is equinox's default float (float64 with ``jax_enable_x64``).

    Shapes: ``__call__(u (L, H), state=None, *, rate=1.0, key=None) -> (y (L, H),
    next_state)``; state ``(H, N/2)`` complex.
    """

    _hinted = ("inv_dt", "A_real", "A_imag", "B")
    _official_kind = "s4d"

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        l_max: int | None = None,
        *,
        channels: int = 1,
        bidirectional: bool = False,
        init: str = "legs",
        disc: str = "zoh",
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
        check_common(d_model, d_state, l_max, channels, dt_min, dt_max, dropout, lr, wd)
        k_kernel, k_rest = jax.random.split(key)
        self.kernel = S4DKernel(
            d_model,
            d_state,
            channels * (2 if bidirectional else 1),
            init=init,
            disc=disc,
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


def load_official_state_dict(module: SSMLayer, source: str | os.PathLike | Mapping[str, Any]):
    """A copy of an :class:`S4D` / :class:`S4` with official ``state-spaces/s4`` parameters.

    ``source`` as in :func:`sciml_seq.torch.ssm.load_official_state_dict` (a
    state dict of arrays/tensors, or an ``.npz`` path); values keep the
    module's dtypes.

    Raises
    ------
    OptionError: a parameter is missing on one side; ShapeError: shapes differ.
    """
    kind = getattr(module, "_official_kind", None)
    if kind is None:
        raise OptionError(
            f"module: expected an S4D or S4 layer (official checkpoints exist for those); "
            f"got {type(module).__name__}"
        )
    mapped = official_to_sciml(read_official(source), kind=kind, l_max=module.l_max)
    target = _jax_arrays(module)
    missing = sorted(set(target) - set(mapped))
    extra = sorted(set(mapped) - set(target))
    if missing or extra:
        raise OptionError(
            f"source: parameters do not match the {type(module).__name__} layer "
            f"(missing: {missing}, unexpected: {extra}); build it with the official sizes"
        )
    names = list(mapped)
    for name in names:
        if tuple(mapped[name].shape) != tuple(target[name].shape):
            raise ShapeError(
                f"source: parameter {name!r} has shape {tuple(mapped[name].shape)} but the "
                f"layer expects {tuple(target[name].shape)}; build it with the official sizes "
                f"(d_model, d_state, channels, bidirectional)"
            )
    values = [jnp.asarray(np.asarray(mapped[k]), dtype=target[k].dtype) for k in names]
    return eqx.tree_at(lambda m: [_get_path(m, k) for k in names], module, values)

"""The Mamba block in JAX / equinox (mirrors :mod:`sciml_seq.torch.ssm.mamba`).

Acts on one example: ``hidden_states (length, d_model)`` -> ``(length, d_model)``
(``jax.vmap`` batches).  Same constructor arguments, defaults, parameter
names and shapes as the PyTorch module and the official ``mamba_simple.Mamba``
(:func:`sciml_seq.convert.torch_to_jax` or :func:`from_torch` move weights;
:func:`from_official_state_dict` reads an official ``state_dict``).

Generation is functional: ``cache = (conv_state (d_inner, d_conv), ssm_state
(d_inner, N))`` from :meth:`Mamba.init_cache` or :meth:`Mamba.prefill`;
``out_t, cache = model.step(h_t, cache)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ...checks import check_choice
from ...convert import _get_path, _jax_arrays
from ...errors import FormatError, ShapeError
from ...mamba import (
    MambaOptions,
    check_official_shapes,
    mamba_options,
    official_config,
)
from .selective_scan import JAX_SCAN_IMPLEMENTATIONS, selective_scan

__all__ = ["CausalConv1d", "Mamba", "from_official_state_dict", "from_torch"]


def _default_float(dtype=None):
    return jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)


class CausalConv1d(eqx.Module):
    """Depthwise causal convolution with the torch ``nn.Conv1d`` parameter shapes:
    ``weight (channels, 1, K)`` (tap ``K-1`` on the current token), ``bias (channels,)``."""

    weight: Array
    bias: Array | None

    def __init__(self, channels: int, kernel_size: int, use_bias: bool, *, dtype, key: Array):
        bound = 1.0 / math.sqrt(kernel_size)  # torch's default init, fan_in = K
        kw, kb = jax.random.split(key)
        self.weight = jax.random.uniform(
            kw, (channels, 1, kernel_size), dtype, minval=-bound, maxval=bound
        )
        self.bias = (
            jax.random.uniform(kb, (channels,), dtype, minval=-bound, maxval=bound)
            if use_bias
            else None
        )

    def __call__(self, x: Array) -> Array:
        """``x (channels, L)`` -> ``(channels, L)``: ``Σ_k w[c, k] x[c, t-(K-1)+k] (+ b)``."""
        K, L = self.weight.shape[-1], x.shape[-1]
        xp = jnp.pad(x, ((0, 0), (K - 1, 0)))
        y = sum(self.weight[:, 0, k, None] * xp[:, k : k + L] for k in range(K))
        return y if self.bias is None else y + self.bias[:, None]


class Mamba(eqx.Module):
    """The Mamba mixer (see :class:`sciml_seq.torch.ssm.Mamba`); one example ``(L, d_model)``.

    ``key`` draws the initialisation (equinox's default-init linear layers are
    ``U(±1/√fan_in)`` as torch's; ``dt_proj.bias`` = softplus⁻¹ of a log-uniform
    step; ``A_log = log(1..N)``, ``D = 1``).  :attr:`optim_hints` marks ``A_log``
    and ``D`` without weight decay.
    """

    in_proj: eqx.nn.Linear
    conv1d: CausalConv1d
    x_proj: eqx.nn.Linear
    dt_proj: eqx.nn.Linear
    A_log: Array
    D: Array
    out_proj: eqx.nn.Linear
    options: MambaOptions = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    d_state: int = eqx.field(static=True)
    d_conv: int = eqx.field(static=True)
    expand: int = eqx.field(static=True)
    d_inner: int = eqx.field(static=True)
    dt_rank: int = eqx.field(static=True)
    layer_idx: int | None = eqx.field(static=True)
    implementation: str = eqx.field(static=True)

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        layer_idx: int | None = None,
        implementation: str = "auto",
        dtype=None,
        *,
        key: Array,
    ) -> None:
        opts = mamba_options(
            d_model,
            d_state,
            d_conv,
            expand,
            dt_rank,
            dt_min,
            dt_max,
            dt_init,
            dt_scale,
            dt_init_floor,
            conv_bias,
            bias,
        )
        self.options = opts
        self.d_model, self.d_state, self.d_conv = opts.d_model, opts.d_state, opts.d_conv
        self.expand, self.d_inner, self.dt_rank = opts.expand, opts.d_inner, opts.dt_rank
        self.layer_idx = layer_idx
        self.implementation = check_choice(
            "implementation", implementation, (*JAX_SCAN_IMPLEMENTATIONS, "triton")
        )
        dtype = _default_float(dtype)
        d_inner, N = opts.d_inner, opts.d_state
        k_in, k_conv, k_x, k_dt, k_dtw, k_bias, k_out = jax.random.split(key, 7)
        self.in_proj = eqx.nn.Linear(
            opts.d_model, 2 * d_inner, use_bias=opts.bias, dtype=dtype, key=k_in
        )
        self.conv1d = CausalConv1d(d_inner, opts.d_conv, opts.conv_bias, dtype=dtype, key=k_conv)
        self.x_proj = eqx.nn.Linear(
            d_inner, opts.dt_rank + 2 * N, use_bias=False, dtype=dtype, key=k_x
        )
        std = opts.dt_rank**-0.5 * opts.dt_scale
        if opts.dt_init == "constant":
            w = jnp.full((d_inner, opts.dt_rank), std, dtype)
        else:
            w = jax.random.uniform(k_dtw, (d_inner, opts.dt_rank), dtype, minval=-std, maxval=std)
        lo, hi = math.log(opts.dt_min), math.log(opts.dt_max)
        dt = jnp.exp(jax.random.uniform(k_bias, (d_inner,), dtype) * (hi - lo) + lo)
        dt = jnp.maximum(dt, opts.dt_init_floor)
        dt_proj = eqx.nn.Linear(opts.dt_rank, d_inner, dtype=dtype, key=k_dt)
        # softplus^-1(dt) = dt + log(1 - exp(-dt))
        bias = dt + jnp.log(-jnp.expm1(-dt))
        self.dt_proj = eqx.tree_at(lambda m: (m.weight, m.bias), dt_proj, (w, bias))
        self.A_log = jnp.log(jnp.tile(jnp.arange(1, N + 1, dtype=dtype), (d_inner, 1)))
        self.D = jnp.ones(d_inner, dtype)
        self.out_proj = eqx.nn.Linear(
            d_inner, opts.d_model, use_bias=opts.bias, dtype=dtype, key=k_out
        )

    @property
    def optim_hints(self) -> dict[str, dict[str, float]]:
        """``A_log`` and ``D`` without weight decay (the official ``_no_weight_decay``)."""
        return {"A_log": {"weight_decay": 0.0}, "D": {"weight_decay": 0.0}}

    # ------------------------------------------------------------ full sequence
    def _linear(self, layer: eqx.nn.Linear, x: Array) -> Array:
        """``x (..., in) @ W^T (+ b)``."""
        y = x @ layer.weight.T
        return y if layer.bias is None else y + layer.bias

    def ssm_inputs(self, hidden_states: Array) -> dict[str, Array]:
        """The scan's arguments (as :meth:`sciml_seq.torch.ssm.Mamba.ssm_inputs`, one example):
        ``x``, ``u``, ``z``, ``delta`` ``(d_inner, L)``; ``B``, ``C`` ``(N, L)``; ``A``."""
        if hidden_states.ndim != 2 or hidden_states.shape[-1] != self.d_model:
            raise ShapeError(
                f"hidden_states: expected shape (length, {self.d_model}); "
                f"got {tuple(hidden_states.shape)}"
            )
        xz = self._linear(self.in_proj, hidden_states).T  # (2 d_inner, L)
        x, z = xz[: self.d_inner], xz[self.d_inner :]
        u = jax.nn.silu(self.conv1d(x))
        x_dbl = self._linear(self.x_proj, u.T)  # (L, dt_rank + 2N)
        r, N = self.dt_rank, self.d_state
        dt_low, B, C = x_dbl[:, :r], x_dbl[:, r : r + N], x_dbl[:, r + N :]
        delta = (dt_low @ self.dt_proj.weight.T).T
        return {
            "x": x,
            "u": u,
            "z": z,
            "delta": delta,
            "B": B.T,
            "C": C.T,
            "A": -jnp.exp(self.A_log),
        }

    def _scan(self, hidden_states: Array):
        s = self.ssm_inputs(hidden_states)
        impl = "auto" if self.implementation == "triton" else self.implementation
        y, last = selective_scan(
            s["u"][None],
            s["delta"][None],
            s["A"],
            s["B"][None],
            s["C"][None],
            self.D,
            z=s["z"][None],
            delta_bias=self.dt_proj.bias,
            delta_softplus=True,
            return_last_state=True,
            implementation=impl,
        )
        return self._linear(self.out_proj, y[0].T), s["x"], last[0]

    def __call__(self, hidden_states: Array, *, key: Array | None = None) -> Array:
        """``hidden_states (L, d_model)`` -> ``(L, d_model)`` (``key`` unused: no dropout)."""
        return self._scan(hidden_states)[0]

    # ------------------------------------------------------------ recurrent step
    def init_cache(self, dtype=None) -> tuple[Array, Array]:
        """Zero ``conv_state (d_inner, d_conv)`` and ``ssm_state (d_inner, N)``."""
        conv = jnp.zeros((self.d_inner, self.d_conv), dtype or self.conv1d.weight.dtype)
        ssm = jnp.zeros((self.d_inner, self.d_state), dtype or self.dt_proj.weight.dtype)
        return conv, ssm

    def prefill(self, hidden_states: Array) -> tuple[Array, tuple[Array, Array]]:
        """The outputs over ``hidden_states (P, d_model)`` and the cache after them."""
        out, x, last = self._scan(hidden_states)
        P = x.shape[-1]
        if P >= self.d_conv:
            conv = x[:, P - self.d_conv :]
        else:
            conv = jnp.pad(x, ((0, 0), (self.d_conv - P, 0)))
        return out, (conv, last)

    def step(
        self, hidden_states: Array, cache: tuple[Array, Array]
    ) -> tuple[Array, tuple[Array, Array]]:
        """One token ``(d_model,)`` -> ``(out (d_model,), (conv_state, ssm_state))``."""
        if hidden_states.shape != (self.d_model,):
            raise ShapeError(
                f"hidden_states: expected shape ({self.d_model},); got {tuple(hidden_states.shape)}"
            )
        conv_state, ssm_state = cache
        xz = self._linear(self.in_proj, hidden_states)
        x, z = xz[: self.d_inner], xz[self.d_inner :]
        conv_state = jnp.concatenate([conv_state[:, 1:], x[:, None]], axis=-1)
        xc = jnp.sum(conv_state * self.conv1d.weight[:, 0], axis=-1)
        if self.conv1d.bias is not None:
            xc = xc + self.conv1d.bias
        u = jax.nn.silu(xc)
        r, N = self.dt_rank, self.d_state
        x_dbl = self._linear(self.x_proj, u)
        dt_low, B, C = x_dbl[:r], x_dbl[r : r + N], x_dbl[r + N :]
        dt = jax.nn.softplus(self.dt_proj.weight @ dt_low + self.dt_proj.bias)
        dA = jnp.exp(dt[:, None] * -jnp.exp(self.A_log))
        ssm_state = ssm_state * dA + (dt * u)[:, None] * B[None, :]
        y = ssm_state @ C + self.D * u
        y = y * jax.nn.silu(z)
        return self._linear(self.out_proj, y), (conv_state, ssm_state)


def _replace(module: Mamba, values: Mapping[str, Any]) -> Mamba:
    target = _jax_arrays(module)
    check_official_shapes(
        {k: tuple(np.shape(v)) for k, v in values.items()},
        {k: tuple(v.shape) for k, v in target.items()},
    )
    missing = sorted(set(target) - set(values))
    if missing:
        raise FormatError(f"state_dict: expected the parameters {missing} of the module; missing")
    names = list(values)
    arrays = [jnp.asarray(np.asarray(values[k]), dtype=target[k].dtype) for k in names]
    if len(names) != len(target):
        raise FormatError(f"state_dict: expected {sorted(target)}; got {sorted(names)}")
    return eqx.tree_at(lambda m: [_get_path(m, k) for k in names], module, arrays)


def from_official_state_dict(
    state_dict: Mapping[str, Any],
    *,
    d_model: int | None = None,
    dt_rank: int | str | None = None,
    dtype=None,
    **kwargs: Any,
) -> Mamba:
    """A :class:`Mamba` holding an official ``Mamba.state_dict()`` (arrays or tensors).

    As :func:`sciml_seq.torch.ssm.from_official_state_dict`: sizes and biases are
    read from the shapes, a ``"mixer."`` prefix is stripped; ``dtype`` defaults to
    the arrays' (float64 needs ``jax_enable_x64``).
    """
    raw = {}
    for k, v in state_dict.items():
        v = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        raw[k.removeprefix("mixer.")] = v
    config = official_config({k: tuple(v.shape) for k, v in raw.items()}, d_model, dt_rank)
    if dtype is None:
        dtype = raw["in_proj.weight"].dtype
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise FormatError(f"state_dict: expected floating arrays; got {dtype}")
    # a template of shapes (no random draws, nothing compiled), every array then replaced
    template = eqx.filter_eval_shape(
        Mamba, **config, dtype=dtype, key=jax.random.PRNGKey(0), **kwargs
    )
    return _replace(template, raw)


def from_torch(torch_module: Any, **kwargs: Any) -> Mamba:
    """The JAX twin of a :class:`sciml_seq.torch.ssm.Mamba` (its weights, dtype, options)."""
    opts = torch_module.options
    kw = {
        "layer_idx": torch_module.layer_idx,
        "implementation": torch_module.implementation,
        "dt_min": opts.dt_min,
        "dt_max": opts.dt_max,
        "dt_init": opts.dt_init,
        "dt_scale": opts.dt_scale,
        "dt_init_floor": opts.dt_init_floor,
    }
    kw.update(kwargs)
    return from_official_state_dict(torch_module.state_dict(), **kw)

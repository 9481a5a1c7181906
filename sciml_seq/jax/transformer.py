"""The transformer block as a vector field, and the encoder built from it.

Mirrors :mod:`sciml_seq.torch.transformer`: same constructor arguments,
parameter names and numbers (move weights with
:func:`sciml_seq.convert.torch_to_jax`).  Equinox modules acting on one
example; ``jax.vmap`` them over a batch.  Options and parameter counts are in
:mod:`sciml_seq.transformer`.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ..checks import check_real
from ..deprecation import renamed_argument
from ..errors import ShapeError
from ..solver import SolveOptions, solve_options
from ..transformer import ENCODER_SOLVER, check_transformer_options
from .attention import check_padding_mask
from .fields import _ACTIVATIONS
from .mixers import make_mixer
from .ode import ODEBlock, ResidualStack
from .position import (
    ComplexOrderEncoding,
    LearnedEncoding,
    NeuralODEEncoding,
    RotaryEncoding,
    SinusoidalEncoding,
    _check_positions,
)


def _zero_linear(lin: eqx.nn.Linear) -> eqx.nn.Linear:
    return eqx.tree_at(
        lambda m: (m.weight, m.bias), lin, (jnp.zeros_like(lin.weight), jnp.zeros_like(lin.bias))
    )


class TransformerField(eqx.Module):
    """A time-conditioned pre-norm attention + MLP block used as a vector field.

    As :class:`sciml_seq.torch.transformer.TransformerField`:
    ``f(t, h) = attention(n_1(h) + bias) + mlp(n_2(h))``,
    ``n_i(h) = LayerNorm_i(h) * (1 + gamma_i(t)) + beta_i(t)``, ``[gamma_1, beta_1,
    gamma_2, beta_2] = time(t)`` (zero-initialised ``Linear(1, 4 * dim)``);
    ``attention`` is the ``mixer`` (:func:`sciml_seq.jax.mixers.make_mixer` with
    ``mixer_options``; dense :class:`MultiheadAttention` by default).

    Call: ``__call__(t, h, positions=None, *, padding_mask=None, causal=False, bias=None)``
    with a scalar ``t``, ``h (length, dim)``, ``positions (length,)`` (needed with
    RoPE), ``padding_mask (length,)`` bool (``True`` = valid), ``bias (length, dim)``;
    returns ``(length, dim)``.
    """

    norm1: eqx.nn.LayerNorm
    norm2: eqx.nn.LayerNorm
    time: eqx.nn.Linear
    attention: eqx.Module
    mlp_in: eqx.nn.Linear
    mlp_out: eqx.nn.Linear
    dim: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_hidden: int,
        *,
        activation: str = "gelu",
        rope_base: float | None = None,
        dtype=None,
        mixer: str = "softmax",
        mixer_options: dict[str, Any] | None = None,
        key: Array,
    ) -> None:
        encoding = "none" if rope_base is None else "rotary"
        head_dim = check_transformer_options(
            dim, heads, mlp_hidden, "ode", 1, encoding, False, activation, mixer, mixer_options
        )
        self.dim, self.activation = int(dim), activation
        rope = None if rope_base is None else RotaryEncoding(head_dim, rope_base)
        k_time, k_att, k_in, k_out = jax.random.split(key, 4)
        self.norm1 = eqx.nn.LayerNorm(dim, eps=1e-5, dtype=dtype)
        self.norm2 = eqx.nn.LayerNorm(dim, eps=1e-5, dtype=dtype)
        self.time = _zero_linear(eqx.nn.Linear(1, 4 * dim, dtype=dtype, key=k_time))
        self.attention = make_mixer(
            mixer, dim, heads, rope=rope, dtype=dtype, key=k_att, **dict(mixer_options or {})
        )
        self.mlp_in = eqx.nn.Linear(dim, mlp_hidden, dtype=dtype, key=k_in)
        self.mlp_out = eqx.nn.Linear(mlp_hidden, dim, dtype=dtype, key=k_out)

    def __call__(
        self,
        t: ArrayLike,
        h: Array,
        positions: ArrayLike | None = None,
        *,
        padding_mask: ArrayLike | None = None,
        causal: bool = False,
        bias: Array | None = None,
    ) -> Array:
        if jnp.ndim(h) != 2 or jnp.shape(h)[-1] != self.dim:
            raise ShapeError(f"h must have shape (length, dim={self.dim}), got {jnp.shape(h)}")
        if jnp.ndim(t) != 0:
            raise ShapeError(f"t must be a scalar (shape ()), got shape {jnp.shape(t)}")
        if bias is not None and jnp.shape(bias) != h.shape:
            raise ShapeError(f"bias must have the shape of h {h.shape}, got {jnp.shape(bias)}")
        mod = self.time(jnp.asarray(t, h.dtype).reshape(1))
        g1, b1, g2, b2 = jnp.split(mod, 4)
        a = jax.vmap(self.norm1)(h) * (1 + g1) + b1
        if bias is not None:
            a = a + bias
        a = self.attention(a, positions, causal=causal, padding_mask=padding_mask)
        m = jax.vmap(self.norm2)(h) * (1 + g2) + b2
        m = jax.vmap(self.mlp_out)(_ACTIVATIONS[self.activation](jax.vmap(self.mlp_in)(m)))
        return a + m


class BoundField(eqx.Module):
    """``field(t, h)`` with the positions, masks and bias of one sequence fixed.

    A module (not a closure), so the field's parameters and the bias stay
    visible to the solver's adjoint.  Padded tokens are frozen (``dh/dt = 0``).
    """

    field: TransformerField
    positions: Array | None
    padding_mask: Array | None
    bias: Array | None
    causal: bool = eqx.field(static=True)

    def __call__(self, t: Array, h: Array) -> Array:
        dh = self.field(
            t,
            h,
            self.positions,
            padding_mask=self.padding_mask,
            causal=self.causal,
            bias=self.bias,
        )
        if self.padding_mask is None:
            return dh
        return dh * self.padding_mask[:, None].astype(dh.dtype)


def make_encoding(encoding: str, dim: int, options: dict[str, Any], dtype, key: Array) -> Any:
    """The position-encoding module named ``encoding`` (``None`` for none/rotary)."""
    if encoding == "sinusoidal":
        return SinusoidalEncoding(dim, **options)
    if encoding == "learned":
        return LearnedEncoding(dim, **options, dtype=dtype, key=key)
    if encoding == "complex_order":
        return ComplexOrderEncoding(dim, **options, dtype=dtype, key=key)
    if encoding == "neural_ode":
        return NeuralODEEncoding(dim, **options, dtype=dtype, key=key)
    return None


class TransformerEncoder(eqx.Module):
    """A transformer encoder whose depth is discrete or continuous (same code).

    Same arguments, parameter names and numbers as
    :class:`sciml_seq.torch.transformer.TransformerEncoder`, plus ``key``: the
    solve options of ``depth_mode="ode"`` are ``solver=SolveOptions(...)`` or its
    fields as keywords, by default :data:`sciml_seq.transformer.ENCODER_SOLVER`
    (keywords change it), kept as the static field ``solver``.  ``mixer`` and
    ``mixer_options`` as in torch; a performer's random features are redrawn by
    :func:`sciml_seq.jax.mixers.performer.redraw_features` (no training mode here).

    Call: ``__call__(x, positions, *, padding_mask=None, causal=False)`` with
    ``x (length, dim)``, ``positions (length,)``; returns ``(length, dim)``.
    """

    encoding: Any
    layers: list[TransformerField]
    norm: eqx.nn.LayerNorm
    dim: int = eqx.field(static=True)
    depth_mode: str = eqx.field(static=True)
    mixer: str = eqx.field(static=True)
    encoding_name: str = eqx.field(static=True)
    per_layer: bool = eqx.field(static=True)
    n_layers: int = eqx.field(static=True)
    t_end: float = eqx.field(static=True)
    solver: SolveOptions = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        mlp_hidden: int | None = None,
        depth_mode: str | None = None,
        n_layers: int = 1,
        encoding: str = "sinusoidal",
        per_layer: bool = False,
        encoding_options: dict[str, Any] | None = None,
        activation: str = "gelu",
        t_end: float = 1.0,
        dtype=None,
        mixer: str = "softmax",
        mixer_options: dict[str, Any] | None = None,
        key: Array,
        solver: SolveOptions | None = None,
        **options: Any,
    ) -> None:
        depth_mode = renamed_argument(
            "TransformerEncoder", "depth", options.pop("depth", None), "depth_mode", depth_mode
        )
        depth_mode = "ode" if depth_mode is None else depth_mode
        self.solver = solve_options(solver, ENCODER_SOLVER, **options).for_framework("jax")
        mlp_hidden = 2 * dim if mlp_hidden is None else mlp_hidden
        check_transformer_options(
            dim,
            heads,
            mlp_hidden,
            depth_mode,
            n_layers,
            encoding,
            per_layer,
            activation,
            mixer,
            mixer_options,
        )
        encoder_options = dict(encoding_options or {})
        rope_base = encoder_options.pop("base", 10000.0) if encoding == "rotary" else None
        self.dim, self.depth_mode, self.encoding_name = int(dim), depth_mode, encoding
        t_end = check_real("t_end", t_end, gt=0.0)
        self.per_layer, self.n_layers, self.t_end = bool(per_layer), int(n_layers), float(t_end)
        self.mixer = mixer
        enc_key, layer_key = jax.random.split(key)
        self.encoding = make_encoding(encoding, dim, encoder_options, dtype, enc_key)
        count = n_layers if depth_mode == "untied" else 1
        self.layers = [
            TransformerField(
                dim,
                heads,
                mlp_hidden,
                activation=activation,
                rope_base=rope_base,
                dtype=dtype,
                mixer=mixer,
                mixer_options=mixer_options,
                key=k,
            )
            for k in jax.random.split(layer_key, count)
        ]
        self.norm = eqx.nn.LayerNorm(dim, eps=1e-5, dtype=dtype)

    def __call__(
        self,
        x: Array,
        positions: ArrayLike,
        *,
        padding_mask: ArrayLike | None = None,
        causal: bool = False,
    ) -> Array:
        if jnp.ndim(x) != 2 or jnp.shape(x)[-1] != self.dim:
            raise ShapeError(f"x must have shape (length, dim={self.dim}), got {jnp.shape(x)}")
        if jnp.shape(positions) != x.shape[:1]:
            raise ShapeError(
                f"positions must have shape (length,) = {x.shape[:1]} to match x of shape "
                f"{x.shape}, got {jnp.shape(positions)}"
            )
        positions = _check_positions(positions)
        bias = None
        if self.encoding_name == "rotary" or self.encoding is None:
            h = x
        elif self.per_layer:
            bias = self.encoding.encoding(positions).astype(x.dtype)
            h = x
        else:
            h = self.encoding(x, positions)
        mask = None
        if padding_mask is not None:
            # padded tokens start at zero (and stay there): their contents, NaN for a
            # missing value included, reach no valid output and no adaptive step size
            mask = check_padding_mask(padding_mask, x)
            h = jnp.where(mask[:, None], h, jnp.zeros((), h.dtype))
        bound = [BoundField(f, positions, mask, bias, causal) for f in self.layers]
        if self.depth_mode == "ode":
            h = ODEBlock(bound[0], t_end=self.t_end, solver=self.solver)(h)
        else:  # "tied": one field in every layer; "untied": bound[k] in layer k
            field = bound[0] if self.depth_mode == "tied" else bound
            h = ResidualStack(field, self.n_layers, t_end=self.t_end)(h)
        return jax.vmap(self.norm)(h)


__all__ = ["BoundField", "TransformerEncoder", "TransformerField", "make_encoding"]

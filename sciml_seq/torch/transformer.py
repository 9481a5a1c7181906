"""The transformer block as a vector field, and the encoder built from it.

Mirrors :mod:`sciml_seq.jax.transformer` (same names, parameters and numbers).
Options and parameter counts are in :mod:`sciml_seq.transformer`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..checks import check_real
from ..deprecation import renamed_argument
from ..errors import OptionError, ShapeError
from ..solver import SolveOptions, solve_options
from ..stats import SolveStats
from ..transformer import ENCODER_SOLVER, check_transformer_options
from .attention import check_padding_mask
from .checks import check_float_dtype
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


class TransformerField(nn.Module):
    """A time-conditioned pre-norm attention + MLP block used as a vector field.

    ``f(t, h) = attention(n_1(h) + bias) + mlp(n_2(h))`` with time-modulated norms
    ``n_i(h) = LayerNorm_i(h) * (1 + gamma_i(t)) + beta_i(t)``.

    - The two branches act in parallel on ``h`` (the GPT-J / PaLM block) so that
      ``f`` is one vector field; the Euler step ``h + dt * f(t, h)`` is a parallel
      pre-norm transformer layer with its residual branches scaled by ``dt``.
    - Time enters by FiLM of the norms (adaLN): ``[gamma_1, beta_1, gamma_2,
      beta_2] = time(t)`` with ``time = Linear(1, 4 * dim)`` initialised to zero,
      so an untrained block is time-independent.
    - ``bias (batch, length, dim)``, optional, is added to the attention input of
      every evaluation: the per-layer injection of an additive position
      encoding (as in FLOATER, ``encoding="neural_ode"``); since ``qkv`` is
      linear it is a bias ``W_qkv @ bias`` on Q, K and V.

    Parameters
    ----------
    dim, heads: width and number of heads (``heads`` divides ``dim``).
    mlp_hidden: hidden width of the MLP.
    activation: of the MLP, a key of :data:`sciml_seq.fields.ACTIVATIONS`.
    rope_base: ``None``, or the base of a :class:`RotaryEncoding` applied to the
        queries and keys at ``positions``.
    dtype: parameter dtype.
    mixer: the token mixer, one of :data:`sciml_seq.mixers.MIXERS` (default
        ``"softmax"``: :class:`~sciml_seq.torch.attention.MultiheadAttention`).
    mixer_options: its keyword options (:func:`sciml_seq.mixers.check_mixer_options`).

    Parameters (names): ``norm1``, ``norm2`` (``LayerNorm(dim)``, ``eps=1e-5``),
    ``time`` (``Linear(1, 4 * dim)``), ``attention`` (the mixer, built by
    :func:`sciml_seq.torch.mixers.make_mixer`; :class:`MultiheadAttention` by default),
    ``mlp_in`` (``Linear(dim, mlp_hidden)``), ``mlp_out`` (``Linear(mlp_hidden, dim)``).

    Call: ``forward(t, h, positions=None, *, padding_mask=None, causal=False, bias=None,
    rope_angles=None)`` (``rope_angles``: see :class:`MultiheadAttention`)
    with ``t (batch,)``, ``h (batch, length, dim)``, ``positions (batch, length)``
    (needed with RoPE), ``padding_mask (batch, length)`` bool (``True`` = valid);
    returns ``(batch, length, dim)``.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_hidden: int,
        *,
        activation: str = "gelu",
        rope_base: float | None = None,
        dtype: torch.dtype | None = None,
        mixer: str = "softmax",
        mixer_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        encoding = "none" if rope_base is None else "rotary"
        head_dim = check_transformer_options(
            dim, heads, mlp_hidden, "ode", 1, encoding, False, activation, mixer, mixer_options
        )
        self.dim, self.activation = int(dim), activation
        rope = None if rope_base is None else RotaryEncoding(head_dim, rope_base)
        self.norm1 = nn.LayerNorm(dim, dtype=dtype)
        self.norm2 = nn.LayerNorm(dim, dtype=dtype)
        self.time = nn.Linear(1, 4 * dim, dtype=dtype)
        nn.init.zeros_(self.time.weight)
        nn.init.zeros_(self.time.bias)
        self.attention = make_mixer(
            mixer, dim, heads, rope=rope, dtype=dtype, **dict(mixer_options or {})
        )
        self.mlp_in = nn.Linear(dim, mlp_hidden, dtype=dtype)
        self.mlp_out = nn.Linear(mlp_hidden, dim, dtype=dtype)

    def forward(
        self,
        t: Tensor,
        h: Tensor,
        positions: Tensor | None = None,
        *,
        padding_mask: Tensor | None = None,
        causal: bool = False,
        bias: Tensor | None = None,
        rope_angles: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        if not isinstance(h, Tensor) or h.ndim != 3 or h.shape[-1] != self.dim:
            got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
            raise ShapeError(f"h must have shape (batch, length, dim={self.dim}), got {got}")
        if not isinstance(t, Tensor) or t.shape != h.shape[:1]:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ShapeError(f"t must have shape (batch,) = {tuple(h.shape[:1])}, got {got}")
        if bias is not None and bias.shape != h.shape:
            raise ShapeError(
                f"bias must have the shape of h {tuple(h.shape)}, got {tuple(bias.shape)}"
            )
        mod = self.time(t[:, None].to(h.dtype))[:, None, :]  # (batch, 1, 4 * dim)
        g1, b1, g2, b2 = mod.chunk(4, dim=-1)
        a = self.norm1(h) * (1 + g1) + b1
        if bias is not None:
            a = a + bias
        a = self.attention(
            a, positions, causal=causal, padding_mask=padding_mask, rope_angles=rope_angles
        )
        m = self.norm2(h) * (1 + g2) + b2
        m = self.mlp_out(_ACTIVATIONS[self.activation](self.mlp_in(m)))
        # under autocast the branches come out in half precision: dh/dt has h's dtype
        return (a + m).to(h.dtype)


class BoundField(nn.Module):
    """``field(t, h)`` with the positions, masks and bias of one sequence batch fixed.

    What an :class:`ODEBlock` or :class:`ResidualStack` integrates; built per call.
    Padded tokens are frozen (``dh/dt = 0`` there); the encoder starts them at
    zero, so their contents change no valid output, fixed or adaptive steps.
    """

    def __init__(
        self,
        field: TransformerField,
        positions: Tensor | None,
        padding_mask: Tensor | None,
        causal: bool,
        bias: Tensor | None,
        rope_angles: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.field = field
        self.positions, self.padding_mask, self.causal, self.bias = (
            positions,
            padding_mask,
            causal,
            bias,
        )
        # RoPE's (cos, sin) depend on the positions only: computed by the caller once per
        # solve (see rope_angles), not per evaluation; None computes them per evaluation
        self.rope_angles = rope_angles

    def forward(self, t: Tensor, h: Tensor) -> Tensor:
        dh = self.field(
            t,
            h,
            self.positions,
            padding_mask=self.padding_mask,
            causal=self.causal,
            bias=self.bias,
            rope_angles=self.rope_angles,
        )
        if self.padding_mask is None:
            return dh
        return dh * self.padding_mask[..., None].to(dh.dtype)


def make_encoding(encoding: str, dim: int, options: dict[str, Any], dtype) -> Any:
    """The position-encoding module named ``encoding`` (``None`` for none/rotary)."""
    if encoding == "sinusoidal":
        return SinusoidalEncoding(dim, **options)
    if encoding == "learned":
        return LearnedEncoding(dim, **options, dtype=dtype)
    if encoding == "complex_order":
        return ComplexOrderEncoding(dim, **options, dtype=dtype)
    if encoding == "neural_ode":
        return NeuralODEEncoding(dim, **options, dtype=dtype)
    return None


class TransformerEncoder(nn.Module):
    """A transformer encoder whose depth is discrete or continuous (same code).

    Parameters
    ----------
    dim, heads, mlp_hidden, activation: of each :class:`TransformerField`.
    depth_mode: ``"ode"`` (default: one field, :class:`ODEBlock` over ``[0, t_end]``),
        ``"tied"`` (one field, :class:`ResidualStack` of ``n_layers``) or
        ``"untied"`` (``n_layers`` fields, ``h += dt * f_k(t_k, h)`` on the same
        grid); see :mod:`sciml_seq.transformer`.
    n_layers: layers of the discrete modes (ignored by ``"ode"``).
    encoding: one of :data:`sciml_seq.transformer.ENCODINGS`, evaluated at the
        ``positions`` given (integer indices or real times: the caller decides).
    per_layer: add the (additive) encoding to the attention input of every field
        evaluation instead of once to the input.
    encoding_options: keyword arguments of the encoding's constructor
        (``max_period``, ``max_positions``/``interpolate``, ``"neural_ode"``'s
        (FLOATER's) ``hidden``/``init``/``method``/...; for ``"rotary"``: ``base``).
    t_end: the span of the ``ODEBlock`` of ``depth_mode="ode"`` (also sets the discrete grid).
    dtype: parameter dtype.
    mixer, mixer_options: the token mixer of every field (see :class:`TransformerField`
        and :mod:`sciml_seq.mixers`); ``"softmax"`` (dense attention) by default.  A
        performer built with ``redraw=True`` gets new random features at every
        forward in training mode (before the solve: one vector field per solve).
    solver, **options: the :class:`~sciml_seq.solver.SolveOptions` of ``depth_mode="ode"``
        (or its fields as keywords), by default
        :data:`sciml_seq.transformer.ENCODER_SOLVER` (``rtol=1e-3, atol=1e-4,
        max_steps=1024``).

    Parameters (names): ``encoding.*`` (when it has any), ``layers.{i}.*`` (one
    field, or ``n_layers`` untied), ``norm`` (final ``LayerNorm``).

    Call: ``forward(x, positions, *, padding_mask=None, causal=False)`` with
    ``x (batch, length, dim)``, ``positions (batch, length)``; returns
    ``(batch, length, dim)``.  :attr:`last_stats` holds the cost of the last call.
    """

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
        dtype: torch.dtype | None = None,
        mixer: str = "softmax",
        mixer_options: dict[str, Any] | None = None,
        solver: SolveOptions | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        depth_mode = renamed_argument(
            "TransformerEncoder", "depth", options.pop("depth", None), "depth_mode", depth_mode
        )
        depth_mode = "ode" if depth_mode is None else depth_mode
        self.solver = solve_options(solver, ENCODER_SOLVER, **options).for_framework("torch")
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
        if dtype is not None:
            check_float_dtype("dtype", dtype)
        self.per_layer, self.n_layers, self.t_end = bool(per_layer), int(n_layers), float(t_end)
        self.mixer = mixer
        self.encoding = make_encoding(encoding, dim, encoder_options, dtype)
        if per_layer and depth_mode == "ode" and self.solver.adjoint == "backsolve":
            # The backsolve adjoint differentiates the field's parameters only, and a
            # per-layer encoding enters the field as a bias tensor.
            if any(True for _ in self.encoding.parameters()):
                raise OptionError(
                    f"per_layer encoding={encoding!r} with adjoint='backsolve' would give "
                    "the encoding's parameters no gradient; use adjoint='direct' or "
                    "per_layer=False"
                )
        count = n_layers if depth_mode == "untied" else 1
        self.layers = nn.ModuleList(
            TransformerField(
                dim,
                heads,
                mlp_hidden,
                activation=activation,
                rope_base=rope_base,
                dtype=dtype,
                mixer=mixer,
                mixer_options=mixer_options,
            )
            for _ in range(count)
        )
        self.norm = nn.LayerNorm(dim, dtype=dtype)
        self.last_stats: SolveStats | None = None

    def forward(
        self,
        x: Tensor,
        positions: Tensor,
        *,
        padding_mask: Tensor | None = None,
        causal: bool = False,
    ) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[-1] != self.dim:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"x must have shape (batch, length, dim={self.dim}), got {got}")
        if not isinstance(positions, Tensor) or positions.shape != x.shape[:2]:
            got = tuple(positions.shape) if isinstance(positions, Tensor) else positions
            raise ShapeError(
                f"positions must have shape (batch, length) = {tuple(x.shape[:2])} to match x "
                f"of shape {tuple(x.shape)}, got {got}"
            )
        _check_positions(positions)
        bias = None
        if self.encoding_name == "rotary" or self.encoding is None:
            h = x
        elif self.per_layer:
            bias = self.encoding.encoding(positions).to(x.dtype)
            h = x
        else:
            h = self.encoding(x, positions)
        if padding_mask is not None:
            # padded tokens start at zero (and stay there): their contents, NaN for a
            # missing value included, reach no valid output and no adaptive step size
            check_padding_mask(padding_mask, x)
            h = torch.where(padding_mask[..., None], h, torch.zeros((), dtype=h.dtype))
        if self.training:
            for layer in self.layers:  # a performer's redraw=True: new features per forward
                if getattr(layer.attention, "redraw_in_training", False):
                    layer.attention.redraw()
        first = self.layers[0]  # every layer's RoPE has the same head_dim and base
        rope = getattr(first.attention, "rope", None)
        rope_angles = None if rope is None else rope.angles(positions, first.norm1.weight.dtype)
        bound = [
            BoundField(f, positions, padding_mask, causal, bias, rope_angles) for f in self.layers
        ]
        if self.depth_mode == "ode":
            block = ODEBlock(bound[0], t_end=self.t_end, solver=self.solver)
            h = block(h)
            self.last_stats = block.last_stats
        else:  # "tied": one field in every layer; "untied": bound[k] in layer k
            stack = ResidualStack(
                bound[0] if self.depth_mode == "tied" else bound, self.n_layers, t_end=self.t_end
            )
            h = stack(h)
            self.last_stats = stack.last_stats
        return self.norm(h)


__all__ = ["BoundField", "TransformerEncoder", "TransformerField", "make_encoding"]

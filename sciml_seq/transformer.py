"""Framework-free options and parameter counts of ``sciml_seq.{torch,jax}.transformer``.

The transformer block is a vector field ``f(t, h)``; the encoder runs it in one
of three :data:`DEPTH_MODES` (its ``depth_mode`` argument; ``depth`` is the
deprecated name, an integer layer count elsewhere, e.g. ``TimeMLP``):

- ``"ode"``: one field integrated over ``[0, t_end]`` by an ``ODEBlock`` (any
  solver; depth = integration time);
- ``"tied"``: one field applied ``n_layers`` times as a weight-tied residual
  stack, ``h += dt * f(t_k, h)`` (= forward Euler with ``n_layers`` steps, so
  ``"ode"`` with ``method="euler", n_steps=n_layers`` gives the same numbers);
- ``"untied"``: ``n_layers`` separate fields on the same grid,
  ``h += dt * f_k(t_k, h)`` (a standard pre-norm transformer with its residual
  branches scaled by ``dt``).

Every mode takes a ``mixer`` (:data:`sciml_seq.mixers.MIXERS`: dense softmax
attention by default, or Performer, sliding-window, LSH, FNet, gMLP, Aaren) with
its ``mixer_options``, the same in every field.

Equal parameters: ``"ode"`` and ``"tied"`` hold one block, ``"untied"`` holds
``n_layers``.  :func:`block_parameters` counts a block exactly and
:func:`width_for_parameters` picks the model width of a one-block encoder whose
block count matches ``n_layers`` blocks of a given width (or vice versa).
"""

from __future__ import annotations

from . import position
from .checks import check_choice, check_int, format_choices
from .errors import OptionError
from .fields import ACTIVATIONS
from .mixers import check_mixer_options
from .position import check_heads
from .solver import SolveOptions

DEPTH_MODES = ("ode", "tied", "untied")
ENCODINGS = ("none", *position.ENCODINGS)
"""Position encodings of the encoder: ``"none"`` and :data:`sciml_seq.position.ENCODINGS`.

``"rotary"`` acts inside every attention; ``"complex_order"`` replaces the
input; the others (:data:`ADDITIVE_ENCODINGS`) are added to the input, and with
``per_layer=True`` to the attention input of every field evaluation instead (a
bias on Q, K and V)."""
ADDITIVE_ENCODINGS = position.ADDITIVE_ENCODINGS

ENCODER_SOLVER = SolveOptions(rtol=1e-3, atol=1e-4, max_steps=1024)
"""The encoder's solve options for ``depth_mode="ode"`` unless it is given others (keywords
change these): looser tolerances than :class:`~sciml_seq.solver.SolveOptions`'s, as a
transformer block needs."""


def check_transformer_options(
    dim: int,
    heads: int,
    mlp_hidden: int,
    depth_mode: str,
    n_layers: int,
    encoding: str,
    per_layer: bool,
    activation: str = "gelu",
    mixer: str = "softmax",
    mixer_options: dict | None = None,
) -> int:
    """Validate encoder options; returns ``head_dim``.  ``OptionError`` naming the argument.

    ``mixer`` and ``mixer_options`` are checked by
    :func:`sciml_seq.mixers.check_mixer_options` (a rotary encoding needs a
    mixer that takes one).
    """
    head_dim = check_heads(dim, heads)
    check_int("mlp_hidden", mlp_hidden)
    check_choice("activation", activation, ACTIVATIONS)
    check_int("n_layers", n_layers)
    check_choice("depth_mode", depth_mode, DEPTH_MODES)
    if depth_mode == "ode" and n_layers != 1:
        raise OptionError(
            f"n_layers: depth_mode='ode' integrates one field (its depth is t_end and the "
            f"solver's steps), so n_layers must stay 1; got {n_layers!r} (use "
            "depth_mode='tied' or 'untied' for layers)"
        )
    check_choice("encoding", encoding, ENCODINGS)
    if per_layer and encoding not in ADDITIVE_ENCODINGS:
        raise OptionError(
            f"encoding: expected an additive encoding ({format_choices(ADDITIVE_ENCODINGS)}) "
            f"with per_layer=True; got {encoding!r}"
        )
    if encoding == "rotary" and head_dim % 2:
        raise OptionError(
            f"heads: expected a divisor of dim={dim} that leaves an even head_dim for "
            f"encoding='rotary' (it rotates feature pairs); got {heads} (head_dim {head_dim})"
        )
    check_mixer_options(mixer, mixer_options, dim=dim, heads=heads, rope=encoding == "rotary")
    return head_dim


def block_parameters(dim: int, mlp_hidden: int) -> int:
    """Parameters of one :class:`TransformerField` with dense attention (biases everywhere).

    (``mixer="performer"`` and ``"sliding_window"`` have the same count;
    ``"lsh"`` shares Q and K: ``dim**2 + dim`` fewer.)

    Two LayerNorms (``2 * 2 * dim``), the time modulation ``Linear(1, 4 * dim)``
    (``8 * dim``), attention ``qkv`` and ``out`` (``4 * dim**2 + 4 * dim``) and the
    MLP (``2 * dim * mlp_hidden + mlp_hidden + dim``).
    """
    return 4 * dim * dim + 2 * dim * mlp_hidden + mlp_hidden + 17 * dim


def width_for_parameters(target: int, heads: int, mlp_ratio: float, *, even_head: bool) -> int:
    """The width ``dim`` (a multiple of ``heads``) whose block count is closest to ``target``.

    ``mlp_hidden = round(mlp_ratio * dim)``.  With ``even_head`` the head
    dimension is kept even (RoPE).  E.g. a one-block ODE encoder matching
    ``n_layers`` untied blocks of width ``d``:
    ``width_for_parameters(n_layers * block_parameters(d, h), heads, ratio, even_head=...)``.
    """
    check_int("target", target)
    check_int("heads", heads)
    step = heads * (2 if even_head else 1)
    best, best_gap, dim = step, None, step
    while True:
        count = block_parameters(dim, round(mlp_ratio * dim))
        gap = abs(count - target)
        if best_gap is not None and gap > best_gap:
            return best
        best, best_gap, dim = dim, gap, dim + step


__all__ = [
    "ADDITIVE_ENCODINGS",
    "DEPTH_MODES",
    "ENCODINGS",
    "block_parameters",
    "check_transformer_options",
    "width_for_parameters",
]

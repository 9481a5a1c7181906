"""Framework-free halves of the discrete depth schemes in ``sciml_seq.{torch,jax}.depth``.

Two schemes beside the residual stack (:class:`sciml_seq.torch.ResidualStack`):

- ``ACTStack``: the weight-tied stack with adaptive computation time (Graves
  2016; Universal Transformers, Dehghani et al. 2019): a halting unit per
  position decides how many Euler steps each position takes;
- ``ReversibleStack``: the reversible two-stream residual stack (RevNet, Gomez
  et al. 2017; Reformer, Kitaev et al. 2020), whose backward pass recomputes
  the activations from the output instead of storing them.

Here: their option checks (one message in both frameworks), the value
:meth:`ACTStack.solve` returns, and their cost statistics.  Imports no torch/JAX.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .checks import check_int, check_real
from .errors import OptionError
from .ode import check_block_options, check_stack_layers
from .stats import SolveStats

__all__ = [
    "ACT_EPSILON",
    "ACT_HALTING_BIAS",
    "ACTOutput",
    "act_stats",
    "check_act_depth",
    "check_act_options",
    "check_reversible_options",
    "reversible_stats",
    "state_width",
]

ACT_HALTING_BIAS = 1.0
"""Initial bias of the halting unit: ``act_halting_bias_init = 1.0`` of the Universal
Transformer reference (tensor2tensor ``universal_transformer.py``).

With the small initial weights ``p ~ sigmoid(1) = 0.73`` at every position, so an
untrained stack takes two steps (``0.73 <= 1 - epsilon < 1.46``) with remainder
``R ~ 0.27``: training starts from short pondering and lengthens it where the
loss asks for depth.  A negative bias starts from long pondering instead."""

ACT_EPSILON = 0.01
"""Graves' ``epsilon`` (and tensor2tensor's ``act_epsilon``): a position halts once its
cumulative halting probability would exceed ``1 - epsilon``."""

WIDTH_ATTRIBUTES = ("features", "dim", "d_model")
"""Attributes a field may carry its state width in (``TimeMLP.features``,
``TransformerField.dim``), read when ``d_model`` is not given."""


class ACTOutput(NamedTuple):
    """What ``ACTStack.solve`` returns, in both frameworks (a pytree in JAX).

    Attributes
    ----------
    h: the ACT output, the halting-weighted mean of the states, shaped as the input
        (torch ``(batch, *positions, d_model)``, JAX ``(*positions, d_model)``).
    ponder: the ponder cost ``N + R`` averaged over positions, differentiable through
        the remainders ``R``: torch ``(batch,)``, JAX a scalar.
    steps: field evaluations this example needed, the largest ``N`` over its
        positions (integers; torch ``(batch,)``, JAX 0-d).
    """

    h: Any
    ponder: Any
    steps: Any


def state_width(field: object, d_model: object) -> int:
    """The width of the state's last axis: ``d_model``, else read from the field.

    A field built by this library carries it (``TimeMLP.features``,
    ``TransformerField.dim``); any other field needs ``d_model``.
    """
    if d_model is not None:
        return check_int("d_model", d_model)
    for name in WIDTH_ATTRIBUTES:
        value = getattr(field, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    raise OptionError(
        "d_model: expected the width of the state's last axis, an integer >= 1 (the field "
        f"has none of the attributes {', '.join(WIDTH_ATTRIBUTES)} to read it from); got None"
    )


def check_act_depth(field: object, max_depth: object, untied: bool) -> int:
    """``max_depth`` of an ``ACTStack``: given with one field; the length of a sequence
    (one field per step; ``max_depth`` may then be omitted, and given must equal it)."""
    return check_stack_layers(field, max_depth, untied, name="max_depth", unit="step")


def check_act_options(
    field: object,
    max_depth: object,
    untied: bool,
    *,
    t_end: object,
    epsilon: object,
    halting_bias: object,
    d_model: object,
) -> tuple[int, int]:
    """Validate the options of ``ACTStack``; returns ``(max_depth, d_model)``.

    ``field`` is the field, or the sequence of fields when ``untied``; ``d_model``
    is read from the (first) field when ``None`` (:func:`state_width`).
    """
    depth = check_act_depth(field, max_depth, untied)
    check_real("t_end", t_end, gt=0.0)
    check_real("epsilon", epsilon, gt=0.0, lt=1.0)
    check_real("halting_bias", halting_bias)
    width = state_width(field[0] if untied else field, d_model)  # type: ignore[index]
    return depth, width


def check_reversible_options(field: object, n_layers: object, untied: bool, t_end: object) -> int:
    """Validate ``ReversibleStack``'s options (as ``ResidualStack``'s); returns ``n_layers``."""
    check_block_options(t_end, 0.0, ())  # type: ignore[arg-type]
    return check_stack_layers(field, n_layers, untied)


def act_stats(steps: Any, nfe_batch: int | None = None) -> SolveStats:
    """The cost of an ``ACTStack`` call from its per-example ``steps``.

    One field evaluation per step: ``nfe_forward = n_steps = n_accepted = steps``
    (per example), no rejected steps.  ``nfe_batch``: the steps the batch ran
    (torch; ``None`` for one JAX example, where ``jax.vmap`` runs
    ``max(steps)``).  ``nfe_backward``: one VJP per recorded batched evaluation,
    ``nfe_batch`` (torch); ``None`` in JAX (XLA runs the backward pass).
    """
    return SolveStats(
        nfe_forward=steps,
        nfe_backward=nfe_batch,
        n_steps=steps,
        n_accepted=steps,
        n_rejected=0,
        nfe_batch=nfe_batch,
    )


def reversible_stats(n_layers: int) -> SolveStats:
    """The fixed cost of a ``ReversibleStack`` call: two field evaluations per layer.

    Forward: ``F`` and ``G`` once per layer, ``2 * n_layers`` evaluations.
    Backward: per layer, ``G(y1)`` and ``F(x2)`` are evaluated again (they
    reconstruct the layer's input) and their VJPs taken:
    ``nfe_backward = 2 * n_layers`` VJPs, after ``2 * n_layers`` re-evaluations.
    """
    n = int(n_layers)
    return SolveStats(
        nfe_forward=2 * n,
        nfe_backward=2 * n,
        n_steps=n,
        n_accepted=n,
        n_rejected=0,
        nfe_batch=2 * n,
    )

"""Build the ready sequence models by name, and size them to a parameter count.

Names: ``"s4d"``, ``"s4"``, ``"lssl"`` (:class:`~.ssm_stack.SSMSequenceModel`),
``"lstm"``, ``"gru"`` (:class:`~.rnn.RNNSequenceModel`) and ``"transformer"``
(:class:`~.transformer_baseline.TransformerSequenceModel`).  :func:`build_sized` picks
the width ``d_model`` whose parameter count is closest to a target, all other
options fixed, so that models are compared at (nearly) equal size; the
parameter count grows with the width, and the gap left is at most about one
width step (a few per cent at widths of tens).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ...checks import check_choice, check_int
from ...errors import OptionError
from .rnn import RNN_CELLS, RNNSequenceModel
from .ssm_stack import SSM_LAYERS, SSMSequenceModel
from .transformer_baseline import TransformerSequenceModel

__all__ = ["MODELS", "build_model", "build_sized", "count_parameters", "fit_width"]

#: Model names accepted by :func:`build_model` and :func:`build_sized`.
MODELS: tuple[str, ...] = (*SSM_LAYERS, *RNN_CELLS, "transformer")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (a shared parameter counted once; real pairs count 2)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(
    name: str, d_input: int, d_output: int, *, d_model: int, **options: Any
) -> nn.Module:
    """A model of :data:`MODELS` with width ``d_model``; ``options`` go to its constructor."""
    name = check_choice("name", name, MODELS)
    if name in SSM_LAYERS:
        return SSMSequenceModel(d_input, d_output, d_model=d_model, layer=name, **options)
    if name in RNN_CELLS:
        return RNNSequenceModel(d_input, d_output, d_model=d_model, cell=name, **options)
    return TransformerSequenceModel(d_input, d_output, d_model=d_model, **options)


def fit_width(
    build: Callable[[int], nn.Module], n_params: int, *, step: int = 1, max_width: int = 4096
) -> tuple[int, int]:
    """The multiple of ``step`` whose ``count_parameters(build(width))`` is closest to ``n_params``.

    Assumes the count grows with the width.  Returns ``(width, count)``; raises
    OptionError when even ``max_width`` falls short of ``n_params``.
    """
    n_params = check_int("n_params", n_params)
    step = check_int("step", step)

    counts: dict[int, int] = {}

    def count(k: int) -> int:
        if k not in counts:
            counts[k] = count_parameters(build(k * step))
        return counts[k]

    lo, hi, top = 1, 1, max(1, max_width // step)
    while count(hi) < n_params:  # double up (cheap models first), then bisect
        if hi == top:
            raise OptionError(
                f"n_params: expected a count reachable with width <= {max_width} "
                f"(at most {count(hi)}); got {n_params}"
            )
        lo, hi = hi + 1, min(2 * hi, top)
    while lo < hi:  # smallest k with count(k) >= n_params
        mid = (lo + hi) // 2
        if count(mid) >= n_params:
            hi = mid
        else:
            lo = mid + 1
    best = min({lo, max(1, lo - 1)}, key=lambda k: abs(count(k) - n_params))
    return best * step, count(best)


def build_sized(name: str, d_input: int, d_output: int, n_params: int, **options: Any) -> nn.Module:
    """:func:`build_model` with the ``d_model`` that brings its size closest to ``n_params``.

    Widths are any integer, except for the transformer: there ``d_model`` is the
    largest multiple of ``2 * heads`` (an even RoPE head size) not above the
    target, and then the MLP width ``d_ff`` is fitted (a finer step).
    ``options`` (the other constructor arguments) must not contain ``d_model``
    or ``d_ff``.
    """
    name = check_choice("name", name, MODELS)
    for key in ("d_model", "d_ff"):
        if key in options:
            raise OptionError(f"options: {key} is chosen by build_sized; leave it out")

    def build(width: int, **extra: Any) -> nn.Module:
        return build_model(name, d_input, d_output, d_model=width, **options, **extra)

    if name != "transformer":
        return build(fit_width(build, n_params)[0])
    step = 2 * options.get("heads", 4)
    width, count = fit_width(build, n_params, step=step)
    if count > n_params and width > step:
        width -= step
    d_ff, _ = fit_width(lambda f: build(width, d_ff=f), n_params, max_width=64 * width)
    return build(width, d_ff=d_ff)

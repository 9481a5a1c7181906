"""Framework-free parts of the ready sequence models in ``sciml_seq.{torch,jax}.models``.

The pooling names, the backbones' and SSM stack's option checks, the
forecasters' position modes, and the input shape check, written once so that a
PyTorch model and its JAX twin accept the same options and raise the same errors.
Imports no framework.
"""

from __future__ import annotations

from typing import NamedTuple

from .checks import check_choice, check_int, check_real
from .errors import ShapeError

__all__ = [
    "BackboneOptions",
    "POOLS",
    "POSITION_MODES",
    "SSM_LAYER_NAMES",
    "SSMStackOptions",
    "check_sequence_shape",
    "check_position_mode",
    "check_ssm_stack_options",
]

#: How a model turns its per-step outputs ``(length, d_output)`` into its output:
#: the mean over time, the last step (both ``(d_output,)``), or every step (``"none"``).
POOLS: tuple[str, ...] = ("mean", "last", "none")

#: The SSM layers of ``SSMSequenceModel`` (``sciml_seq.{torch,jax}.ssm`` S4D, S4, LSSL).
SSM_LAYER_NAMES: tuple[str, ...] = ("s4d", "s4", "lssl")

#: How a ``Forecaster`` places its tokens: at their (scaled) real times, or at
#: their integer rank among the valid tokens of the sequence (context first, then
#: queries), which keeps the order and forgets the spacing.
POSITION_MODES: tuple[str, ...] = ("time", "index")


class BackboneOptions(NamedTuple):
    """The checked options every ready backbone shares (see :func:`check_backbone_options`)."""

    d_input: int
    d_output: int
    d_model: int
    n_layers: int
    pool: str
    dropout: float


def check_backbone_options(
    d_input: object,
    d_output: object,
    d_model: object,
    n_layers: object,
    pool: object,
    dropout: object,
) -> BackboneOptions:
    """The options of the SSM, RNN and transformer backbones in their Python types.

    Sizes are integers ``>= 1``, ``pool`` one of :data:`POOLS`, ``dropout`` a real
    number in ``[0, 1)``; OptionError naming a bad one.
    """
    return BackboneOptions(
        d_input=check_int("d_input", d_input),
        d_output=check_int("d_output", d_output),
        d_model=check_int("d_model", d_model),
        n_layers=check_int("n_layers", n_layers),
        pool=check_choice("pool", pool, POOLS),
        dropout=check_real("dropout", dropout, ge=0.0, lt=1.0),
    )


class SSMStackOptions(NamedTuple):
    """The checked options of ``SSMSequenceModel`` (see :func:`check_ssm_stack_options`)."""

    d_input: int
    d_output: int
    d_model: int
    n_layers: int
    layer: str
    pool: str
    dropout: float


def check_ssm_stack_options(
    d_input: object,
    d_output: object,
    d_model: object,
    n_layers: object,
    layer: object,
    pool: object,
    dropout: object,
) -> SSMStackOptions:
    """The options of ``SSMSequenceModel`` in their Python types; OptionError naming a bad one.

    Those of :func:`check_backbone_options` and ``layer``, one of
    :data:`SSM_LAYER_NAMES`.  The options of the SSM layers themselves
    (``d_state``, ``l_max``, ...) are checked by the layers.
    """
    opts = check_backbone_options(d_input, d_output, d_model, n_layers, pool, dropout)
    return SSMStackOptions(layer=check_choice("layer", layer, SSM_LAYER_NAMES), **opts._asdict())


def check_sequence_shape(shape: tuple[int, ...], d_input: int, *, batched: bool) -> None:
    """ShapeError unless ``shape`` is ``(batch, length, d_input)`` (``batched``, PyTorch)
    or ``(length, d_input)`` (one example, JAX), with ``length >= 1``."""
    dims = "(batch, length, channels)" if batched else "(length, channels)"
    if len(shape) != (3 if batched else 2) or shape[-1] != d_input or shape[-2] < 1:
        raise ShapeError(
            f"x: expected shape {dims} with {d_input} channels (d_input) and length >= 1; "
            f"got {tuple(shape)}"
        )


def check_position_mode(position_mode: object) -> str:
    """``position_mode`` if it is one of :data:`POSITION_MODES`, else ``OptionError``."""
    return check_choice("position_mode", position_mode, POSITION_MODES)

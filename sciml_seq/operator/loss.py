"""The input checks of scOT's training loss, written once for torch and JAX.

:func:`sciml_seq.torch.operator.scot_loss` and :func:`sciml_seq.jax.operator.scot_loss`
call :func:`check_scot_loss` before computing anything, so the two raise the
same errors with the same messages.  Framework-free: it reads shapes only (no
device synchronisation, and it works on traced JAX arrays).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..checks import check_choice
from ..errors import ShapeError
from ..losses import LOSS_EXPONENTS

__all__ = ["check_scot_loss"]


def check_scot_loss(
    prediction: Any,
    labels: Any,
    pixel_mask: Any | None,
    *,
    p: object,
    channel_slices: Sequence[int] | None,
) -> None:
    """Raise unless ``scot_loss(prediction, labels, p=p, ...)`` can be computed.

    The arrays (torch tensors or JAX arrays, also traced ones) are only asked for
    their ``shape``.  ``OptionError`` naming ``p`` unless it is 1 or 2;
    ``ShapeError`` naming ``labels`` (or ``pixel_mask``) unless its shape is the
    prediction's ``(batch, C_out, H, W)``, or naming ``channel_slices`` when its
    last boundary exceeds ``C_out``.  (The boundaries themselves are checked by
    :func:`sciml_seq.losses.channel_groups`.)
    """
    check_choice("p", p, LOSS_EXPONENTS)
    shape = tuple(prediction.shape)
    for name, array in (("labels", labels), ("pixel_mask", pixel_mask)):
        if array is not None and tuple(array.shape) != shape:
            raise ShapeError(
                f"{name}: expected the prediction's shape {shape}; got {tuple(array.shape)}"
            )
    if channel_slices is None:
        return
    if len(shape) < 2:
        raise ShapeError(f"prediction: expected (batch, C_out, H, W) channels; got {shape}")
    if channel_slices[-1] > shape[1]:
        raise ShapeError(
            f"channel_slices: expected a last boundary <= the {shape[1]} channels of the "
            f"prediction; got {list(channel_slices)}"
        )

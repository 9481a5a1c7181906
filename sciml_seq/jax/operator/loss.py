"""scOT's training loss in JAX (mirrors :func:`sciml_seq.torch.operator.scot_loss`)."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from jax import Array

from ...losses import pooled_relative_loss
from ...operator.loss import check_scot_loss


def scot_loss(
    prediction: Array,
    labels: Array,
    *,
    p: int = 1,
    channel_slices: Sequence[int] | None = None,
    pixel_mask: Array | None = None,
) -> Array:
    """Mean over channel groups of ``L(pred_s, lab_s) / (L(lab_s, 0) + 1e-10)`` (L1 or MSE).

    Shapes: ``(batch, C_out, H, W)`` (a batch: the loss pools all entries) → scalar.
    """
    check_scot_loss(prediction, labels, pixel_mask, p=p, channel_slices=channel_slices)
    labels = labels.astype(prediction.dtype)
    if pixel_mask is not None:
        prediction = jnp.where(pixel_mask, labels, prediction)
    if channel_slices is None:
        d = prediction - labels
        return jnp.mean(jnp.abs(d)) if p == 1 else jnp.mean(d * d)
    last = channel_slices[-1]
    return pooled_relative_loss(prediction[:, :last], labels[:, :last], channel_slices, p=p)


__all__ = ["scot_loss"]

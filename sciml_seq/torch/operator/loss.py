"""scOT's training loss: channel-group relative L1 (or MSE), as the official model computes it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...losses import pooled_relative_loss
from ...operator.loss import check_scot_loss


def scot_loss(
    prediction: Tensor,
    labels: Tensor,
    *,
    p: int = 1,
    channel_slices: Sequence[int] | None = None,
    pixel_mask: Tensor | None = None,
) -> Tensor:
    """Mean over channel groups ``s`` of ``L(pred_s, lab_s) / (L(lab_s, 0) + 1e-10)``.

    ``L`` is the mean absolute error (``p=1``) or mean squared error (``p=2``)
    over all batch, channel and grid entries of the group; groups are
    ``channel_slices[i]:channel_slices[i+1]`` (e.g. ``(0, 1, 3, 4)`` for
    density | velocity | pressure).  Without ``channel_slices`` it is plain
    ``L(prediction, labels)``.  ``pixel_mask`` (bool, shape of ``prediction``)
    replaces the masked prediction entries by the labels first.

    Shapes: ``prediction``, ``labels`` ``(batch, C_out, H, W)`` → scalar.
    """
    check_scot_loss(prediction, labels, pixel_mask, p=p, channel_slices=channel_slices)
    labels = labels.to(prediction.dtype)
    if pixel_mask is not None:
        prediction = torch.where(pixel_mask, labels, prediction)
    if channel_slices is None:
        return (F.l1_loss if p == 1 else F.mse_loss)(prediction, labels)
    last = channel_slices[-1]
    return pooled_relative_loss(prediction[:, :last], labels[:, :last], channel_slices, p=p)


__all__ = ["scot_loss"]

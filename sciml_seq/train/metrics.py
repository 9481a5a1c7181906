"""Evaluation metrics: median relative L1 and relative L2 over samples (numpy).

The per-sample errors come from :func:`sciml_seq.losses.relative_errors`
(any framework); here they are brought to numpy and summarised.  The median
is numpy's (the mean of the two middle values for an even count; note that
``torch.median`` returns the lower one instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..losses import relative_errors

__all__ = ["error_metrics", "summarize", "to_numpy"]


def to_numpy(array: Any) -> np.ndarray:
    """A float64 numpy copy of a numpy array, torch tensor (any device/dtype) or JAX array."""
    if hasattr(array, "detach"):
        import torch

        return array.detach().to("cpu", torch.float64).numpy()
    return np.asarray(array, dtype=np.float64)


def error_metrics(
    pred: Any, target: Any, channel_slice_list: Sequence[int] | None = None
) -> dict[str, Any]:
    """Median and mean relative L1 and L2 errors of a batch, plus the per-sample L1.

    ``pred``, ``target``: ``(batch, channels, *grid)`` in any framework; computed
    in float64 numpy.  Returns ``{"median_rel_l1", "mean_rel_l1", "median_rel_l2",
    "mean_rel_l2"}`` as floats and ``"rel_l1"``, ``"rel_l2"`` as ``(batch,)`` arrays.
    """
    pred, target = to_numpy(pred), to_numpy(target)
    l1 = relative_errors(pred, target, channel_slice_list, p=1)
    l2 = relative_errors(pred, target, channel_slice_list, p=2)
    return {**summarize(l1, l2), "rel_l1": l1, "rel_l2": l2}


def summarize(rel_l1: np.ndarray, rel_l2: np.ndarray) -> dict[str, float]:
    """``{"median_rel_l1", "mean_rel_l1", "median_rel_l2", "mean_rel_l2"}`` of per-sample errors."""
    return {
        "median_rel_l1": float(np.median(rel_l1)),
        "mean_rel_l1": float(np.mean(rel_l1)),
        "median_rel_l2": float(np.median(rel_l2)),
        "mean_rel_l2": float(np.mean(rel_l2)),
    }

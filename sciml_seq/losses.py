"""Relative Lp errors over channel groups, written once for numpy, torch and JAX.

The functions use only operations the three array types share (``abs``,
``reshape``, ``sum(axis=...)``, ``mean``, slicing, ``**``), so a torch tensor
gives a differentiable torch loss, a JAX array a JAX loss, and a float64 numpy
array the reference numbers.

Channel groups follow Poseidon's ``channel_slice_list`` convention: a list of
boundaries ``[0, c_1, ..., C]`` declares the groups ``[0:c_1], [c_1:c_2], ...``
(e.g. density, velocity (2 channels), pressure: ``[0, 1, 3, 4]``).  Each group's
relative error is computed separately and the groups are averaged, so a
variable with many channels does not dominate.

* :func:`relative_errors`: per-sample ``(sum |pred - y|^p / sum |y|^p)^(1/p)``
  over each group's channels and grid points, averaged over groups,
  shape ``(batch,)``;
* :func:`relative_l1_loss`: the training loss, the batch mean of the per-sample
  relative L1 (``reduction="mean"``: a mean over samples, so that data-parallel
  ranks averaging their gradients reproduce the combined batch), or Poseidon's
  scOT loss (``reduction="pooled"``: ``mean|pred - y| / (mean|y| + eps)`` over the
  whole batch per group, then averaged over groups; checked against the
  official fixture).

``eps`` is added to each normaliser, so an all-zero target gives a finite
error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from .checks import check_choice
from .errors import OptionError, ShapeError

__all__ = [
    "LOSS_EXPONENTS",
    "REDUCTIONS",
    "channel_groups",
    "pooled_relative_loss",
    "relative_errors",
    "relative_l1_loss",
]

Array = Any  # numpy.ndarray | torch.Tensor | jax.Array

REDUCTIONS = ("mean", "pooled")
"""The ``reduction`` names of :func:`relative_l1_loss`."""

LOSS_EXPONENTS = (1, 2)
"""The ``p`` of the relative losses: 1 (relative L1) or 2 (relative MSE)."""


def channel_groups(slice_list: Sequence[int] | None, n_channels: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` from boundaries ``[0, ..., n_channels]`` (``None``: one group)."""
    if slice_list is None:
        return [(0, n_channels)]
    bounds = [int(b) for b in slice_list]
    if (
        len(bounds) < 2
        or bounds[0] != 0
        or bounds[-1] != n_channels
        or any(b <= a for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    ):
        raise OptionError(
            "channel_slice_list: expected strictly increasing boundaries from 0 to "
            f"the channel count {n_channels}; got {list(slice_list)}"
        )
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _groups(
    pred: Array, target: Array, channel_slice_list: Sequence[int] | None, p: int
) -> list[tuple[int, int]]:
    """Check shapes and ``p``; the channel groups of ``pred``."""
    if tuple(pred.shape) != tuple(target.shape) or len(pred.shape) < 2:
        raise ShapeError(
            "pred, target: expected equal shapes (batch, channels, *grid); got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    check_choice("p", p, LOSS_EXPONENTS)
    return channel_groups(channel_slice_list, pred.shape[1])


def relative_errors(
    pred: Array,
    target: Array,
    channel_slice_list: Sequence[int] | None = None,
    *,
    p: Literal[1, 2] = 1,
    eps: float = 1e-10,
) -> Array:
    """Per-sample relative Lp error averaged over channel groups, shape ``(batch,)``.

    ``pred`` and ``target``: ``(batch, channels, *grid)``.
    """
    groups = _groups(pred, target, channel_slice_list, p)
    batch = pred.shape[0]
    total = 0.0
    for start, stop in groups:
        diff = abs(pred[:, start:stop] - target[:, start:stop]).reshape(batch, -1) ** p
        norm = abs(target[:, start:stop]).reshape(batch, -1) ** p
        total = total + (diff.sum(axis=-1) / (norm.sum(axis=-1) + eps)) ** (1 / p)
    return total / len(groups)


def relative_l1_loss(
    pred: Array,
    target: Array,
    channel_slice_list: Sequence[int] | None = None,
    *,
    reduction: Literal["mean", "pooled"] = "mean",
    eps: float = 1e-10,
) -> Array:
    """Relative L1 training loss averaged over channel groups (a scalar).

    ``reduction="mean"``: the mean over samples of :func:`relative_errors` (p=1).
    ``reduction="pooled"``: Poseidon's scOT loss (errors and normalisers pooled
    over the batch before dividing).
    """
    if check_choice("reduction", reduction, REDUCTIONS) == "mean":
        return relative_errors(pred, target, channel_slice_list, p=1, eps=eps).mean()
    return pooled_relative_loss(pred, target, channel_slice_list, p=1, eps=eps)


def pooled_relative_loss(
    pred: Array,
    target: Array,
    channel_slice_list: Sequence[int] | None = None,
    *,
    p: Literal[1, 2] = 1,
    eps: float = 1e-10,
) -> Array:
    """Poseidon's scOT loss: ``mean|pred - y|^p / (mean|y|^p + eps)`` per group, averaged.

    The means pool the whole batch and grid of each channel group (p=1: relative
    mean absolute error; p=2: relative mean squared error).  ``pred`` and
    ``target``: ``(batch, channels, *grid)`` → scalar.
    """
    groups = _groups(pred, target, channel_slice_list, p)
    total = 0.0
    for start, stop in groups:
        error = (abs(pred[:, start:stop] - target[:, start:stop]) ** p).mean()
        total = total + error / ((abs(target[:, start:stop]) ** p).mean() + eps)
    return total / len(groups)

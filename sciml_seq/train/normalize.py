"""Per-channel input/output normalisation around an operator (as Poseidon normalises data).

:class:`ChannelNormalized` wraps ``model(x, time)`` so that it sees standardised
fields and returns physical ones:
``y = model((x - mean) / std, time) * std + mean``, with ``mean`` and ``std``
per channel (buffers, saved in checkpoints).  The relative losses and metrics
are computed on the physical fields.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ShapeError

__all__ = ["ChannelNormalized", "channel_stats"]


def channel_stats(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per channel of ``u`` ``(n, T, C, *grid)``, float64 ``(C,)``.

    A constant channel gets ``std = 1``.
    """
    if u.ndim < 3:
        raise ShapeError(f"u: expected (n, n_times, channels, *grid); got shape {u.shape}")
    axes = tuple(a for a in range(u.ndim) if a != 2)
    mean = u.mean(axis=axes, dtype=np.float64)
    std = u.std(axis=axes, dtype=np.float64)
    return mean, np.where(std > 0, std, 1.0)


class ChannelNormalized(nn.Module):
    """``model`` on standardised inputs, returning fields in the original units.

    Parameters
    ----------
    model:
        ``model(x (batch, C, *grid), time (batch,)) -> (batch, C, *grid)``.
    mean, std:
        Per-channel statistics ``(C,)`` (e.g. from :func:`channel_stats`).
    """

    def __init__(self, model: nn.Module, mean, std) -> None:
        super().__init__()
        self.model = model
        mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32).flatten()
        std = torch.as_tensor(np.asarray(std), dtype=torch.float32).flatten()
        if mean.shape != std.shape:
            raise ShapeError(
                f"mean, std: expected equal shapes (C,); got {mean.shape}, {std.shape}"
            )
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        """``(batch, C, *grid)``, ``(batch,)`` -> ``(batch, C, *grid)`` in the units of ``x``."""
        if x.dim() < 3 or x.shape[1] != self.mean.numel():
            raise ShapeError(
                f"x: expected (batch, {self.mean.numel()}, *grid); got {tuple(x.shape)}"
            )
        shape = (1, -1) + (1,) * (x.dim() - 2)
        mean, std = self.mean.to(x.dtype).view(shape), self.std.to(x.dtype).view(shape)
        return self.model((x - mean) / std, time) * std + mean

"""PyTorch dataset of all-to-all trajectory pairs (see :mod:`sciml_seq.train.pairs`)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ShapeError
from .pairs import PairIndex

__all__ = ["PairDataset"]


class PairDataset(torch.utils.data.Dataset):
    """Examples ``(x, lead, y)`` from trajectories ``u`` sampled at times ``t``.

    Parameters
    ----------
    u:
        ``(n_trajectories, n_times, channels, *grid)`` (numpy or tensor; kept as
        a float tensor without copying where possible).
    t:
        ``(n_times,)`` increasing times.
    min_lead, max_lead:
        As in :class:`~sciml_seq.train.pairs.PairIndex`.

    ``dataset[k]`` gives ``x = u[traj, i]`` ``(channels, *grid)``, the lead time
    ``t[j] - t[i]`` (0-d tensor, dtype of ``u``) and ``y = u[traj, j]``; a list or
    array of indices gives the batch at once (used by the trainer).
    """

    def __init__(
        self,
        u: np.ndarray | torch.Tensor,
        t: np.ndarray | torch.Tensor,
        *,
        min_lead: int = 0,
        max_lead: int | None = None,
    ) -> None:
        u = torch.as_tensor(u)
        t = np.asarray(t.cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64)
        if u.ndim < 3 or not u.is_floating_point():
            raise ShapeError(
                "u: expected a float array (n_trajectories, n_times, channels, *grid); "
                f"got shape {tuple(u.shape)} and dtype {u.dtype}"
            )
        if t.shape != (u.shape[1],) or np.any(np.diff(t) <= 0):
            raise ShapeError(f"t: expected ({u.shape[1]},) increasing times; got shape {t.shape}")
        self.u = u
        self.t = t
        self.index = PairIndex(u.shape[0], u.shape[1], min_lead=min_lead, max_lead=max_lead)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = np.asarray(k.cpu() if isinstance(k, torch.Tensor) else k)
        trajectory, i, j = self.index.locate(flat)
        lead = torch.as_tensor(self.t[j] - self.t[i], dtype=self.u.dtype)
        return self.u[trajectory, i], lead, self.u[trajectory, j]

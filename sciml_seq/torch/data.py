"""PDE trajectories as a :class:`torch.utils.data.Dataset`.

Each item is one whole trajectory; choosing pairs of times for training is the
job of the training code.  A file is opened lazily in each process that reads
from it, so the dataset works with ``DataLoader(num_workers > 0)``.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.pde import Trajectories, TrajectoryFile, open_trajectories
from .checks import check_float_dtype

__all__ = ["TrajectoryDataset", "TrajectorySample"]


class TrajectorySample(NamedTuple):
    """One trajectory: ``u`` ``(n_times, channels, *grid)`` and times ``t`` ``(n_times,)``.

    ``DataLoader`` batches these into ``u`` ``(batch, n_times, channels, *grid)`` and
    ``t`` ``(batch, n_times)``.
    """

    u: torch.Tensor
    t: torch.Tensor


class TrajectoryDataset(Dataset[TrajectorySample]):
    """Trajectories from memory or from an HDF5 file written by ``write_trajectories``.

    Parameters
    ----------
    source: a :class:`~sciml_seq.data.pde.Trajectories` or a path (read lazily,
        one trajectory per item).
    dtype: floating dtype of the returned ``u`` and ``t`` (default float32).
    check_finite: an item read from a file that holds NaN or infinity raises
        :class:`~sciml_seq.errors.NonFiniteError` (as ``read_trajectories``
        does; in-memory trajectories were checked when built).

    Attributes
    ----------
    t: the common times, float64 numpy ``(n_times,)``.
    meta: the metadata dict (equation, parameters, grid, dt, seed, ...).
    """

    def __init__(
        self,
        source: Trajectories | str | os.PathLike[str],
        *,
        dtype: torch.dtype = torch.float32,
        check_finite: bool = True,
    ) -> None:
        self.dtype = check_float_dtype("dtype", dtype)
        self.check_finite = bool(check_finite)
        self._traj: Trajectories | None = None
        self._path: str | None = None
        self._file: TrajectoryFile | None = None
        self._pid = -1
        if isinstance(source, Trajectories):
            self._traj = source
            self.t, self.meta, self._len = source.t, source.meta, len(source)
        elif isinstance(source, (str, os.PathLike)):
            self._path = os.fspath(source)
            with open_trajectories(self._path) as f:  # validates the file now
                self.t, self.meta, self._len = f.t, f.meta, len(f)
        else:
            raise TypeError(f"source must be a Trajectories or a path, got {type(source).__name__}")
        self._t = torch.as_tensor(self.t, dtype=dtype)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> TrajectorySample:
        if not -self._len <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} trajectories")
        if self._traj is not None:
            u = self._traj.u[index]
        else:
            u = self._open()[int(index)]
        return TrajectorySample(torch.tensor(np.asarray(u), dtype=self.dtype), self._t.clone())

    def _open(self) -> TrajectoryFile:
        # h5py handles must not cross fork(): reopen in every DataLoader worker
        if self._file is None or self._pid != os.getpid():
            self._file = open_trajectories(self._path, check_finite=self.check_finite)  # type: ignore[arg-type]
            self._pid = os.getpid()
        return self._file

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, -1  # spawn-started workers reopen the file
        return state

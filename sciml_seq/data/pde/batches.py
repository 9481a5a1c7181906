"""Mini-batches of whole trajectories as numpy arrays (for JAX or anything else)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from ..batching import batch_indices
from .io import open_trajectories
from .trajectories import Trajectories

__all__ = ["iterate_batches"]


def iterate_batches(
    source: Trajectories | str | os.PathLike[str],
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    check_finite: bool = True,
) -> Iterator[NDArray[np.float32]]:
    """Yield float32 batches ``(b, n_times, channels, *grid)`` of trajectories.

    Parameters
    ----------
    source: trajectories in memory, or a file written by
        :func:`~sciml_seq.data.pde.write_trajectories` (read lazily, batch by
        batch; the file stays open while the iterator lives).
    batch_size: trajectories per batch ``b`` (the last batch may be smaller).
    shuffle: visit the trajectories in the order of
        ``numpy.random.default_rng(seed).permutation(n)``.
    seed: seed of the permutation (one epoch per iterator; pass a new seed per
        epoch for a new order).
    drop_last: skip a last batch smaller than ``batch_size``.
    check_finite: raise :class:`~sciml_seq.errors.NonFiniteError` on a batch
        read from a file that holds NaN or infinity (as
        :func:`~sciml_seq.data.pde.read_trajectories` does; in-memory
        :class:`Trajectories` were checked when built).

    The times are common to all trajectories: ``source.t`` (or
    ``open_trajectories(path).t``).
    """
    if isinstance(source, Trajectories):
        for index in batch_indices(
            len(source), batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last
        ):
            yield source.u[index]
    elif isinstance(source, (str, os.PathLike)):
        with open_trajectories(source, check_finite=check_finite) as f:
            for index in batch_indices(
                len(f), batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last
            ):
                yield f[index.tolist()]
    else:
        raise TypeError(f"source must be a Trajectories or a path, got {type(source).__name__}")

"""Mini-batches of whole trajectories as numpy arrays (for JAX or anything else)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from ...checks import check_int
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

    The times are common to all trajectories: ``source.t`` (or
    ``open_trajectories(path).t``).
    """
    batch_size = check_int("batch_size", batch_size)
    if isinstance(source, Trajectories):
        yield from _batches(source.u, len(source), batch_size, shuffle, seed, drop_last)
    elif isinstance(source, (str, os.PathLike)):
        with open_trajectories(source) as f:
            yield from _batches(f, len(f), batch_size, shuffle, seed, drop_last)
    else:
        raise TypeError(f"source must be a Trajectories or a path, got {type(source).__name__}")


def _batches(
    data: NDArray[np.float32] | object,
    n: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    drop_last: bool,
) -> Iterator[NDArray[np.float32]]:
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        yield data[index] if isinstance(data, np.ndarray) else data[index.tolist()]

"""All-to-all pair sampling from trajectories (Poseidon's time-dependent training).

A data set of ``n_trajectories`` trajectories, each sampled at ``n_times`` times
``t_0 < ... < t_{T-1}``, yields one training example per trajectory and ordered
pair ``(i, j)`` with ``i <= j``: input ``u[traj, i]``, target ``u[traj, j]`` and
lead time ``t_j - t_i`` (the model's time input).  A flat index enumerates the
examples trajectory by trajectory, then by ``i``, then by ``j``.

Options: ``min_lead=1`` leaves out the identity pairs ``i == j``; ``max_lead``
(in steps) keeps only ``j - i <= max_lead``.  With the defaults there are
``n_trajectories * T (T + 1) / 2`` examples.

Everything here is numpy; :class:`PairIndex` is shared by the torch
:class:`~sciml_seq.train.pair_dataset.PairDataset` and the numpy batch iterator
:func:`pair_batches` used by the JAX loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..checks import check_int
from ..data.batching import batch_indices
from ..errors import OptionError, ShapeError

__all__ = ["PairIndex", "check_trajectories", "pair_batches"]


@dataclass(frozen=True)
class PairIndex:
    """Flat index ``<->`` ``(trajectory, i, j)`` over the ordered time pairs.

    Parameters
    ----------
    n_trajectories, n_times:
        Sizes of the trajectory array ``(n_trajectories, n_times, ...)``.
    min_lead:
        Smallest ``j - i``: 0 (default) includes ``i == j``, 1 excludes it.
    max_lead:
        Largest ``j - i`` in steps, at least 1; ``None`` (default) means ``n_times - 1``.
    """

    n_trajectories: int
    n_times: int
    min_lead: int = 0
    max_lead: int | None = None
    _row_start: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "n_trajectories", check_int("n_trajectories", self.n_trajectories))
        set_(self, "n_times", check_int("n_times", self.n_times))
        set_(self, "min_lead", check_int("min_lead", self.min_lead, low=0, high=1))
        top = self.n_times - 1
        if self.min_lead > top:
            raise OptionError(
                f"n_times: expected at least 2 time points with min_lead=1; got {self.n_times}"
            )
        # max_lead=0 would keep only the identity pairs (lead time 0): nothing to learn
        max_lead = top if self.max_lead is None else check_int("max_lead", self.max_lead)
        max_lead = min(max_lead, top)
        set_(self, "max_lead", max_lead)
        i = np.arange(self.n_times)
        counts = np.clip(np.minimum(top, i + max_lead) - (i + self.min_lead) + 1, 0, None)
        set_(self, "_row_start", np.concatenate([[0], np.cumsum(counts)]))

    @property
    def pairs_per_trajectory(self) -> int:
        """Number of ``(i, j)`` pairs in one trajectory."""
        return int(self._row_start[-1])

    def __len__(self) -> int:
        return self.n_trajectories * self.pairs_per_trajectory

    def locate(self, index: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(trajectory, i, j)`` of flat indices (any integer array shape, or an int)."""
        index = np.asarray(index)
        if not np.issubdtype(index.dtype, np.integer):
            raise OptionError(f"index: expected integers; got dtype {index.dtype}")
        n = len(self)
        if index.size and (index.min() < -n or index.max() >= n):
            raise IndexError(f"index: expected values in [-{n}, {n}); got {index}")
        index = np.where(index < 0, index + n, index)
        trajectory, k = np.divmod(index, self.pairs_per_trajectory)
        i = np.searchsorted(self._row_start, k, side="right") - 1
        j = i + self.min_lead + (k - self._row_start[i])
        return trajectory, i, j

    def lead_times(self, t: np.ndarray, index: np.ndarray | int) -> np.ndarray:
        """``t[j] - t[i]`` for flat indices; ``t`` has shape ``(n_times,)``."""
        t = np.asarray(t)
        if t.shape != (self.n_times,):
            raise ShapeError(f"t: expected shape ({self.n_times},); got {t.shape}")
        _, i, j = self.locate(index)
        return t[j] - t[i]


def check_trajectories(u: np.ndarray, t: np.ndarray) -> None:
    """Raise ShapeError unless ``u`` is ``(n_trajectories, n_times, channels, *grid)``
    and ``t`` is ``(n_times,)``."""
    if u.ndim < 3:
        raise ShapeError(
            f"u: expected (n_trajectories, n_times, channels, *grid); got shape {u.shape}"
        )
    if t.shape != (u.shape[1],):
        raise ShapeError(f"t: expected shape ({u.shape[1]},); got {t.shape}")


def pair_batches(
    u: np.ndarray,
    t: np.ndarray,
    batch_size: int,
    *,
    index: PairIndex | None = None,
    seed: int | None = 0,
    drop_last: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of ``(x, lead, y)`` numpy batches of pairs (for the JAX loop).

    Parameters
    ----------
    u:
        Trajectories ``(n_trajectories, n_times, channels, *grid)``.
    t:
        Times ``(n_times,)``.
    batch_size:
        Examples per batch.
    index:
        The pair enumeration; default ``PairIndex(n_trajectories, n_times)``.
    seed:
        Shuffle with ``numpy.random.default_rng(seed)``; ``None`` keeps the order.
    drop_last:
        Leave out a last incomplete batch.

    Yields
    ------
    ``x`` ``(batch, channels, *grid)``, ``lead`` ``(batch,)``, ``y`` like ``x``.
    """
    t = np.asarray(t)
    check_trajectories(u, t)
    index = index or PairIndex(u.shape[0], u.shape[1])
    if (index.n_trajectories, index.n_times) != u.shape[:2]:
        raise ShapeError(
            f"u: expected leading shape ({index.n_trajectories}, {index.n_times}) "
            f"from index; got {u.shape[:2]}"
        )
    batches = batch_indices(
        len(index), batch_size, shuffle=seed is not None, seed=seed, drop_last=drop_last
    )
    for flat in batches:
        trajectory, i, j = index.locate(flat)
        yield u[trajectory, i], (t[j] - t[i]).astype(u.dtype), u[trajectory, j]

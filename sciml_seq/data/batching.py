"""The index batches of one pass over ``n`` examples (numpy only)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..checks import check_int

__all__ = ["batch_indices"]


def batch_indices(
    n: int,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[np.ndarray]:
    """Yield int64 index arrays ``(b,)`` that visit ``0 .. n - 1`` once, ``b <= batch_size``.

    ``shuffle`` visits them in the order ``numpy.random.default_rng(seed).permutation(n)``;
    ``drop_last`` skips a last batch smaller than ``batch_size``.
    """
    batch_size = check_int("batch_size", batch_size)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]

"""Timing shared by the benchmark scripts: the median of synchronised wall-clock runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(
    run: Callable[[], None], sync: Callable[[], None], repeats: int, warmup: int = 2
) -> float:
    """Median wall time of ``run`` over ``repeats`` calls after ``warmup`` calls.

    ``sync`` waits for queued device work (``torch.cuda.synchronize``,
    ``jax.block_until_ready`` of the last result, or nothing on the CPU); it runs
    after the warm-up and after every timed call, inside the timed interval.
    """
    for _ in range(warmup):
        run()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)

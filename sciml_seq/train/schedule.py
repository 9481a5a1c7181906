"""Linear warm-up followed by cosine decay, as a learning-rate multiplier.

The same numbers as ``optax.warmup_cosine_decay_schedule(0, 1, warmup_steps,
total_steps, min_ratio)`` (and Hugging Face's cosine schedule with warm-up for
``min_ratio=0``): ``step / warmup_steps`` during warm-up, then
``min_ratio + (1 - min_ratio) (1 + cos(pi s / D)) / 2`` with ``s`` the steps
since warm-up and ``D = total_steps - warmup_steps``, constant at ``min_ratio``
after ``total_steps``.
"""

from __future__ import annotations

import math

from ..checks import check_int, check_real
from ..errors import OptionError

__all__ = ["warmup_cosine"]


def warmup_cosine(
    step: int, *, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0
) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based)."""
    total_steps = check_int("total_steps", total_steps)
    if check_int("warmup_steps", warmup_steps, low=0) >= total_steps:
        raise OptionError(
            f"warmup_steps: expected an integer < total_steps = {total_steps}; got {warmup_steps}"
        )
    min_ratio = check_real("min_ratio", min_ratio, ge=0.0, le=1.0)
    if step < warmup_steps:
        return step / warmup_steps
    decay = total_steps - warmup_steps
    progress = min(step - warmup_steps, decay) / decay
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

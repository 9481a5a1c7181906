"""Deprecated alias: the relative losses moved to :mod:`sciml_seq.losses` (the framework-free
core, so that the core's operator code does not import the training layer).

Importing this module warns (``DeprecationWarning``) and gives the same functions; it goes
after release 0.2.
"""

from __future__ import annotations

import warnings

from ..losses import (
    LOSS_EXPONENTS,
    REDUCTIONS,
    channel_groups,
    pooled_relative_loss,
    relative_errors,
    relative_l1_loss,
)

warnings.warn(
    "sciml_seq.train.losses moved to sciml_seq.losses (the old path goes after release 0.2)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "LOSS_EXPONENTS",
    "REDUCTIONS",
    "channel_groups",
    "pooled_relative_loss",
    "relative_errors",
    "relative_l1_loss",
]

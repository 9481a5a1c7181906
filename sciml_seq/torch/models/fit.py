"""Deprecated alias: the forecaster's training helpers moved to :mod:`sciml_seq.train.forecasting`
(training code lives in ``train/``, over the one training core).

Names looked up here warn (``DeprecationWarning``) and give the functions of the new
module; the alias goes after release 0.2.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

MOVED = (
    "FitLog",
    "evaluate_forecaster",
    "fit_forecaster",
    "masked_mse",
    "predict",
    "series_tensors",
)
"""The names that moved to :mod:`sciml_seq.train.forecasting`."""


def moved(name: str, where: str) -> Any:
    """``sciml_seq.train.forecasting.<name>``, with a DeprecationWarning naming ``where``."""
    warnings.warn(
        f"{where}.{name} moved to sciml_seq.train.forecasting.{name} "
        "(the old path goes after release 0.2)",
        DeprecationWarning,
        stacklevel=3,
    )
    # imported by name: torch/ sits below train/ and keeps no import of it
    return getattr(importlib.import_module("sciml_seq.train.forecasting"), name)


def __getattr__(name: str) -> Any:
    if name in MOVED:
        return moved(name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(MOVED)

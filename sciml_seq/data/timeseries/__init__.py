"""Real-world time series for forecasting (numpy only; nothing is downloaded).

:func:`read_ett` reads a local copy of an ETT file, :func:`ett_splits` applies
the standard long-horizon protocol (train/val/test borders, scaler fitted on
the training rows, stride-1 windows) and returns :class:`WindowSource` objects
that serve ``(x, y)`` windows and numpy batches (``sciml_seq.torch.timeseries``
wraps them as a torch ``Dataset``).  :func:`fit_linear_forecaster` is the
closed-form channel-independent linear baseline::

    from sciml_seq.data.timeseries import (
        evaluate_forecaster, ett_splits, fit_linear_forecaster, read_ett)
    splits = ett_splits(read_ett("path/to/ETTh1.csv"), seq_len=96, pred_len=96)
    model = fit_linear_forecaster(splits.train)
    evaluate_forecaster(model, splits.test)  # ForecastScores(mse=0.3813, mae=0.3932)
"""

from __future__ import annotations

from .ett import ETT_COLUMNS, ETTData, ETTSplits, ett_splits, read_ett, split_borders
from .linear import (
    ForecastScores,
    LinearForecaster,
    evaluate_forecaster,
    fit_linear_forecaster,
    mae,
    mse,
)
from .windows import StandardScaler, WindowSource

__all__ = [
    "ETT_COLUMNS",
    "ETTData",
    "ETTSplits",
    "ForecastScores",
    "LinearForecaster",
    "StandardScaler",
    "WindowSource",
    "ett_splits",
    "evaluate_forecaster",
    "fit_linear_forecaster",
    "mae",
    "mse",
    "read_ett",
    "split_borders",
]

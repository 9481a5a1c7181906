"""Real-world time series for forecasting (numpy only; nothing is downloaded).

:func:`read_ett` reads a local copy of an ETT file, :func:`ett_splits` applies
the standard long-horizon protocol (train/val/test borders, scaler fitted on
the training rows, stride-1 windows) and returns :class:`WindowSource` objects
that serve ``(x, y)`` windows and numpy batches (``sciml_seq.torch.timeseries``
wraps them as a torch ``Dataset``).  :func:`fit_linear_forecaster` is the
closed-form channel-independent linear baseline (``relative=True``: the
closed-form NLinear); :mod:`.protocol` holds the grid of the literature
(ETTh1 / ETTh2, horizons, input lengths) and its published scores::

    from sciml_seq.data.timeseries import (
        evaluate_forecaster, ett_splits, fit_linear_forecaster, read_ett)
    splits = ett_splits(read_ett("path/to/ETTh1.csv"), seq_len=96, pred_len=96)
    model = fit_linear_forecaster(splits.train)
    evaluate_forecaster(model, splits.test)  # ForecastScores(mse=0.3813, mae=0.3932)
"""

from __future__ import annotations

from .baselines import check_kernel_size, check_revin, patch_count
from .ett import ETT_COLUMNS, ETTData, ETTSplits, ett_splits, read_ett, split_borders
from .linear import (
    ForecastScores,
    LinearForecaster,
    evaluate_forecaster,
    fit_linear_forecaster,
    mae,
    mse,
)
from .protocol import (
    DATASETS,
    HORIZONS,
    INPUT_LENGTHS,
    PUBLISHED,
    Published,
    ett_file,
    mean_std,
    parse_grid,
)
from .windows import StandardScaler, WindowSource

__all__ = [
    "DATASETS",
    "ETT_COLUMNS",
    "ETTData",
    "ETTSplits",
    "ForecastScores",
    "HORIZONS",
    "INPUT_LENGTHS",
    "LinearForecaster",
    "PUBLISHED",
    "Published",
    "StandardScaler",
    "WindowSource",
    "check_kernel_size",
    "check_revin",
    "ett_file",
    "ett_splits",
    "evaluate_forecaster",
    "fit_linear_forecaster",
    "mae",
    "mean_std",
    "mse",
    "parse_grid",
    "patch_count",
    "read_ett",
    "split_borders",
]

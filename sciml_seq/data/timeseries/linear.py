"""The closed-form channel-independent linear forecaster, and MSE / MAE (numpy).

One linear map from the last ``seq_len`` values of a channel to its next
``pred_len`` values, shared by every channel and fitted by least squares on
all training windows of all channels:

    minimise  sum over windows w, channels c of ||W^T x_wc + b - y_wc||^2 + ridge ||W||^2

with ``x_wc`` ``(seq_len,)``, ``y_wc`` ``(pred_len,)``, ``W`` ``(seq_len, pred_len)``
and ``b`` ``(pred_len,)`` (zero unless ``bias=True``; it is not penalised).
The normal equations are accumulated window block by window block, so memory
does not grow with the number of windows.  This is the linear baseline of the
long-horizon literature in its closed form (e.g. Toner & Darlow, "An Analysis of
Linear Time Series Forecasting Models", ICML 2024): on ETTh1, input 96,
horizon 96, ``features="M"``, it gives test MSE 0.3813 and MAE 0.3932 on the
scaled data (``docs/timeseries.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...checks import check_int, check_real
from ...errors import OptionError, ShapeError
from .windows import WindowSource

__all__ = [
    "ForecastScores",
    "LinearForecaster",
    "evaluate_forecaster",
    "fit_linear_forecaster",
    "mae",
    "mse",
]


@dataclass(frozen=True)
class LinearForecaster:
    """``y[..., h, c] = sum_l x[..., l, c] weight[l, h] + bias[h]`` for every channel ``c``.

    With ``relative`` (the closed-form NLinear) the map acts on the input
    minus its last value, which is added back: ``y = (x - x_last) weight +
    bias + x_last``.

    Attributes
    ----------
    weight: ``(seq_len, pred_len)`` float64.
    bias: ``(pred_len,)`` float64.
    relative: inputs and targets relative to the last input value.
    """

    weight: np.ndarray
    bias: np.ndarray
    relative: bool = False

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Forecasts ``(..., pred_len, C)`` from inputs ``x`` ``(..., seq_len, C)``."""
        x = np.asarray(x, dtype=np.float64)
        seq_len = self.weight.shape[0]
        if x.ndim < 2 or x.shape[-2] != seq_len:
            raise ShapeError(f"x: expected (..., {seq_len}, channels); got {x.shape}")
        last = x[..., -1:, :] if self.relative else 0.0
        return np.einsum("...lc,lh->...hc", x - last, self.weight) + self.bias[:, None] + last

    __call__ = predict


def fit_linear_forecaster(
    source: WindowSource,
    *,
    ridge: float = 0.0,
    bias: bool = False,
    relative: bool = False,
    block: int = 4096,
) -> LinearForecaster:
    """Least-squares :class:`LinearForecaster` on every window of every channel of ``source``.

    ``source`` must forecast each channel from its own past (``features="M"``
    or ``"S"``: its targets are its inputs).  ``ridge`` >= 0 adds
    ``ridge * ||weight||^2``; with ``ridge=0`` the windows must span
    ``seq_len`` (+1 with ``bias``) dimensions.  ``relative`` fits the closed-form
    NLinear: every window (input and target) minus its last input value, whose
    input column is then zero and left out (its weight is 0).  ``block``
    windows are stacked at a time while the normal equations are accumulated.
    """
    ridge = check_real("ridge", ridge, ge=0.0)
    block = check_int("block", block)
    if source.targets is not source.inputs and not np.array_equal(source.targets, source.inputs):
        raise OptionError(
            "source: expected targets equal to the inputs (features 'M' or 'S'), since each "
            f"channel is forecast from its own past; got inputs {source.inputs.shape} and "
            f"targets {source.targets.shape}"
        )
    seq_len, width = source.seq_len, source.seq_len + source.pred_len
    # Gram matrix of the rows [x, y, 1] of all windows of all channels
    gram = np.zeros((width + 1, width + 1))
    for series in source.inputs.T:
        windows = sliding_window_view(series, width)
        for start in range(0, len(windows), block):
            rows = windows[start : start + block]
            if relative:
                rows = rows - rows[:, seq_len - 1 : seq_len]
            rows = np.concatenate([rows, np.ones((len(rows), 1))], axis=1)
            gram += rows.T @ rows
    inputs = seq_len - 1 if relative else seq_len  # relative: the last input is 0
    regressors = list(range(inputs)) + ([width] if bias else [])
    lhs = gram[np.ix_(regressors, regressors)]
    lhs[np.arange(inputs), np.arange(inputs)] += ridge
    rhs = gram[regressors, seq_len:width]
    try:
        solution = np.linalg.solve(lhs, rhs)
    except np.linalg.LinAlgError:
        raise OptionError(
            "ridge: the normal equations are singular (the input windows do not span "
            f"{len(regressors)} dimensions); expected ridge > 0; got {ridge}"
        ) from None
    weight = np.zeros((seq_len, source.pred_len))
    weight[:inputs] = solution[:inputs]
    intercept = solution[inputs] if bias else np.zeros(source.pred_len)
    return LinearForecaster(weight, intercept, relative=bool(relative))


class ForecastScores(NamedTuple):
    """MSE and MAE over every window, step and channel of a split."""

    mse: float
    mae: float


def evaluate_forecaster(
    forecast: Callable[[np.ndarray], np.ndarray], source: WindowSource, *, batch_size: int = 512
) -> ForecastScores:
    """MSE, MAE of ``forecast: (batch, seq_len, C_in) -> (batch, pred_len, C_out)`` on ``source``.

    Every window counts once (no batch is dropped); values are those of the
    source (scaled, for the standard protocol).
    """
    squared = absolute = 0.0
    count = 0
    for x, y in source.batches(batch_size):
        error = errors(forecast(x), y)
        squared += float(np.sum(error**2))
        absolute += float(np.sum(np.abs(error)))
        count += error.size
    return ForecastScores(squared / count, absolute / count)


def errors(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``pred - target`` in float64, after checking that the shapes agree."""
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ShapeError(f"pred: expected the shape of target {target.shape}; got {pred.shape}")
    return pred - target


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over every element of ``pred`` and ``target`` (same shape)."""
    return float(np.mean(errors(pred, target) ** 2))


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error over every element of ``pred`` and ``target`` (same shape)."""
    return float(np.mean(np.abs(errors(pred, target))))

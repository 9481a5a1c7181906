"""notebooks/ett_forecasting.py runs at quick sizes on the local ETTh1.csv and is jupytext.

The linear baseline's scores on the notebook's test windows are checked against
an independent least-squares fit (``numpy.linalg.lstsq`` on the stacked
training windows, not the normal equations of ``fit_linear_forecaster``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import ETTH1 as DATA  # the notebook's default "../../shared/data/ETT/..."
from tests.conftest import notebook_cell_kinds


def windows(
    series: np.ndarray, starts: np.ndarray, seq_len: int, pred_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """One row per (start, channel) of ``series`` ``(rows, C)``: x ``(n * C, seq_len)``, y."""
    x = series[starts[:, None] + np.arange(seq_len)]  # (n, seq_len, C)
    y = series[starts[:, None] + seq_len + np.arange(pred_len)]
    return x.transpose(0, 2, 1).reshape(-1, seq_len), y.transpose(0, 2, 1).reshape(-1, pred_len)


@pytest.mark.skipif(not DATA.is_file(), reason=f"ETTh1.csv is not at {DATA} (not shipped)")
def test_ett_forecasting_notebook_runs(tmp_path, run_notebook):
    pytest.importorskip("torch")
    ns = run_notebook("ett_forecasting")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.png", "forecasts.png", "loss.png"]
    assert ns["n_windows"] == (8449, 2785, 2785)

    # the quick run scores on EVAL_WINDOWS evenly spaced test windows, the first and last included
    eval_idx = ns["eval_idx"]
    assert len(eval_idx) == ns["EVAL_WINDOWS"] < 2785
    assert eval_idx[0] == 0 and eval_idx[-1] == 2784

    # independent reference: least squares on every (window, channel) of the training split
    seq_len, pred_len = ns["SEQ_LEN"], ns["PRED_LEN"]
    train, test = ns["splits"].train.inputs, ns["splits"].test.inputs
    x, y = windows(train, np.arange(len(train) - seq_len - pred_len + 1), seq_len, pred_len)
    weight = np.linalg.lstsq(x, y, rcond=None)[0]
    x, y = windows(test, eval_idx, seq_len, pred_len)
    error = x @ weight - y
    linear_mse, linear_mae = ns["scores"]["linear"]
    assert linear_mse == pytest.approx(np.mean(error**2), rel=1e-9)
    assert linear_mae == pytest.approx(np.mean(np.abs(error)), rel=1e-9)

    # S4D was trained for STEPS steps and scored on the same windows
    assert len(ns["losses"]) == ns["STEPS"]
    assert ns["pred_s4d"].shape == ns["y_eval"].shape == (len(eval_idx), pred_len, 7)
    s4d_mse, s4d_mae = ns["scores"]["S4D"]
    assert math.isfinite(s4d_mse) and math.isfinite(s4d_mae) and s4d_mse > 0
    s4d_error = ns["pred_s4d"] - ns["y_eval"]
    np.testing.assert_array_equal(ns["y_eval"].transpose(0, 2, 1).reshape(-1, pred_len), y)
    assert s4d_mse == pytest.approx(np.mean(s4d_error**2), rel=1e-12)


def test_ett_forecasting_notebook_is_jupytext():
    kinds = notebook_cell_kinds("ett_forecasting")
    assert kinds.count("markdown") >= 6 and kinds.count("code") >= 6

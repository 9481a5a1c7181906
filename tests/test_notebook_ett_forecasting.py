"""notebooks/ett_forecasting.py runs at quick sizes on the local ETTh1.csv and is jupytext.

The closed-form baselines' scores on the notebook's test windows are checked
against independent least-squares fits (``numpy.linalg.lstsq`` on the stacked
training windows, plain and minus each window's last value, not the normal
equations of ``fit_linear_forecaster``); the trained models' scores against
numpy on their forecasts.  Running the notebook trains two models (seconds on
a shared CPU), so that test is slow; the jupytext check stays fast.
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


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_file(), reason=f"ETTh1.csv is not at {DATA} (not shipped)")
def test_ett_forecasting_notebook_runs(tmp_path, run_notebook):
    pytest.importorskip("torch")
    ns = run_notebook("ett_forecasting")
    figures = sorted(p.name for p in tmp_path.iterdir())
    assert figures == ["data.png", "error_by_lead.png", "forecasts.png"]
    assert ns["n_windows"] == (8449, 2785, 2785)

    # the quick run scores on EVAL_WINDOWS evenly spaced test windows, the first and last included
    eval_idx = ns["eval_idx"]
    assert len(eval_idx) == ns["EVAL_WINDOWS"] < 2785
    assert eval_idx[0] == 0 and eval_idx[-1] == 2784

    # independent references: least squares on every (window, channel) of the training split
    seq_len, pred_len = ns["SEQ_LEN"], ns["PRED_LEN"]
    train, test = ns["splits"].train.inputs, ns["splits"].test.inputs
    x, y = windows(train, np.arange(len(train) - seq_len - pred_len + 1), seq_len, pred_len)
    x_test, y_test = windows(test, eval_idx, seq_len, pred_len)
    weight = np.linalg.lstsq(x, y, rcond=None)[0]
    last, last_test = x[:, -1:], x_test[:, -1:]
    relative = np.linalg.lstsq(x[:, :-1] - last, y - last, rcond=None)[0]
    references = {
        "linear": x_test @ weight - y_test,
        "NLinear (closed form)": (x_test[:, :-1] - last_test) @ relative + last_test - y_test,
    }
    for name, error in references.items():
        got_mse, got_mae = ns["scores"][name]
        assert got_mse == pytest.approx(np.mean(error**2), rel=1e-8), name
        assert got_mae == pytest.approx(np.mean(np.abs(error)), rel=1e-8), name

    # the two trained models were trained and scored on the same windows
    y_eval = ns["y_eval"]
    np.testing.assert_array_equal(y_eval.transpose(0, 2, 1).reshape(-1, pred_len), y_test)
    for name in ("s4d", "patchtst"):
        assert ns["runs"][name].steps >= 1 and math.isfinite(ns["runs"][name].best_val)
        pred = ns["forecasts"][name]
        assert pred.shape == y_eval.shape == (len(eval_idx), pred_len, 7)
        assert ns["scores"][name][0] == pytest.approx(np.mean((pred - y_eval) ** 2), rel=1e-12)
    # the error-by-lead curves average back to each model's MSE
    for name, curve in ns["lead_mse"].items():
        assert curve.shape == (pred_len,)
        assert curve.mean() == pytest.approx(ns["scores"][name][0], rel=1e-10)


def test_ett_forecasting_notebook_is_jupytext():
    kinds = notebook_cell_kinds("ett_forecasting")
    assert kinds.count("markdown") >= 8 and kinds.count("code") >= 7

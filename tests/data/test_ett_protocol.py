"""The ETT grid (ETTh1/ETTh2 x horizons x input lengths), the closed-form NLinear, grid options.

Window counts are checked against the border arithmetic of Informer's
``Dataset_ETT_hour`` written out independently (12 / 4 / 4 months of 30 days,
val and test starting ``seq_len`` rows before their border); ETTh2's values
against ``numpy.loadtxt``; the closed-form NLinear against ``numpy.linalg.lstsq``
on explicitly stacked windows minus their last input value.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from sciml_seq.data.timeseries import (
    DATASETS,
    HORIZONS,
    INPUT_LENGTHS,
    PUBLISHED,
    WindowSource,
    ett_file,
    ett_splits,
    fit_linear_forecaster,
    mean_std,
    parse_grid,
    read_ett,
)
from sciml_seq.errors import OptionError
from tests.conftest import ETTH1

ROOT = ETTH1.parent


@pytest.fixture(scope="module")
def etth2():
    if not (ROOT / "ETTh2.csv").is_file():
        pytest.skip(f"ETTh2.csv not found in {ROOT} (not shipped)")
    return read_ett(ett_file("ETTh2", ROOT))


def test_etth2_reads_like_numpy_loadtxt(etth2):
    expected = np.loadtxt(ROOT / "ETTh2.csv", delimiter=",", skiprows=1, usecols=range(1, 8))
    np.testing.assert_array_equal(etth2.values, expected)
    assert etth2.freq == "h" and len(etth2) == 17420


@pytest.mark.parametrize("seq_len", INPUT_LENGTHS)
def test_grid_windows_follow_informers_borders(etth2, seq_len):
    month = 30 * 24
    for pred_len in HORIZONS:
        splits = ett_splits(etth2, seq_len, pred_len)
        borders = [(0, 12 * month), (12 * month - seq_len, 16 * month),
                   (16 * month - seq_len, 20 * month)]  # fmt: skip
        for source, (start, stop) in zip((splits.train, splits.val, splits.test), borders,
                                         strict=True):  # fmt: skip
            assert len(source) == stop - start - seq_len - pred_len + 1
            t_x, t_y = source.window_times(0)
            assert t_x[0] == start and t_y[0] == start + seq_len  # hours = rows, hourly data
            assert source.window_times(-1)[1][-1] == stop - 1
        # train-only scaling: the training rows of each channel have mean 0, std 1
        train_rows = splits.train.inputs
        np.testing.assert_allclose(train_rows.mean(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(train_rows.std(axis=0), 1.0, atol=1e-12)


def test_closed_form_nlinear_is_least_squares_relative_to_the_last_value():
    series = np.random.default_rng(3).normal(size=(70, 2)).cumsum(axis=0)
    seq_len, pred_len = 6, 3
    source = WindowSource(series, series, seq_len, pred_len)
    model = fit_linear_forecaster(source, relative=True, bias=True, block=9)
    xs, ys = [], []
    for c in range(2):
        for i in range(70 - seq_len - pred_len + 1):
            last = series[i + seq_len - 1, c]
            xs.append(series[i : i + seq_len, c] - last)
            ys.append(series[i + seq_len : i + seq_len + pred_len, c] - last)
    design = np.column_stack([np.array(xs)[:, :-1], np.ones(len(xs))])  # the last column is 0
    solution = np.linalg.lstsq(design, np.array(ys), rcond=None)[0]
    np.testing.assert_allclose(model.weight[:-1], solution[:-1], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(model.weight[-1], 0.0)
    np.testing.assert_allclose(model.bias, solution[-1], rtol=1e-9, atol=1e-12)
    x, _ = source.take(np.arange(5))
    expected = np.einsum("nlc,lh->nhc", x - x[:, -1:], model.weight) + model.bias[:, None]
    np.testing.assert_allclose(model.predict(x), expected + x[:, -1:], rtol=1e-12)
    # a level shift of the input moves the forecast by the same amount
    np.testing.assert_allclose(model.predict(x + 5.0), model.predict(x) + 5.0, atol=1e-9)


def test_published_table_has_every_cell_of_the_grid():
    for table in PUBLISHED.values():
        assert set(table) == {(d, h) for d in DATASETS for h in HORIZONS}
    assert PUBLISHED["PatchTST/64"]["ETTh1", 96] == (0.370, 0.400, 512)
    assert PUBLISHED["PatchTST/64"]["ETTh1", 720][:2] == (0.447, 0.468)
    assert PUBLISHED["PatchTST/64"]["ETTh2", 96][:2] == (0.274, 0.337)
    assert PUBLISHED["DLinear"]["ETTh1", 96] == (0.375, 0.399, 336)


def test_grid_options_and_files(tmp_path):
    assert parse_grid("--horizons", "96, 720") == (96, 720)
    assert parse_grid("--datasets", "ETTh2,ETTh1", DATASETS) == ("ETTh2", "ETTh1")
    with pytest.raises(OptionError, match="^--horizons: expected integers; got 'x'"):
        parse_grid("--horizons", "96,x")
    with pytest.raises(OptionError, match="^--seeds: expected distinct values"):
        parse_grid("--seeds", "0,0")
    with pytest.raises(OptionError, match="^--datasets: expected one of"):
        parse_grid("--datasets", "ETTm1", DATASETS)
    with pytest.raises(OptionError, match="^root: expected a folder holding ETTh1.csv"):
        ett_file("ETTh1", tmp_path)
    with pytest.raises(OptionError, match="^dataset: expected one of"):
        ett_file("weather", tmp_path)
    values = [0.41, 0.43, 0.38]
    assert mean_std(values) == pytest.approx(
        (statistics.mean(values), statistics.stdev(values), 3), rel=1e-12
    )
    mean, std, n = mean_std([0.5])
    assert mean == 0.5 and np.isnan(std) and n == 1

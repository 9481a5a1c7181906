"""ETT loading, the standard long-horizon protocol, stride-1 windows and the linear baseline.

Tests that need the real files read ``../shared/data/ETT`` beside the repository
(never shipped with it) and are skipped when it is absent; format tests write
their own tiny csv files.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from sciml_seq.data.timeseries import (
    ETT_COLUMNS,
    ETTData,
    StandardScaler,
    WindowSource,
    ett_splits,
    evaluate_forecaster,
    fit_linear_forecaster,
    mae,
    mse,
    read_ett,
    split_borders,
)
from sciml_seq.errors import FormatError, OptionError, ShapeError
from tests.conftest import ETTH1

HEADER = "date," + ",".join(ETT_COLUMNS)
START = np.datetime64("2016-07-01T00:00:00", "s")


@pytest.fixture(scope="module")
def etth1() -> ETTData:
    if not ETTH1.exists():
        pytest.skip(f"ETT data not found at {ETTH1} (a local copy beside the repository)")
    return read_ett(ETTH1)


def write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def rows(n: int, step_s: int = 3600) -> list[str]:
    """``n`` valid data lines ``step_s`` seconds apart, values ``10 * row + column``."""
    dates = START + np.arange(n) * np.timedelta64(step_s, "s")
    return [
        str(date).replace("T", " ") + "," + ",".join(str(10.0 * i + j) for j in range(7))
        for i, date in enumerate(dates)
    ]


def synthetic(n_rows: int, freq: str = "h", seed: int = 0) -> ETTData:
    step = np.timedelta64(3600 if freq == "h" else 900, "s")
    values = np.random.default_rng(seed).normal(size=(n_rows, 7)).cumsum(axis=0)
    return ETTData(START + np.arange(n_rows) * step, values, ETT_COLUMNS, freq, "synthetic")


# ---------------------------------------------------------------- reading


def test_read_etth1_matches_an_independent_parse(etth1):
    assert etth1.columns == ETT_COLUMNS and etth1.freq == "h" and etth1.rows_per_hour == 1
    assert etth1.values.shape == (17420, 7) and etth1.values.dtype == np.float64
    assert etth1.dates.dtype == np.dtype("datetime64[s]")
    assert etth1.dates[0] == START
    assert etth1.dates[-1] == np.datetime64("2018-06-26T19:00:00")
    reference = np.loadtxt(etth1.path, delimiter=",", skiprows=1, usecols=range(1, 8))
    np.testing.assert_array_equal(etth1.values, reference)
    assert etth1.values[0, -1] == 30.5310001373291  # OT of the first line, as written
    np.testing.assert_array_equal(etth1.hours, np.arange(17420.0))
    assert not etth1.values.flags.writeable and not etth1.dates.flags.writeable


def test_read_hourly_and_15_minute_files(tmp_path):
    hourly = read_ett(write_csv(tmp_path / "h.csv", rows(5)))
    assert hourly.freq == "h" and hourly.rows_per_hour == 1 and len(hourly) == 5
    np.testing.assert_array_equal(hourly.values, 10.0 * np.arange(5)[:, None] + np.arange(7))
    minute = read_ett(write_csv(tmp_path / "m.csv", rows(6, step_s=900)))
    assert minute.freq == "15min" and minute.rows_per_hour == 4
    np.testing.assert_array_equal(minute.hours, np.arange(6) / 4)
    assert minute.dates[1] == np.datetime64("2016-07-01T00:15:00")
    with_bom = write_csv(tmp_path / "bom.csv", rows(3), header="\ufeff" + HEADER)
    assert with_bom.read_bytes().startswith(b"\xef\xbb\xbf")  # a byte-order mark is tolerated
    np.testing.assert_array_equal(read_ett(with_bom).values, hourly.values[:3])


def replace_cell(lines: list[str], row: int, column: int, cell: str) -> list[str]:
    cells = lines[row].split(",")
    cells[column] = cell
    return lines[:row] + [",".join(cells)] + lines[row + 1 :]


@pytest.mark.parametrize(
    ("header", "lines", "message"),
    [
        (HEADER.replace("OT", "oil"), rows(3), r"header .*missing: \['OT'\]; unknown: \['oil'\]"),
        (HEADER.replace(",LULL", ""), rows(3), r"missing: \['LULL'\]"),
        (HEADER, [], "at least 2 data rows; got 0"),
        (HEADER, replace_cell(rows(4), 2, 3, "abc"), r"line 4, column 'MUFL'.*number; got 'abc'"),
        (HEADER, replace_cell(rows(4), 1, 7, "nan"), r"line 3, column 'OT'.*finite.*'nan'"),
        (HEADER, replace_cell(rows(4), 1, 7, ""), r"line 3, column 'OT'.*got ''"),
        (HEADER, rows(3) + ["2016-07-01 03:00:00,1,2"], "line 5: expected 8 cells; got 3"),
        (HEADER, replace_cell(rows(3), 1, 0, "July 1st"), "line 3: date 'July 1st'"),
        (
            HEADER,
            rows(3) + rows(1),
            r"line 5: timestamps must increase; got 2016-07-01T00:00:00 after 2016-07-01T02:00:00",
        ),
        (
            HEADER,
            rows(3)[:2] + rows(4)[3:],
            r"line 4: .* first two rows, 3600 s; got 2016-07-01T03:00:00 after .*T01:00",
        ),
        (HEADER, rows(4, step_s=1800), "3600 s .ETTh. or 900 s .ETTm. apart; got 1800 s"),
    ],
)
def test_format_errors_name_the_file_and_what_is_wrong(tmp_path, header, lines, message):
    path = write_csv(tmp_path / "bad.csv", lines, header)
    with pytest.raises(FormatError, match=message) as error:
        read_ett(path)
    assert str(path) in str(error.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(FormatError, match="expected the header date,HUFL.*got nothing"):
        read_ett(path)


# ---------------------------------------------------------------- the protocol


def test_split_borders_are_informers():
    # Informer's Dataset_ETT_hour: border1s = [0, 12*30*24 - seq_len, 12*30*24 + 4*30*24 - seq_len],
    # border2s = [12*30*24, 12*30*24 + 4*30*24, 12*30*24 + 8*30*24]; Dataset_ETT_minute: * 4
    assert split_borders(1, 96) == ((0, 8640), (8544, 11520), (11424, 14400))
    assert split_borders(4, 336) == ((0, 34560), (34224, 46080), (45744, 57600))


def count_windows(lo: int, hi: int, seq_len: int, pred_len: int) -> int:
    """Windows whose targets lie in rows [lo, hi) and whose inputs start at row >= 0."""
    return sum(1 for first in range(lo, hi) if first - seq_len >= 0 and first + pred_len <= hi)


def test_window_counts_of_etth1_96_96(etth1):
    splits = ett_splits(etth1, 96, 96)
    counts = (len(splits.train), len(splits.val), len(splits.test))
    # the counts Informer / Autoformer / Time-Series-Library print: train 8449, val 2785, test 2785
    assert counts == (8449, 2785, 2785)
    # targets in each split's own rows, inputs anywhere before (val/test borrow seq_len rows)
    assert count_windows(96, 8640, 96, 96) == len(splits.train) == 8449
    assert count_windows(8640, 11520, 96, 96) == len(splits.val) == 2785
    assert count_windows(11520, 14400, 96, 96) == len(splits.test) == 2785
    # the first target of val / test is the first row of the split, the last one the last row
    assert splits.val.window_times(0)[1][0] == 8640 and splits.test.window_times(0)[1][0] == 11520
    assert splits.test.window_times(-1)[1][-1] == 14399
    assert splits.test.dates[-1] == np.datetime64("2018-02-20T23:00:00")  # 600 days minus 1 h


def test_scaler_uses_training_rows_and_windows_hold_scaled_rows(etth1):
    splits = ett_splits(etth1, 48, 24)
    train_ot = [float(v) for v in etth1.values[:8640, -1]]
    assert splits.scaler.mean[-1] == pytest.approx(statistics.fmean(train_ot), rel=1e-12)
    assert splits.scaler.std[-1] == pytest.approx(statistics.pstdev(train_ot), rel=1e-12)
    assert abs(splits.scaler.mean[-1] - etth1.values[:, -1].mean()) > 1.0  # not the whole file
    mean, std = splits.scaler.mean, splits.scaler.std
    for source, start in ((splits.train, 0), (splits.val, 8640 - 48), (splits.test, 11520 - 48)):
        for i in (0, 17, len(source) - 1):
            x, y = source[i]
            row = start + i
            np.testing.assert_allclose(x, (etth1.values[row : row + 48] - mean) / std, atol=1e-12)
            np.testing.assert_allclose(
                y, (etth1.values[row + 48 : row + 72] - mean) / std, atol=1e-12
            )
            t_x, t_y = source.window_times(i)
            np.testing.assert_array_equal(t_x, np.arange(row, row + 48))
            np.testing.assert_array_equal(t_y, np.arange(row + 48, row + 72))
    raw = splits.scaler.inverse_transform(splits.test[5][1])
    np.testing.assert_allclose(raw, etth1.values[11520 - 48 + 5 + 48 :][:24], atol=1e-12)


def test_features_s_and_ms_and_unscaled(etth1):
    single = ett_splits(etth1, 32, 8, features="S", target="OT")
    x, y = single.train[3]
    assert x.shape == (32, 1) and y.shape == (8, 1) and single.train.input_columns == ("OT",)
    mean, std = single.scaler.mean[0], single.scaler.std[0]
    np.testing.assert_allclose(x[:, 0], (etth1.values[3:35, -1] - mean) / std, atol=1e-12)
    mixed = ett_splits(etth1, 32, 8, features="MS", target="HUFL")
    x, y = mixed.val[0]
    assert x.shape == (32, 7) and y.shape == (8, 1) and mixed.val.target_columns == ("HUFL",)
    assert mixed.target_scaler.mean[0] == mixed.scaler.mean[0]
    assert mixed.target_scaler.std[0] == mixed.scaler.std[0]
    np.testing.assert_allclose(y[:, 0], mixed.val.inputs[32:40, 0], atol=0)
    raw = ett_splits(etth1, 32, 8, scale=False)
    assert raw.scaler is None and raw.target_scaler is None
    np.testing.assert_array_equal(raw.test[0][0], etth1.values[11520 - 32 : 11520])


def test_15_minute_data_has_four_times_the_rows():
    splits = ett_splits(synthetic(57600 + 10, freq="15min"), 96, 96)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (34369, 11425, 11425)
    assert splits.val.dates[96] == START + np.timedelta64(360, "D")
    assert splits.val.window_times(0)[1][0] == 8640.0  # hours since the start


def test_protocol_errors(tmp_path):
    data = synthetic(14400)
    with pytest.raises(OptionError, match=r"seq_len \+ pred_len: expected <= 8640.*8600 \+ 96"):
        ett_splits(data, 8600, 96)
    with pytest.raises(OptionError, match="pred_len: expected <= 2880.*got 2881"):
        ett_splits(data, 96, 2881)
    assert len(ett_splits(data, 96, 2880).val) == 1  # the longest horizon the splits allow
    with pytest.raises(OptionError, match="features: expected one of 'M', 'S', 'MS'; got 'X'"):
        ett_splits(data, 96, 96, features="X")
    with pytest.raises(OptionError, match="target: expected one of 'HUFL'.*'OT'; got 'oil'"):
        ett_splits(data, 96, 96, target="oil")
    with pytest.raises(OptionError, match="seq_len: expected an integer >= 1; got 0"):
        ett_splits(data, 0, 96)
    with pytest.raises(ShapeError, match="data: expected at least 14400 rows.*got 100"):
        ett_splits(read_ett(write_csv(tmp_path / "short.csv", rows(100))), 8, 8)
    with pytest.raises(TypeError, match="data: expected an ETTData"):
        ett_splits(data.values, 96, 96)


# ---------------------------------------------------------------- windows


def test_window_source_items_take_and_batches():
    series = np.arange(40.0).reshape(20, 2)
    source = WindowSource(series, series[:, :1] * 10, 4, 3, name="demo")
    assert len(source) == 20 - 4 - 3 + 1
    x, y = source[2]
    np.testing.assert_array_equal(x, series[2:6])
    np.testing.assert_array_equal(y[:, 0], series[6:9, 0] * 10)
    np.testing.assert_array_equal(source[-1][0], series[-7:-3])
    assert source.window_rows(2) == (slice(2, 6), slice(6, 9))
    assert source.window_rows(-1) == (slice(13, 17), slice(17, 20))
    assert not x.flags.writeable
    series[0, 0] = -1.0  # the source keeps its own copy
    assert source.inputs[0, 0] == 0.0
    xs, ys, t_x, t_y = source.take(np.array([5, 0]), with_times=True)
    np.testing.assert_array_equal(xs[1], source[0][0])
    np.testing.assert_array_equal(t_x[0], np.arange(5.0, 9.0))
    np.testing.assert_array_equal(t_y[0], np.arange(9.0, 12.0))
    batches = list(source.batches(5))
    assert [len(b[0]) for b in batches] == [5, 5, 4]
    np.testing.assert_array_equal(
        np.concatenate([b[0] for b in batches]), source.take(np.arange(14))[0]
    )
    assert [len(b[0]) for b in source.batches(5, drop_last=True)] == [5, 5]
    first = np.concatenate([b[0][:, 0, 0] for b in source.batches(4, shuffle=True, seed=1)])
    again = np.concatenate([b[0][:, 0, 0] for b in source.batches(4, shuffle=True, seed=1)])
    other = np.concatenate([b[0][:, 0, 0] for b in source.batches(4, shuffle=True, seed=2)])
    np.testing.assert_array_equal(first, again)
    assert sorted(first / 2) == list(range(14)) and not np.array_equal(first, other)


def test_window_source_errors():
    series = np.zeros((10, 2))
    with pytest.raises(OptionError, match=r"seq_len \+ pred_len: expected <= 10 .*'demo'"):
        WindowSource(series, series, 8, 3, name="demo")
    with pytest.raises(ShapeError, match="inputs, targets"):
        WindowSource(series, series[:9], 4, 3)
    with pytest.raises(ShapeError, match="t: expected increasing"):
        WindowSource(series, series, 4, 3, t=np.zeros(10))
    with pytest.raises(ShapeError, match="input_columns: expected 2 names; got 1"):
        WindowSource(series, series, 4, 3, input_columns=("a",))
    source = WindowSource(series, series, 4, 3)
    with pytest.raises(IndexError, match=r"index: expected an integer in \[-4, 4\); got 4"):
        source[4]
    with pytest.raises(IndexError, match="indices"):
        source.take(np.array([0, 4]))
    with pytest.raises(OptionError, match="batch_size"):
        next(source.batches(0))


def test_standard_scaler_round_trip_and_constant_channel():
    values = np.column_stack([np.arange(6.0), np.full(6, 3.0)])
    scaler = StandardScaler.fit(values)
    np.testing.assert_array_equal(scaler.std, [np.sqrt(35 / 12), 1.0])  # ddof=0; constant -> 1
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(values)), values)
    with pytest.raises(ShapeError, match=r"values: expected \(\.\.\., 2\)"):
        scaler.transform(np.zeros((3, 3)))


# ---------------------------------------------------------------- the linear baseline


def stacked_windows(series: np.ndarray, seq_len: int, pred_len: int):
    """Every (input, target) window of every channel, one row each, with Python loops."""
    xs, ys = [], []
    for c in range(series.shape[1]):
        for i in range(len(series) - seq_len - pred_len + 1):
            xs.append(series[i : i + seq_len, c])
            ys.append(series[i + seq_len : i + seq_len + pred_len, c])
    return np.array(xs), np.array(ys)


@pytest.mark.parametrize(("ridge", "bias"), [(0.0, False), (0.5, False), (0.0, True), (2.0, True)])
def test_linear_forecaster_solves_the_least_squares_problem(ridge, bias):
    series = np.random.default_rng(4).normal(size=(60, 3))
    source = WindowSource(series, series, 5, 3)
    model = fit_linear_forecaster(source, ridge=ridge, bias=bias, block=7)
    xs, ys = stacked_windows(series, 5, 3)
    design = np.column_stack([xs, np.ones(len(xs))]) if bias else xs
    penalty = np.sqrt(ridge) * np.eye(design.shape[1])
    if bias:
        penalty[-1, -1] = 0.0  # the bias is not penalised
    solution = np.linalg.lstsq(
        np.vstack([design, penalty]), np.vstack([ys, np.zeros((design.shape[1], 3))]), rcond=None
    )[0]
    np.testing.assert_allclose(model.weight, solution[:5], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.bias, solution[5] if bias else 0.0, rtol=1e-9, atol=1e-12)
    x, _ = source.take(np.arange(len(source)))
    pred = model.predict(x)
    expected = np.einsum("nlc,lh->nhc", x, solution[:5]) + (solution[5][:, None] if bias else 0)
    np.testing.assert_allclose(pred, expected, rtol=1e-9, atol=1e-12)


def test_linear_forecaster_errors():
    series = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(OptionError, match="source: expected targets equal to the inputs"):
        fit_linear_forecaster(WindowSource(series, series[:, :1], 4, 2))
    with pytest.raises(OptionError, match="ridge: expected a finite real number >= 0.0"):
        fit_linear_forecaster(WindowSource(series, series, 4, 2), ridge=-1.0)
    constant = np.ones((30, 2))
    with pytest.raises(OptionError, match="ridge: the normal equations are singular"):
        fit_linear_forecaster(WindowSource(constant, constant, 4, 2))
    model = fit_linear_forecaster(WindowSource(constant, constant, 4, 2), ridge=1e-3)
    with pytest.raises(ShapeError, match=r"x: expected \(\.\.\., 4, channels\)"):
        model.predict(np.zeros((3, 5, 2)))


def test_metrics_and_streaming_evaluation():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))
    diff = [p - t for p, t in zip(pred.ravel(), target.ravel(), strict=True)]
    assert mse(pred, target) == pytest.approx(sum(d * d for d in diff) / 24, rel=1e-12)
    assert mae(pred, target) == pytest.approx(sum(abs(d) for d in diff) / 24, rel=1e-12)
    with pytest.raises(ShapeError, match=r"pred: expected the shape of target \(4, 3, 2\)"):
        mse(pred[:3], target)
    series = rng.normal(size=(50, 2))
    source = WindowSource(series, series, 6, 4)
    model = fit_linear_forecaster(source)
    x, y = source.take(np.arange(len(source)))
    scores = evaluate_forecaster(model, source, batch_size=7)  # 41 windows: a short last batch
    assert scores.mse == pytest.approx(mse(model(x), y), rel=1e-12)
    assert scores.mae == pytest.approx(mae(model(x), y), rel=1e-12)


@pytest.mark.parametrize(
    ("bias", "expected"), [(False, (0.381291, 0.393197)), (True, (0.381480, 0.392967))]
)
def test_linear_baseline_reproduces_the_published_etth1_numbers(etth1, bias, expected):
    splits = ett_splits(etth1, 96, 96, features="M")
    scores = evaluate_forecaster(fit_linear_forecaster(splits.train, bias=bias), splits.test)
    # ../shared/data/ETT/README.md: closed-form channel-independent linear, 0.381 MSE / 0.393 MAE
    assert abs(scores.mse - 0.381) <= 0.005 and abs(scores.mae - 0.393) <= 0.005
    # what this implementation gives (least squares, no ridge; docs/timeseries.md)
    assert scores == pytest.approx(expected, abs=2e-6)

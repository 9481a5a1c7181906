"""benchmarks/ett_forecasting.py: a tiny run on ETTh1 (../shared) and its building blocks."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from sciml_seq.data.timeseries import (
    StandardScaler,
    WindowSource,
    evaluate_forecaster,
    fit_linear_forecaster,
    read_ett,
    split_borders,
)
from sciml_seq.errors import OptionError
from tests.conftest import ETTH1

from .conftest import BENCHMARKS, table_lines

torch = pytest.importorskip("torch")

MODELS = ["linear", "s4d", "transformer-ode", "transformer-tied"]


@pytest.fixture
def ett(monkeypatch):
    """The script's module, imported from benchmarks/."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("ett_forecasting")


def table_rows(text: str) -> dict[str, dict[str, str]]:
    """The table's rows by model name, each a dict column title -> cell."""
    lines = table_lines(text)
    titles = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [dict(zip(titles, (c.strip() for c in line.strip("|").split("|")), strict=True))
            for line in lines[1:]]  # fmt: skip
    return {row["model"]: row for row in rows}


def first_windows_from_file(lo: int, n: int, scaler: StandardScaler) -> WindowSource:
    """The first ``n`` 96 -> 96 windows from file row ``lo``, scaled: straight from the csv rows."""
    x = scaler.transform(read_ett(ETTH1).values[lo : lo + n + 96 + 96 - 1])
    return WindowSource(x, x, 96, 96)


@pytest.mark.skipif(not ETTH1.is_file(), reason=f"ETTh1 not found at {ETTH1} (not shipped)")
def test_tiny_run_has_every_row_and_the_library_linear_scores(run_script, ett):
    text = run_script("ett_forecasting", ["--tiny", "--params", "2000"])
    rows = table_rows(text)
    assert list(rows) == MODELS
    n_train, n_val, n_test = ett.TINY_WINDOWS
    assert f"{n_train} / {n_val} / {n_test} train / val / test windows" in text
    # the linear row is fit_linear_forecaster + evaluate_forecaster on the same first windows,
    # here cut from the file's rows with the scaler of the whole training split
    (_, train_stop), _, (test_start, _) = split_borders(1, 96)
    scaler = StandardScaler.fit(read_ett(ETTH1).values[:train_stop])
    model = fit_linear_forecaster(first_windows_from_file(0, n_train, scaler))
    expected = evaluate_forecaster(model, first_windows_from_file(test_start, n_test, scaler))
    linear = rows["linear"]
    assert linear["test MSE"] == f"{expected.mse:.4f}"
    assert linear["test MAE"] == f"{expected.mae:.4f}"
    assert linear["MSE / linear"] == "1.000" and linear["params"] == str(96 * 96)
    for name in MODELS[1:]:
        row = rows[name]
        assert int(row["steps"]) >= 1 and np.isfinite(float(row["test MSE"]))
        ratio = float(row["test MSE"]) / float(linear["test MSE"])
        assert float(row["MSE / linear"]) == pytest.approx(ratio, abs=6e-4)
    ode, tied = rows["transformer-ode"], rows["transformer-tied"]
    assert ode["params"] == tied["params"]  # one block each, same width
    evaluations = "block evaluations per forward (train / test)"
    assert tied[evaluations] == "4.0 / 4.0"  # --tied-layers 4
    assert float(ode[evaluations].split(" / ")[0]) >= 6  # dopri5: at least one step
    assert rows["s4d"][evaluations] == "—"
    lowest = min(MODELS, key=lambda name: float(rows[name]["test MSE"]))
    assert f"Lowest test MSE: `{lowest}`" in text


def test_missing_data_file_is_refused_naming_the_option(ett, tmp_path, capsys):
    with pytest.raises(SystemExit):
        ett.main(["--data", str(tmp_path / "nowhere.csv")])
    assert "--data: expected an ETT csv file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "name"), [(["--seconds", "0"], "--seconds"), (["--evals", "0"], "--evals")]
)
def test_bad_budget_options_are_refused_before_reading(ett, tmp_path, argv, name):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(OptionError, match=f"^{name}: expected"):
        ett.main(["--data", str(empty), *argv])


def test_first_windows_are_the_sources_first_windows(ett):
    rows = np.random.default_rng(0).normal(size=(40, 3))
    source = WindowSource(rows, rows, 6, 4, t=np.arange(40) + 100.0)
    cut = ett.first_windows(source, 5)
    assert len(cut) == 5
    for got, expected in zip(cut.take(np.arange(5), with_times=True),
                             source.take(np.arange(5), with_times=True), strict=True):  # fmt: skip
        np.testing.assert_array_equal(got, expected)


def test_relative_hours_end_at_the_last_input_row(ett):
    rows = np.zeros((30, 1))
    source = WindowSource(rows, rows, 8, 4, t=7.0 + 0.25 * np.arange(30))  # every 15 minutes
    t_x, t_y = ett.relative_hours(source)
    np.testing.assert_allclose(t_x, 0.25 * np.arange(-7, 1))
    np.testing.assert_allclose(t_y, 0.25 * np.arange(1, 5))


def test_forecaster_series_places_patch_tokens_at_their_first_rows_hours(ett):
    from sciml_seq.torch.models import Forecaster

    t_x, t_y = np.arange(-11.0, 1.0), np.arange(1.0, 9.0)  # seq_len 12, pred_len 8
    forecaster = Forecaster(4, 8, 2, position_mode="time", depth="tied", encoding="rotary")
    series = ett.ForecasterSeries(forecaster, t_x, t_y)
    np.testing.assert_array_equal(series.t_x.numpy(), [-11.0, -7.0, -3.0])
    np.testing.assert_array_equal(series.t_y.numpy(), [1.0, 5.0])
    z = torch.randn(2, 12)
    expected = forecaster(z.reshape(2, 3, 4), series.t_x.expand(2, -1), series.t_y.expand(2, -1))
    torch.testing.assert_close(series(z), expected.reshape(2, 8))
    with pytest.raises(OptionError, match="^patch: expected a divisor of seq_len=12"):
        ett.ForecasterSeries(Forecaster(5, 8, 2), t_x, t_y)

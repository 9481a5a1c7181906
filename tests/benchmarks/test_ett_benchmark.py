"""benchmarks/ett_forecasting.py: a tiny grid run on ETTh1 (../shared) and its option checks."""

from __future__ import annotations

import importlib
import statistics

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


@pytest.fixture
def ett(monkeypatch):
    """The script's module, imported from benchmarks/."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("ett_forecasting")


def rows_of(text: str, first_title: str) -> list[dict[str, str]]:
    """The rows of the table whose first column is ``first_title``, as dicts title -> cell."""
    tables, current = [], []
    for line in table_lines(text):
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "data":  # a header row starts a table
            current = [cells]
            tables.append(current)
        else:
            current.append(cells)
    for table in tables:
        if table[0][1] == first_title:
            return [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    raise AssertionError(f"no table with column {first_title!r}")


def first_windows_from_file(lo: int, n: int, scaler: StandardScaler) -> WindowSource:
    """The first ``n`` 96 -> 96 windows from file row ``lo``, scaled: straight from the csv rows."""
    x = scaler.transform(read_ett(ETTH1).values[lo : lo + n + 96 + 96 - 1])
    return WindowSource(x, x, 96, 96)


@pytest.mark.skipif(not ETTH1.is_file(), reason=f"ETTh1 not found at {ETTH1} (not shipped)")
def test_tiny_grid_run_reports_mean_and_std_and_the_library_linear_scores(run_script, ett):
    argv = ["--tiny", "--datasets", "ETTh1", "--horizons", "96", "--inputs", "96", "--seeds",
            "0,1", "--models", "linear,nlinear-cf,dlinear", "--budget-seconds", "0.2"]  # fmt: skip
    text = run_script("ett_forecasting", argv)
    rows = {row["model"]: row for row in rows_of(text, "horizon")}
    assert list(rows) == ["linear", "nlinear-cf", "dlinear"]
    assert "the first 64 / 16 / 16 train / val / test windows only" in text
    # the linear row is fit_linear_forecaster + evaluate_forecaster on the same first windows,
    # here cut from the file's rows with the scaler of the whole training split
    (_, train_stop), _, (test_start, _) = split_borders(1, 96)
    scaler = StandardScaler.fit(read_ett(ETTH1).values[:train_stop])
    n_train, _, n_test = ett.TINY_WINDOWS
    model = fit_linear_forecaster(first_windows_from_file(0, n_train, scaler))
    expected = evaluate_forecaster(model, first_windows_from_file(test_start, n_test, scaler))
    linear = rows["linear"]
    assert (
        linear["test MSE"] == f"{expected.mse:.4f}" and linear["test MAE"] == f"{expected.mae:.4f}"
    )
    assert linear["seeds"] == "closed form" and linear["MSE / linear"] == "1.000"
    assert linear["PatchTST/64 MSE / MAE"] == "0.370 / 0.400"
    dlinear = rows["dlinear"]
    assert dlinear["seeds"] == "0,1"
    mean, std = (float(v) for v in dlinear["test MSE"].split(" ± "))
    assert std >= 0 and float(dlinear["MSE / linear"]) == pytest.approx(
        mean / expected.mse, abs=2e-3
    )
    (summary,) = rows_of_summary(text)
    assert summary["lowest / continuous-time at or below PatchTST/64"] == "— / —"  # --tiny
    lowest = min(rows.values(), key=lambda r: float(r["test MSE"].split(" ± ")[0]))
    assert summary["lowest mean test MSE (model, input)"].endswith(f"({lowest['model']}, 96)")
    assert summary["lowest continuous-time"] == "—"  # no s4d / transformer-ode in this run


def rows_of_summary(text: str) -> list[dict[str, str]]:
    """The rows of the per-(data set, horizon) summary table (the block after its header)."""
    block = next(b for b in text.split("\n\n") if "| lowest mean test MSE" in b)
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in block.split("\n")]
    titles, _, *body = cells
    return [dict(zip(titles, row, strict=True)) for row in body]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--datasets", "ETTm1"], "^--datasets: expected one of"),
        (["--horizons", "96,x"], "^--horizons: expected integers"),
        (["--models", "linear,mamba"], "^--models: expected one of"),
        (["--budget-seconds", "0"], "^budget_seconds: expected"),
    ],
)
def test_bad_options_are_refused_before_reading(ett, tmp_path, argv, message):
    with pytest.raises(OptionError, match=message):
        ett.main(["--root", str(tmp_path), *argv])


def test_missing_data_is_refused_naming_the_folder(ett, tmp_path):
    with pytest.raises(OptionError, match="^root: expected a folder holding ETTh1.csv"):
        ett.main(["--root", str(tmp_path), "--models", "linear", "--out", str(tmp_path / "x.md")])


def test_mean_std_in_the_table_is_the_sample_statistics():
    from sciml_seq.data.timeseries.protocol import grid_tables
    from sciml_seq.torch.ett_protocol import GridRecord

    values = [(0.41, 0.40), (0.45, 0.42), (0.40, 0.43)]
    records = [GridRecord("ETTh2", 336, 192, "m", seed, mse_, mae_, 10)
               for seed, (mse_, mae_) in enumerate(values)]  # fmt: skip
    records.append(GridRecord("ETTh2", 336, 192, "linear", None, 0.5, 0.5, 10))
    records.append(GridRecord("ETTh2", 96, 192, "s4d", 0, 0.45, 0.44, 10))
    text = "\n".join(grid_tables(records, continuous={"s4d"}))
    mses, maes = zip(*values, strict=True)
    mean, std = statistics.mean, statistics.stdev
    expected = (
        f"| ETTh2 | 192 | 336 | m | 0,1,2 | {mean(mses):.4f} ± {std(mses):.4f} "
        f"| {mean(maes):.4f} ± {std(maes):.4f} | {mean(mses) / 0.5:.3f} | 0.341 / 0.382 |"
    )
    assert expected in text
    summary = "| ETTh2 | 192 | 0.4200 (m, 336) | 0.4500 (s4d, 96) | 0.341 | 0.339 | 0.383 | 0.344 |"
    assert f"{summary} no / no |" in text

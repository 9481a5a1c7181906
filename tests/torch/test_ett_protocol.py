"""sciml_seq.torch.ett_protocol: the training loop's checkpoint and stopping rules, the model table.

On a tiny synthetic series (a sine plus noise, 7 channels): after training the
model holds the weights of its best validation pass (its validation MSE,
recomputed with numpy, equals the recorded best); ``max_epochs`` and
``patience`` stop where they say; closed-form records equal
``fit_linear_forecaster`` + ``evaluate_forecaster`` run directly.
"""

from __future__ import annotations

import numpy as np
import pytest

from sciml_seq.data.timeseries import (
    ETTSplits,
    WindowSource,
    evaluate_forecaster,
    fit_linear_forecaster,
    mse,
)
from sciml_seq.errors import OptionError
from tests.conftest import ETTH1

torch = pytest.importorskip("torch")

from sciml_seq.torch import ett_protocol as ep  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEQ_LEN, PRED_LEN = 24, 8


def splits() -> ETTSplits:
    rng = np.random.default_rng(0)
    t = np.arange(400.0)
    rows = np.sin(2 * np.pi * t[:, None] / 24 + np.arange(7)) + 0.1 * rng.normal(size=(400, 7))
    parts = [
        WindowSource(rows[a:b], rows[a:b], SEQ_LEN, PRED_LEN, t=t[a:b], name=name)
        for name, (a, b) in zip(
            ("train", "val", "test"), ((0, 200), (168, 300), (268, 400)), strict=True
        )  # fmt: skip
    ]
    return ETTSplits(*parts, scaler=None, target_scaler=None)


def test_training_keeps_the_best_validation_checkpoint_and_stops_at_max_epochs():
    data = splits()
    model = ep.build("dlinear", data.train, seed=0)
    settings = ep.TrainSettings(budget_seconds=60.0, max_epochs=3, batch_size=16, val_windows=20)
    result = ep.train_model(model, data, settings, lr=1e-2, seed=0)
    per_epoch = -(-len(data.train) // 16)
    assert result.steps == 3 * per_epoch and result.epochs == 3.0
    val = data.val
    picked = np.unique(np.linspace(0, len(val) - 1, 20).round().astype(int))
    x, y = val.take(picked)
    assert mse(ep.numpy_forecaster(model, "cpu")(x), y) == pytest.approx(result.best_val, rel=1e-6)
    assert 0 < result.best_step <= result.steps


def test_patience_stops_training_early():
    data = splits()
    model = ep.build("nlinear", data.train, seed=0)
    settings = ep.TrainSettings(budget_seconds=60.0, max_epochs=50, batch_size=64, patience=1)
    result = ep.train_model(model, data, settings, lr=10.0, seed=0)  # diverges: no improvement
    assert result.epochs < 50


def test_closed_form_records_and_model_table():
    data = splits()
    settings = ep.TrainSettings(budget_seconds=1.0)
    for name, relative in (("linear", False), ("nlinear-cf", True)):
        record = ep.fit_one(name, data, None, settings, "cpu", None)
        scores = evaluate_forecaster(
            fit_linear_forecaster(data.train, relative=relative), data.test
        )
        assert (record.test_mse, record.test_mae) == pytest.approx(scores, rel=1e-12)
        assert record.params == (SEQ_LEN - relative) * PRED_LEN and record.seed is None
    assert ep.model_names()[:2] == ("linear", "nlinear-cf")
    with pytest.raises(OptionError, match="^name: expected a new model name; got 'dlinear'"):
        ep.register_model("dlinear", ep.MODELS["dlinear"])
    with pytest.raises(OptionError, match="^model: expected one of"):
        ep.build("mamba", data.train)
    with pytest.raises(OptionError, match="^budget_seconds: expected"):
        ep.TrainSettings(budget_seconds=0.0)
    a = ep.build("patchtst", data.train, seed=3).state_dict()
    b = ep.build("patchtst", data.train, seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # the seed fixes the initialisation


@pytest.mark.slow  # the CLI's imports; run_grid and grid_tables are tested fast elsewhere
@pytest.mark.skipif(not ETTH1.is_file(), reason=f"ETTh1 not found at {ETTH1} (not shipped)")
def test_cli_forecast_ett_writes_the_grid_table(tmp_path):
    from typer.testing import CliRunner

    from sciml_seq.cli import USAGE_ERROR, app
    from sciml_seq.data.timeseries import ett_splits, read_ett

    out = tmp_path / "ett.md"
    argv = [
        "forecast",
        "ett",
        "--root",
        str(ETTH1.parent),
        "--datasets",
        "ETTh1",
        "--horizons",
        "8",
        "--inputs",
        "8",
        "--models",
        "linear,nlinear-cf",
        "--out",
        str(out),
    ]  # fmt: skip  (8 -> 8: a small cell, fitted in a blink)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    splits = ett_splits(read_ett(ETTH1), 8, 8)
    text = out.read_text()
    for name, relative in (("linear", False), ("nlinear-cf", True)):
        model = fit_linear_forecaster(splits.train, relative=relative)
        scores = evaluate_forecaster(model, splits.test)
        row = f"| ETTh1 | 8 | 8 | {name} | closed form | {scores.mse:.4f} | {scores.mae:.4f} |"
        assert row in text
    bad = CliRunner().invoke(app, [*argv[:-2], "--models", "linear,mamba"])
    assert bad.exit_code == USAGE_ERROR
    assert "error: --models: expected one of" in bad.output

"""The CLI reports a SciMLSeqError as one line and exit code 2; other errors keep a traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sciml_seq.cli import USAGE_ERROR, app
from sciml_seq.train.checkpoint import save_checkpoint
from sciml_seq.train.operator_models import build_operator

from .conftest import write_decay_file

runner = CliRunner()

TINY_SCOT = {
    "patch_size": 2,
    "embed_dim": 4,
    "depths": [1],
    "num_heads": [1],
    "window_size": 2,
    "skip_connections": [0],
    "pretrained_window_sizes": [0],
}


@pytest.fixture
def data(tmp_path):
    path = write_decay_file(tmp_path / "toy.h5", n=2, n_times=3, channels=2, size=8)
    return path


@pytest.fixture
def checkpoint(tmp_path):
    """A checkpoint of an untrained 1-stage scOT on the 2-channel 8 x 8 toy fields."""
    model, spec = build_operator("scot-t", in_channels=2, out_channels=2, grid=(8, 8), **TINY_SCOT)
    return save_checkpoint(tmp_path / "ckpt", model=model, step=0, model_spec=spec)


def assert_one_line_error(result, message: str) -> None:
    """Exit code 2, and stderr is exactly ``error: <...message...>`` on one line."""
    assert result.exit_code == USAGE_ERROR == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_train_operator_bad_option(data, tmp_path):
    args = ["train", "operator", "--data", str(data), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*args, "--precision", "fp8"])
    assert_one_line_error(result, "precision: expected one of 'fp32', 'bf16', 'fp16'; got 'fp8'")
    result = runner.invoke(app, [*args, "--compile", "fast"])
    assert_one_line_error(result, "compile: expected one of 'default', 'reduce-overhead'")
    result = runner.invoke(app, [*args, "--option", "embed_dimm=3"])
    assert_one_line_error(result, "config: unknown scOT field(s) ['embed_dimm']")
    result = runner.invoke(app, args)  # scOT-T's 4 stages of 4 x 4 patches need 32 x 32 fields
    assert_one_line_error(result, "image_size: expected a side that fits the scOT grid")
    tiny = [item for k, v in TINY_SCOT.items() for item in ("--option", f"{k}={json.dumps(v)}")]
    result = runner.invoke(app, [*args, *tiny, "--batch-size", "4", "--channel-slices", "0,3"])
    assert_one_line_error(result, "channel_slice_list: expected strictly increasing boundaries")


def test_train_operator_bad_file(tmp_path):
    bad = tmp_path / "notes.h5"
    bad.write_text("not HDF5")
    result = runner.invoke(app, ["train", "operator", "--data", str(bad), "--out", str(tmp_path)])
    assert_one_line_error(result, f"path: {str(bad)!r} is not an HDF5 file")


def test_evaluate_bad_option_and_bad_checkpoint(data, checkpoint, tmp_path):
    common = ["--data", str(data), "--out", str(tmp_path / "eval"), "--plots", "0"]
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(checkpoint), *common])
    assert result.exit_code == 0, result.output  # the fixture checkpoint itself is fine
    result = runner.invoke(
        app, ["evaluate", "--checkpoint", str(checkpoint), *common, "--lead-steps", "1,5"]
    )
    assert_one_line_error(result, "lead_steps: expected start + k < n_times = 3")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(empty), *common])
    assert_one_line_error(result, "path: expected a checkpoint directory holding model.safetensors")


def test_evaluate_shape_error(checkpoint, tmp_path):
    """A checkpoint for 2 channels on data with 3: the model's ShapeError, one line."""
    path = write_decay_file(tmp_path / "three.h5", n=2, n_times=3, channels=3, size=8)
    args = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(path)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "eval")])
    assert_one_line_error(result, "pixel_values: expected (batch, 2, H, W), got (2, 3, 8, 8)")


def test_data_generate_bad_option(tmp_path):
    args = ["data", "generate", "kdv_1d", "--out", str(tmp_path / "d.h5"), "--n", "1"]
    result = runner.invoke(app, [*args, "--param", "nu=1"])
    assert_one_line_error(result, "params: expected parameters of 'kdv_1d', among")
    result = runner.invoke(app, [*args, "--resolution", "4"])  # too coarse for the cutoff 3
    assert_one_line_error(result, "resolution: expected an integer > 2 * cutoff")


def test_other_exceptions_keep_their_traceback(data, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setattr("sciml_seq.train.operator_run.train_operator", broken)
    result = runner.invoke(app, ["train", "operator", "--data", str(data), "--out", str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)
    assert "error: " not in result.stderr

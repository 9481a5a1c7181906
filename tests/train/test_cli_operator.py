"""`sciml-seq train operator` and `sciml-seq evaluate` at tiny sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sciml_seq.cli import app

from .conftest import TINY_FNO, train_operator_args, write_decay_file

pytest.importorskip("neuralop")

TINY_SCOT = [
    "patch_size=2",
    "embed_dim=12",
    "depths=[1,1,1,1]",
    "num_heads=[1,1,1,1]",
    "window_size=2",
    "skip_connections=[1,1,1,0]",
]


@pytest.fixture
def data(tmp_path):
    path = write_decay_file(
        tmp_path / "toy.h5",
        time_scale=2.0,
        meta={"equation": "decay"},
        n=4,
        n_times=4,
        channels=2,
        size=16,
    )
    return path


@pytest.mark.parametrize(
    "model,options",
    [
        ("fno", TINY_FNO),
        ("scot-t", TINY_SCOT),
    ],
)
def test_train_then_evaluate(tmp_path, data, model, options):
    runner = CliRunner()
    ckpt = tmp_path / "run"
    args = train_operator_args(data, model=model, steps=4, batch_size=4, options=options)
    args += ["--out", str(ckpt), "--warmup", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "4 steps" in result.output
    out = tmp_path / "eval"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--checkpoint",
            str(ckpt / "final"),
            "--data",
            str(data),
            "--out",
            str(out),
            "--lead-steps",
            "1,3",
            "--plots",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["time_scale"] == pytest.approx(2.0)  # the data's time span
    assert [r["lead_steps"] for r in metrics["one_shot"]] == [1, 3]
    assert [r["lead_steps"] for r in metrics["rollout"]] == [1, 2, 3]
    assert metrics["one_shot"][1]["lead_time"] == pytest.approx(1.0)
    assert all(np.isfinite(r["median_rel_l1"]) for r in metrics["one_shot"])
    assert sorted(p.name for p in out.glob("*.png")) == [
        "error_vs_lead.png",
        "sample_0_lead_1.png",
        "sample_0_lead_3.png",
    ]


def test_bad_model_option(data, tmp_path):
    result = CliRunner().invoke(
        app, ["train", "operator", "--data", str(data), "--option", "oops", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0 and "KEY=VALUE" in result.output


def test_resume_from_a_periodic_checkpoint_gives_the_same_weights(tmp_path, data):
    from safetensors.torch import load_file

    runner = CliRunner()
    common = train_operator_args(data, steps=4, batch_size=4)
    first = runner.invoke(app, [*common, "--out", str(tmp_path / "a"), "--checkpoint-every", "2"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(
        app, [*common, "--out", str(tmp_path / "b"), "--resume", str(tmp_path / "a" / "step_2")]
    )
    assert resumed.exit_code == 0, resumed.output
    assert "2 steps in" in resumed.output and "now at step 4" in resumed.output
    a = load_file(str(tmp_path / "a" / "final" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "final" / "model.safetensors"))
    for name in a:
        assert torch.equal(a[name], b[name]), name

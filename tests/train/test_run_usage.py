"""A CLI run used from Python: load_run, the official-layout export, and the baselines that
`sciml-seq evaluate` prints beside the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sciml_seq.cli import app
from sciml_seq.errors import OptionError
from sciml_seq.train.operator_run import (
    evaluate_operator,
    export_official,
    load_run,
    train_operator,
)
from sciml_seq.train.trainer import TrainConfig

from .conftest import decay_trajectories, write_decay_file
from .test_cli_errors import TINY_SCOT

SIZES = dict(n=2, n_times=3, channels=2, size=8)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-step tiny scOT run (one stage on 8 x 8 fields), data with time span 2."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("run")
    data = write_decay_file(folder / "toy.h5", time_scale=2.0, **SIZES)
    config = TrainConfig(steps=2, batch_size=2, lr=1e-3)
    train_operator(data, model="scot-t", out=folder / "out", config=config, model_options=TINY_SCOT)
    return data, folder / "out"


def test_load_run_gives_the_model_its_normalisation_and_settings(run):
    data, out = run
    loaded = load_run(out)  # the run folder: its final checkpoint
    assert (loaded.step, loaded.path, loaded.time_scale) == (2, out / "final", 2.0)
    assert loaded.config["batch_size"] == 2 and len(loaded.run_id) == 12
    u, _ = decay_trajectories(**SIZES)
    u64 = u.astype(np.float64)
    mean = u64.transpose(2, 0, 1, 3, 4).reshape(2, -1).mean(1)  # per channel, by hand
    std = u64.transpose(2, 0, 1, 3, 4).reshape(2, -1).std(1)
    np.testing.assert_allclose(loaded.normalization[0], mean, rtol=1e-12)
    np.testing.assert_allclose(loaded.normalization[1], std, rtol=1e-12)
    # predict: data units in and out, lead in data time (divided by the time scale inside)
    x = u[:, 0]
    m, s = (torch.tensor(v, dtype=torch.float32).view(1, 2, 1, 1) for v in (mean, std))
    with torch.no_grad():
        bare = loaded.operator((torch.from_numpy(x) - m) / s, torch.full((2,), 0.5))
    np.testing.assert_allclose(loaded.predict(x, 1.0), (bare * s + m).numpy(), atol=1e-5)


def test_export_official_loads_with_from_pretrained(run, tmp_path):
    from sciml_seq.torch.operator import ScOT

    _, out = run
    loaded = load_run(out / "final")
    folder = export_official(loaded, tmp_path / "official")
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "model.safetensors",
        "normalization.json",
    ]
    extra = json.loads((folder / "normalization.json").read_text())
    assert extra["time_scale"] == 2.0 and extra["mean"] == list(loaded.normalization[0])
    official = ScOT.from_pretrained(folder).eval()
    x, lead = torch.randn(2, 2, 8, 8), torch.tensor([0.1, 0.7])
    with torch.no_grad():
        assert torch.equal(official(x, lead), loaded.operator(x, lead))


def test_export_refuses_a_run_that_is_not_scot(run, tmp_path):
    from dataclasses import replace

    loaded = replace(load_run(run[1]), operator=torch.nn.Linear(2, 2))  # e.g. an FNO run
    with pytest.raises(OptionError, match="run: expected a scOT run to export.*got Linear"):
        export_official(loaded, tmp_path / "official")


def test_evaluate_scores_the_persistence_and_zero_baselines(run, tmp_path):
    """u(t) = u0 exp(-t): "no change" has relative L1 exp(t) - 1 after t exactly (any u0),
    the zero field 1; the CLI table shows both beside the model."""
    data, out = run
    metrics = evaluate_operator(out / "final", data, tmp_path / "eval", n_plots=0)
    t = np.linspace(0.0, 1.0, 3)  # u's decay times (the file's times are 2 t)
    for mode in ("one_shot", "rollout"):
        persistence = metrics["baselines"]["persistence"][mode]
        got = [row["median_rel_l1"] for row in persistence]
        np.testing.assert_allclose(got, np.exp(t[1:]) - 1, rtol=1e-5)
        zero = [row["median_rel_l1"] for row in metrics["baselines"]["zero"][mode]]
        np.testing.assert_allclose(zero, 1.0, rtol=1e-6)
    args = ["evaluate", "--checkpoint", str(out / "final"), "--data", str(data)]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "e2"), "--plots", "0"])
    assert result.exit_code == 0, result.output
    assert f"{np.exp(1.0) - 1:.4f}" in result.output  # persistence at the last lead

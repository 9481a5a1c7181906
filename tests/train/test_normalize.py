"""Per-channel normalisation wrapper and its place in the model spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.train.checkpoint import load_checkpoint, read_model_spec, save_checkpoint
from sciml_seq.train.normalize import ChannelNormalized, channel_stats
from sciml_seq.train.operator_models import build_operator, rebuild_operator

from .conftest import TinyOperator


def test_channel_stats_match_numpy():
    rng = np.random.default_rng(0)
    u = rng.standard_normal((3, 4, 2, 5, 5)) * np.array([1.0, 7.0])[:, None, None] + 3.0
    u[:, :, 1] = u[:, :, 1] - 10.0
    mean, std = channel_stats(u)
    for c in range(2):
        assert mean[c] == pytest.approx(u[:, :, c].mean(), rel=1e-12)
        assert std[c] == pytest.approx(u[:, :, c].std(), rel=1e-12)
    _, std = channel_stats(np.ones((2, 2, 1, 3)))
    assert std[0] == 1.0
    with pytest.raises(ShapeError, match="u: expected"):
        channel_stats(np.ones((2, 3)))


def test_wrapper_standardises_inputs_and_restores_units():
    torch.manual_seed(0)
    inner = TinyOperator()
    mean, std = np.array([1.0, -2.0]), np.array([3.0, 0.5])
    model = ChannelNormalized(inner, mean, std)
    x, time = torch.randn(2, 2, 6, 6), torch.tensor([0.1, 0.9])
    m = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    s = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    torch.testing.assert_close(model(x, time), inner((x - m) / s, time) * s + m)
    assert {"mean", "std"} <= set(model.state_dict())
    with pytest.raises(ShapeError, match=r"x: expected \(batch, 2, \*grid\)"):
        model(torch.randn(2, 3, 6, 6), time)
    with pytest.raises(ShapeError, match="mean, std"):
        ChannelNormalized(inner, [0.0], [1.0, 2.0])


def test_spec_rebuilds_the_normalised_model(tmp_path):
    pytest.importorskip("neuralop")
    torch.manual_seed(0)
    options = {"hidden_channels": 4, "n_layers": 1}
    model, spec = build_operator(
        "fno", in_channels=1, out_channels=1, grid=(8, 8), normalization=([2.0], [5.0]), **options
    )
    assert spec["normalization"] == {"mean": [2.0], "std": [5.0]}
    save_checkpoint(tmp_path, model=model, step=0, model_spec=spec)
    rebuilt = rebuild_operator(read_model_spec(tmp_path))
    load_checkpoint(tmp_path, model=rebuilt)
    x, time = torch.randn(2, 1, 8, 8), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(rebuilt(x, time), model(x, time))
    with pytest.raises(OptionError, match="normalization: expected out_channels == in_channels"):
        build_operator("fno", in_channels=2, out_channels=1, grid=(8, 8), normalization=([0], [1]))

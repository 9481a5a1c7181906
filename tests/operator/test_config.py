"""ScOTConfig: official names, presets equal to the released configs, JSON, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sciml_seq.errors import OptionError
from sciml_seq.operator import ScOTConfig

from .reference import fixture_dirs, param_counts


@pytest.mark.parametrize("name", ["T", "B", "L"])
def test_presets_equal_the_released_configs(name):
    official = param_counts()[name]["config"]
    assert ScOTConfig.preset(name) == ScOTConfig.from_dict(official)


@pytest.mark.parametrize("folder", fixture_dirs())
def test_from_json_reads_the_official_file_and_round_trips(folder, tmp_path):
    raw = json.loads((folder / "config.json").read_text())
    config = ScOTConfig.from_json(folder)
    for key in ("embed_dim", "patch_size", "window_size", "image_size", "num_channels"):
        assert getattr(config, key) == raw[key]
    assert list(config.depths) == raw["depths"]
    config.to_json(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert ScOTConfig.from_json(tmp_path) == config
    for key in ("model_type", "num_layers", "hidden_size", "architectures"):
        assert written[key] == raw[key]


def test_preset_overrides_and_unknown_name():
    assert ScOTConfig.preset("B", num_channels=2).num_channels == 2
    with pytest.raises(OptionError, match="name: expected one of 'T', 'B', 'L'; got 'XL'"):
        ScOTConfig.preset("XL")


def test_unknown_field_is_an_error():
    with pytest.raises(OptionError, match="embed_dimm"):
        ScOTConfig.from_dict({"embed_dimm": 3})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_heads": (3, 6, 12)}, r"num_heads: expected at least one entry per stage \(4"),
        ({"skip_connections": (1, 1)}, "skip_connections: expected at least one entry per stage"),
        ({"skip_connections": (1, 1, -1, 0)}, r"skip_connections\[2\]: expected an integer >= 0"),
        ({"num_heads": (5, 6, 12, 24)}, r"num_heads\[0\]: expected a divisor .* = 48; got 5"),
        ({"residual_model": "resnet"}, "residual_model: expected one of 'convnext'"),
        ({"hidden_act": "relu"}, "hidden_act: expected one of 'gelu'; got 'relu'"),
        ({"p": 3}, "p: expected one of 1, 2; got 3"),
        ({"patch_size": 0}, "patch_size: expected an integer >= 1; got 0"),
        ({"patch_size": True}, "patch_size: expected an integer >= 1; got True"),
        ({"drop_path_rate": 1.5}, "drop_path_rate: expected a finite real number >= 0.0 and < 1.0"),
        ({"mlp_ratio": 0.0}, "mlp_ratio: expected a finite real number > 0.0; got 0.0"),
        ({"channel_slice_list_normalized_loss": (0, 2, 1)}, "_loss: expected increasing"),
        ({"depths": (4, 4, 4, 4.5)}, r"depths\[3\]: expected an integer >= 1; got 4.5"),
        ({"depths": 4}, "depths: expected a list of integers; got 4"),
        ({"depths": ()}, "depths: expected at least one stage"),
        (
            {"image_size": 8},
            r"image_size: expected a side that fits the scOT grid .*e.g. 32\); got 8",
        ),
        ({"pretrained_window_sizes": (0, 0)}, "pretrained_window_sizes: expected at least one"),
    ],
)
def test_bad_options_name_the_field(kwargs, match):
    with pytest.raises(OptionError, match=match):
        ScOTConfig(**kwargs)


def test_drop_path_rates_follow_the_official_linspace():
    cfg = ScOTConfig(depths=(2, 3), num_heads=(3, 6), skip_connections=(1, 0), drop_path_rate=0.3)
    rates = np.linspace(0, 0.3, 10)
    encoder, decoder = cfg.drop_path_rates()
    assert np.allclose(encoder[0], rates[0:2]) and np.allclose(encoder[1], rates[2:5])
    # decoder: deepest level first (level 1 takes rates[5:8]), blocks in reverse order
    assert np.allclose(decoder[1], rates[5:8][::-1]) and np.allclose(decoder[0], rates[8:10][::-1])

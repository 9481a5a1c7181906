"""scOT against the official Poseidon fixtures: outputs, hidden states, loss, parameter counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import ShapeError
from sciml_seq.operator import ScOTConfig
from sciml_seq.torch.operator import ScOT
from tests.operator.reference import (
    FLOAT32_ATOL,
    FLOAT32_RTOL,
    FLOAT64_ATOL,
    fixture_dirs,
    load_io,
    param_counts,
    stage_count,
    t_parameters,
)


@pytest.mark.parametrize("folder", fixture_dirs())
def test_official_output_hidden_states_and_loss_float64(folder):
    io = load_io(folder)
    model = ScOT.from_pretrained(folder, dtype=torch.float64).eval()
    x, t = torch.from_numpy(io["pixel_values"]), torch.from_numpy(io["time"])
    with torch.no_grad():
        out = model.forward_with_hidden_states(x, t)
        plain = model(x, t)
    np.testing.assert_allclose(out.output.numpy(), io["output"], rtol=0, atol=FLOAT64_ATOL)
    np.testing.assert_allclose(plain.numpy(), io["output_no_labels"], rtol=0, atol=FLOAT64_ATOL)
    for part, states in (
        ("encoder", out.encoder_hidden_states),
        ("decoder", out.decoder_hidden_states),
    ):
        assert len(states) == stage_count(io, part)
        for i, state in enumerate(states):
            ref = io[f"hidden_states.{part}.{i}"]
            np.testing.assert_allclose(
                state.numpy(), ref, rtol=0, atol=FLOAT64_ATOL, err_msg=f"{part}.{i}"
            )
    loss = model.loss(out.output, torch.from_numpy(io["labels"]))
    np.testing.assert_allclose(loss.item(), io["loss"], rtol=1e-12)


@pytest.mark.parametrize("folder", fixture_dirs())
def test_official_output_float32(folder):
    io = load_io(folder)
    model = ScOT.from_pretrained(folder).eval()
    assert next(model.parameters()).dtype == torch.float32
    x = torch.from_numpy(io["pixel_values"]).float()
    with torch.no_grad():
        out = model(x, torch.from_numpy(io["time"]).float())
    assert out.dtype == torch.float32
    np.testing.assert_allclose(
        out.numpy(), io["output_float32"], rtol=FLOAT32_RTOL, atol=FLOAT32_ATOL
    )


@pytest.mark.parametrize("folder", fixture_dirs())
def test_official_fft_resampling_for_other_input_sizes(folder):
    io = load_io(folder)
    model = ScOT.from_pretrained(folder, dtype=torch.float64).eval()
    t = torch.from_numpy(io["time"])
    with torch.no_grad():
        for kind in ("lowres", "highres"):
            out = model.forward_resampled(torch.from_numpy(io[f"pixel_values_{kind}"]), t)
            np.testing.assert_allclose(
                out.numpy(), io[f"output_{kind}"], rtol=0, atol=FLOAT64_ATOL, err_msg=kind
            )
        x = torch.from_numpy(io["pixel_values"])
        torch.testing.assert_close(model.forward_resampled(x, t), model(x, t), rtol=0, atol=0)
    with pytest.raises(ShapeError, match="square"):
        model.forward_resampled(torch.zeros(1, x.shape[1], 32, 64, dtype=x.dtype), t[:1])


@pytest.mark.parametrize("name", ["T", "B", "L"])
def test_parameter_counts_equal_the_official_ones(name):
    official = param_counts()[name]
    with torch.device("meta"):
        model = ScOT(ScOTConfig.preset(name))
    state = model.state_dict()
    assert len(state) == official["state_dict_entries"]
    assert sum(p.numel() for p in model.parameters()) == official["total_parameters"]
    assert sum(v.numel() for v in state.values()) == official["state_dict_numel"]


def test_T_parameter_names_and_shapes_in_official_order():
    with torch.device("meta"):
        model = ScOT(ScOTConfig.preset("T"))
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == [(p["name"], p["shape"]) for p in t_parameters()]
    assert [k for k, _ in model.named_parameters()] == [k for k, _ in ours]

"""TimeFNO (neuralop FNO with a time channel) and the named-model registry."""

from __future__ import annotations

import pytest
import torch

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.train.checkpoint import load_checkpoint, read_model_spec, save_checkpoint
from sciml_seq.train.operator_models import build_operator, rebuild_operator

pytest.importorskip("neuralop", reason="neuraloperator (the operator extra) is not installed")

from neuralop.models import FNO  # noqa: E402

from sciml_seq.torch.operator.fno import TimeFNO  # noqa: E402

TINY_SCOT = {
    "patch_size": 2,
    "embed_dim": 12,
    "depths": (1, 1, 1, 1),
    "num_heads": (1, 1, 1, 1),
    "window_size": 2,
    "skip_connections": (1, 1, 1, 0),
}


@pytest.mark.parametrize("grid", [(16,), (8, 12)])
def test_time_fno_is_neuralop_fno_on_the_time_channel(grid):
    torch.manual_seed(0)
    model = TimeFNO(2, 3, n_modes=[4] * len(grid), hidden_channels=8, n_layers=2)
    reference = FNO(
        n_modes=(4,) * len(grid), in_channels=3, out_channels=3, hidden_channels=8, n_layers=2
    )
    reference.load_state_dict(model.fno.state_dict())
    x, time = torch.randn(2, 2, *grid), torch.tensor([0.25, 1.5])
    channel = time.reshape(2, 1, *([1] * len(grid))).expand(2, 1, *grid)
    expected = reference(torch.cat([x, channel], 1))
    torch.testing.assert_close(model(x, time), expected)
    assert model(x, time).shape == (2, 3, *grid)
    assert not torch.allclose(model(x, time), model(x, time + 1.0))
    torch.testing.assert_close(model(x, torch.tensor(0.5)), model(x, torch.full((2,), 0.5)))


def test_time_fno_errors():
    model = TimeFNO(2, 2, n_modes=[4, 4], hidden_channels=4, n_layers=1)
    with pytest.raises(ShapeError, match=r"x: expected \(batch, 2, n, n\)"):
        model(torch.randn(2, 3, 8, 8), torch.ones(2))
    with pytest.raises(ShapeError, match=r"time: expected shape \(2,\)"):
        model(torch.randn(2, 2, 8, 8), torch.ones(3))
    with pytest.raises(DTypeError, match="x: expected a floating-point tensor"):
        model(torch.ones(2, 2, 8, 8, dtype=torch.long), torch.ones(2))
    assert "_metadata" not in model.state_dict()
    with pytest.raises(
        OptionError, match=r"fno_kwargs: expected neuralop FNO .*; got \['n_mode'\]"
    ):
        TimeFNO(2, 2, n_modes=[4, 4], n_mode=3)


def test_time_fno_spectral_convolutions_take_half_precision_input():
    """CUDA autocast hands the spectral convolutions bf16 input (no float32 rule for
    torch.fft there); they compute in float32, as the float32 model does."""
    torch.manual_seed(0)
    model = TimeFNO(1, 1, n_modes=[4, 4], hidden_channels=8, n_layers=2)
    convs = [m for m in model.modules() if type(m).__name__ == "SpectralConv"]
    assert len(convs) == 2
    x = torch.randn(2, 8, 16, 16)
    for dtype in (torch.bfloat16, torch.float16):
        out = convs[0](x.to(dtype))
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, convs[0](x.to(dtype).float()))


@pytest.mark.parametrize("name", ["fno", "scot-t"])
def test_build_save_rebuild_same_outputs(name, tmp_path):
    torch.manual_seed(0)
    overrides = TINY_SCOT if name == "scot-t" else {"hidden_channels": 8, "n_layers": 2}
    model, spec = build_operator(name, in_channels=2, out_channels=2, grid=(16, 16), **overrides)
    save_checkpoint(tmp_path, model=model, step=3, model_spec=spec)
    assert read_model_spec(tmp_path) == spec
    rebuilt = rebuild_operator(read_model_spec(tmp_path))
    assert load_checkpoint(tmp_path, model=rebuilt)["step"] == 3
    x, time = torch.randn(2, 2, 16, 16), torch.tensor([0.1, 0.7])
    torch.testing.assert_close(rebuilt(x, time), model(x, time))
    if name == "fno":
        assert spec["config"]["n_modes"] == [8, 8]


def test_registry_errors():
    with pytest.raises(OptionError, match="model: expected one of 'scot-t', .*; got 'unet'"):
        build_operator("unet", in_channels=1, out_channels=1, grid=(8, 8))
    with pytest.raises(OptionError, match=r"grid: expected 2-D fields \(H, W\) for scot-t"):
        build_operator("scot-t", in_channels=1, out_channels=1, grid=(8,))
    with pytest.raises(OptionError, match=r"grid\[1\]: expected an integer >= 1; got 0"):
        build_operator("fno", in_channels=1, out_channels=1, grid=(8, 0))
    with pytest.raises(OptionError, match=r"config: unknown scOT field\(s\) \['embed_dimm'\]"):
        build_operator("scot-b", in_channels=1, out_channels=1, grid=(8, 8), embed_dimm=3)
    with pytest.raises(OptionError, match="model spec: expected a name in 'scot-t'"):
        rebuild_operator({"name": "x"})

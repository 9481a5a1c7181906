"""The encoder with the Performer, sliding-window and LSH mixers in torch: every depth
mode runs with RoPE and padding, ``depth_mode="ode"`` with Euler steps equals the tied stack
(the identity the library is built on), the mixer replaces the attention module, and
the encoder refuses unknown mixers and options, and RoPE with a mixer that takes none."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError
from sciml_seq.torch.mixers.lsh import LSHAttention
from sciml_seq.torch.mixers.performer import PerformerAttention
from sciml_seq.torch.mixers.sliding_window import SlidingWindowAttention
from sciml_seq.torch.models import Forecaster
from sciml_seq.torch.transformer import TransformerEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64
DIM, HEADS = 8, 2
MIXERS = {
    "performer": (PerformerAttention, dict(n_features=6, chunk_size=2)),
    "sliding_window": (SlidingWindowAttention, dict(window=1, global_tokens=(0,))),
    "lsh": (LSHAttention, dict(bucket_size=2, n_hashes=2, n_buckets=4)),
}


def encoder(mixer: str, depth: str, **kwargs) -> TransformerEncoder:
    torch.manual_seed(0)
    return TransformerEncoder(
        DIM,
        HEADS,
        depth_mode=depth,
        n_layers=1 if depth == "ode" else 2,
        encoding="rotary",
        mixer=mixer,
        mixer_options=MIXERS[mixer][1],
        dtype=F64,
        **kwargs,
    )


@pytest.mark.parametrize("mixer", list(MIXERS))
def test_every_depth_runs_and_euler_equals_the_tied_stack(mixer):
    x = torch.randn(2, 6, DIM, dtype=F64)
    positions = torch.rand(2, 6, dtype=F64) * 5
    mask = torch.tensor([[True] * 4 + [False] * 2, [True] * 6])
    outs = {}
    for depth in ("untied", "tied", "ode"):
        model = encoder(mixer, depth, method="euler", n_steps=2)
        assert all(isinstance(f.attention, MIXERS[mixer][0]) for f in model.layers)
        outs[depth] = model(x, positions, padding_mask=mask, causal=depth == "tied")
        assert torch.isfinite(outs[depth]).all()
    tied = encoder(mixer, "tied")
    ode = encoder(mixer, "ode", method="euler", n_steps=2)
    ode.load_state_dict(tied.state_dict())
    np.testing.assert_allclose(
        ode(x, positions, padding_mask=mask).detach().numpy(),
        tied(x, positions, padding_mask=mask).detach().numpy(),
        atol=1e-12,
    )


def test_forecaster_takes_a_mixer():
    torch.manual_seed(0)
    model = Forecaster(
        2,
        DIM,
        HEADS,
        depth_mode="tied",
        n_layers=2,
        mixer="sliding_window",
        mixer_options={"window": 2},
    )
    out = model(torch.randn(3, 5, 2), torch.rand(3, 5), torch.rand(3, 4) + 1)
    assert out.shape == (3, 4, 2)
    assert isinstance(model.encoder.layers[0].attention, SlidingWindowAttention)


def test_refused():
    with pytest.raises(OptionError, match="mixer: expected one of 'softmax'"):
        TransformerEncoder(DIM, HEADS, mixer="linformer")
    with pytest.raises(OptionError, match="'lsh' takes the options"):
        TransformerEncoder(DIM, HEADS, mixer="lsh", mixer_options={"window": 2})
    with pytest.raises(OptionError, match="'fnet' takes no rotary encoding"):
        TransformerEncoder(DIM, HEADS, mixer="fnet", encoding="rotary")

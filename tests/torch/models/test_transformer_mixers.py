"""TransformerSequenceModel(mixer=...): every block gets the registry's mixer (RoPE only
where the mixer takes it), the default stays MultiheadAttention, a bad name is refused."""

from __future__ import annotations

import pytest
import torch

from sciml_seq.errors import OptionError
from sciml_seq.torch.attention import MultiheadAttention
from sciml_seq.torch.mixers.aaren import AarenMixer
from sciml_seq.torch.mixers.fnet import FNetMixer
from sciml_seq.torch.mixers.gmlp import SpatialGatingMixer
from sciml_seq.torch.models.transformer_baseline import TransformerSequenceModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    "mixer, options, cls",
    [
        ("softmax", None, MultiheadAttention),
        ("fnet", None, FNetMixer),
        ("gmlp", {"max_length": 6}, SpatialGatingMixer),
        ("aaren", None, AarenMixer),
    ],
)
def test_mixer_in_every_block(mixer, options, cls):
    torch.manual_seed(0)
    model = TransformerSequenceModel(
        3, 2, d_model=8, heads=2, pool="none", mixer=mixer, mixer_options=options
    )
    assert all(type(block.attn) is cls for block in model.blocks)
    assert (getattr(model.blocks[0].attn, "rope", None) is not None) == (mixer == "softmax")
    y = model(torch.randn(2, 6, 3))
    assert y.shape == (2, 6, 2) and torch.isfinite(y).all()


def test_bad_mixer():
    with pytest.raises(OptionError, match="mixer"):
        TransformerSequenceModel(3, 2, d_model=8, heads=2, mixer="mamba")
    with pytest.raises(OptionError, match="max_length"):
        TransformerSequenceModel(3, 2, d_model=8, heads=2, mixer="gmlp")

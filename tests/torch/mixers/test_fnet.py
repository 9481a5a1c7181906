"""sciml_seq.torch.mixers.fnet: equals explicit DFT matrices in float64 (both norms, with
padding), padded content never reaches the output while the padded length does, the
refused options, and gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.torch.mixers.fnet import FNetMixer
from sciml_seq.torch.position import RotaryEncoding
from tests.mixers_b_reference import fnet_reference

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def close(a, b, atol=1e-12):
    """``a == b`` to ``atol`` (numpy: torch.testing's first call costs seconds)."""
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=atol)


F64 = torch.float64
DIM, HEADS, LENGTH = 6, 2, 5
VALID = torch.tensor([[True, True, True, False, False], [True] * 5])


def inputs(seed: int = 0) -> torch.Tensor:
    return torch.tensor(np.random.default_rng(seed).standard_normal((2, LENGTH, DIM)))


@pytest.mark.parametrize("norm", ["ortho", "backward"])
@pytest.mark.parametrize("padded", [False, True])
def test_equals_dft_matrices(norm, padded):
    x = inputs()
    valid = VALID if padded else None
    y = FNetMixer(DIM, HEADS, norm=norm)(x, padding_mask=valid)
    assert y.dtype == F64 and y.shape == x.shape
    ref = fnet_reference(x.numpy(), None if valid is None else valid.numpy(), norm)
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=1e-12)


def test_padding_content_ignored_padded_length_not():
    mixer = FNetMixer(DIM, HEADS)
    x = inputs()
    noisy = x.clone()
    noisy[~VALID] = 1e3
    y = mixer(x, padding_mask=VALID)
    close(mixer(noisy, padding_mask=VALID), y)
    # The first example's 3 valid tokens alone give other numbers (frequencies k/3, not k/5):
    alone = mixer(x[:1, :3])
    assert (alone - y[:1, :3]).abs().max() > 1e-2
    np.testing.assert_allclose(alone.numpy(), fnet_reference(x[:1, :3].numpy()), atol=1e-12)


def test_refusals():
    with pytest.raises(OptionError, match="causal"):
        FNetMixer(DIM, HEADS)(inputs(), causal=True)
    with pytest.raises(OptionError, match="rope"):
        FNetMixer(DIM, HEADS, rope=RotaryEncoding(4))
    with pytest.raises(OptionError, match="dropout"):
        FNetMixer(DIM, HEADS, dropout=0.1)
    with pytest.raises(OptionError, match="norm"):
        FNetMixer(DIM, HEADS, norm="forward")
    with pytest.raises(OptionError, match="heads"):
        FNetMixer(DIM, 4)
    with pytest.raises(ShapeError, match="dim=6"):
        FNetMixer(DIM, HEADS)(inputs()[..., :4])
    with pytest.raises(ShapeError, match="positions"):
        FNetMixer(DIM, HEADS)(inputs(), torch.zeros(2, 4))


def test_gradcheck():
    x = inputs()[:, :3, :4].clone().requires_grad_(True)
    mixer = FNetMixer(4, 1)
    assert torch.autograd.gradcheck(lambda x: mixer(x, padding_mask=VALID[:, :3]), (x,))

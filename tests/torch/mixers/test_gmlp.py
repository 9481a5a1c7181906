"""sciml_seq.torch.mixers.gmlp: equals a float64 numpy spatial gating unit (bidirectional,
causal, padded, multi-head), starts near identity, causality, padding independence,
max_length, refused options, and gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.torch.mixers.gmlp import SpatialGatingMixer
from sciml_seq.torch.position import RotaryEncoding
from tests.mixers_b_reference import gmlp_reference

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def close(a, b, atol=1e-12):
    """``a == b`` to ``atol`` (numpy: torch.testing's first call costs seconds)."""
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=atol)


F64 = torch.float64
DIM, HEADS, LENGTH, MAX = 6, 2, 5, 7
VALID = torch.tensor([[True, True, True, False, False], [True] * 5])


def module(heads: int = HEADS, randomize: bool = True) -> SpatialGatingMixer:
    torch.manual_seed(0)
    m = SpatialGatingMixer(DIM, heads, max_length=MAX, dtype=F64)
    if randomize:  # move away from the near-identity start so that every term matters
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.3 * torch.randn_like(p))
    return m


def inputs(seed: int = 0) -> torch.Tensor:
    return torch.tensor(np.random.default_rng(seed).standard_normal((2, LENGTH, DIM)))


def params(m) -> dict:
    return {k: v.detach().numpy() for k, v in m.state_dict().items()}


@pytest.mark.parametrize(
    "heads, causal, padded",
    [(2, False, False), (2, True, True), (1, False, True), (3, True, False)],
)
def test_equals_numpy_reference(heads, causal, padded):
    m, x = module(heads), inputs()
    valid = VALID if padded else None
    y = m(x, causal=causal, padding_mask=valid)
    ref = gmlp_reference(
        params(m), x.numpy(), heads, causal, None if valid is None else VALID.numpy()
    )
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=0, atol=1e-12)


def test_starts_near_identity():
    """At initialisation the gate is ~1: the output is ~ out(u), u the first projection half."""
    m, x = module(randomize=False), inputs()
    u = torch.nn.functional.gelu(m.proj(x))[..., :DIM]
    ungated = m.out(u)
    y = m(x)
    assert (y - ungated).abs().max() < 1e-2 * ungated.abs().max()
    assert (m.spatial_weight.abs() <= 1e-3 / MAX).all() and (m.spatial_bias == 1).all()


def test_causal_and_padding_independence():
    m, x = module(), inputs()
    y = m(x, causal=True)
    later = x.clone()
    later[:, 3:] += 5.0
    close(m(later, causal=True)[:, :3], y[:, :3])
    noisy = x.clone()
    noisy[~VALID] = 1e3
    close(m(noisy, padding_mask=VALID)[VALID], m(x, padding_mask=VALID)[VALID])
    # Trailing padding = the valid prefix alone:
    close(m(x, padding_mask=VALID)[:1, :3], m(x[:1, :3]))


def test_refusals():
    with pytest.raises(OptionError, match="max_length"):
        SpatialGatingMixer(DIM, HEADS)
    with pytest.raises(OptionError, match="max_length"):
        SpatialGatingMixer(DIM, HEADS, max_length=0)
    with pytest.raises(ShapeError, match="max_length=4"):
        SpatialGatingMixer(DIM, HEADS, max_length=4)(inputs())
    with pytest.raises(OptionError, match="rope"):
        SpatialGatingMixer(DIM, HEADS, max_length=MAX, rope=RotaryEncoding(4))
    with pytest.raises(OptionError, match="dropout"):
        SpatialGatingMixer(DIM, HEADS, max_length=MAX, dropout=0.1)


def test_gradcheck():
    torch.manual_seed(0)
    m = SpatialGatingMixer(4, 2, max_length=3, dtype=F64)
    x = inputs()[:, :3, :4].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, w: m(x, causal=True, padding_mask=VALID[:, :3]), (x, m.spatial_weight)
    )

"""sciml_seq.torch.mixers.aaren: the prefix scan equals per-prefix softmax attention with
the learned query (float64 numpy, with padding, large scores), bidirectional = last
prefix broadcast, step-by-step decoding equals the scan, refused options, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.torch.mixers.aaren import AarenMixer, aaren_scan
from sciml_seq.torch.position import RotaryEncoding
from tests.mixers_b_reference import aaren_reference

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def close(a, b, atol=1e-12):
    """``a == b`` to ``atol`` (numpy: torch.testing's first call costs seconds)."""
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=0, atol=atol)


F64 = torch.float64
DIM, HEADS, LENGTH = 6, 2, 7
# Left and right padding, and a prefix with no valid token (the second example's first).
VALID = torch.tensor(
    [[True, True, True, True, False, False, True], [False, True, True] + [True] * 4]
)


def module(heads: int = HEADS) -> AarenMixer:
    torch.manual_seed(0)
    return AarenMixer(DIM, heads, dtype=F64)


def inputs(seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return torch.tensor(scale * np.random.default_rng(seed).standard_normal((2, LENGTH, DIM)))


def params(m) -> dict:
    return {k: v.detach().numpy() for k, v in m.state_dict().items()}


@pytest.mark.parametrize(
    "heads, causal, padded, scale",
    [(2, True, False, 1.0), (2, True, True, 30.0), (3, False, True, 1.0), (1, False, False, 30.0)],
)
def test_equals_per_prefix_softmax(heads, causal, padded, scale):
    """scale=30 gives scores of size ~100: the running max keeps exp() finite."""
    m, x = module(heads), inputs(scale=scale)
    valid = VALID if padded else None
    y = m(x, causal=causal, padding_mask=valid)
    ref = aaren_reference(
        params(m), x.numpy(), heads, causal, None if valid is None else VALID.numpy()
    )
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-12, atol=1e-11)


def test_scan_power_of_two_and_odd_lengths():
    """The Hillis-Steele scan at lengths around powers of two, against cumulative softmax."""
    rng = np.random.default_rng(3)
    for length in (1, 2, 8, 9):
        s, v = rng.standard_normal((2, length)), rng.standard_normal((2, length, 3))
        o = aaren_scan(torch.tensor(s), torch.tensor(v)).numpy()
        for t in range(length):
            w = np.exp(s[:, : t + 1] - s[:, : t + 1].max(-1, keepdims=True))
            ref = np.einsum("bi,bid->bd", w / w.sum(-1, keepdims=True), v[:, : t + 1])
            np.testing.assert_allclose(o[:, t], ref, rtol=0, atol=1e-13)


def test_step_decoding_equals_scan():
    m, x = module(), inputs()
    y = m(x, causal=True, padding_mask=VALID)
    state = m.init_state(2)
    for t in range(LENGTH):
        state, y_t = m.step(state, x[:, t], VALID[:, t])
        close(y_t, y[:, t])
    assert state[0].shape == (2, HEADS) and state[2].shape == (2, HEADS, DIM // HEADS)


def test_bidirectional_is_last_prefix():
    m, x = module(), inputs()
    y = m(x, padding_mask=VALID)
    last = m(x, causal=True, padding_mask=VALID)[:, -1:]
    close(y, last.expand_as(y))


def test_refusals():
    with pytest.raises(OptionError, match="rope"):
        AarenMixer(DIM, HEADS, rope=RotaryEncoding(4))
    with pytest.raises(OptionError, match="dropout"):
        AarenMixer(DIM, HEADS, dropout=0.1)
    with pytest.raises(ShapeError, match="x_t"):
        module().step(module().init_state(2), inputs())


def test_gradcheck():
    torch.manual_seed(0)
    m = AarenMixer(4, 2, dtype=F64)
    x = inputs()[:, :4, :4].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, q: m(x, causal=True, padding_mask=VALID[:, :4]), (x, m.query)
    )

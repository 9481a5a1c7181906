"""sciml_seq.torch.attention.MultiheadAttention: equals a naive float64 reference
(with and without masks and RoPE), causality, padding independence, dropout,
gradients and errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.position import rotary_reference
from sciml_seq.torch.attention import MultiheadAttention
from sciml_seq.torch.position import RotaryEncoding

F64 = torch.float64
DIM, HEADS, LENGTH = 8, 2, 5


def module(rope: bool = False, **options) -> MultiheadAttention:
    torch.manual_seed(0)
    rotary = RotaryEncoding(DIM // HEADS, base=30.0) if rope else None
    return MultiheadAttention(DIM, HEADS, rope=rotary, dtype=F64, **options)


def inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((2, LENGTH, DIM)))
    positions = torch.tensor(np.sort(rng.uniform(0, 6, (2, LENGTH)), axis=1))
    valid = torch.tensor([[True, True, True, False, False], [False, True, True, True, True]])
    return x, positions, valid


def naive(m: MultiheadAttention, x, positions, causal, valid) -> np.ndarray:
    """softmax(Q K^T / sqrt(d)) V written out in numpy (float64)."""
    params = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    x = x.numpy()
    batch, length, dim = x.shape
    hd = dim // m.heads
    qkv = x @ params["qkv.weight"].T + params.get("qkv.bias", 0.0)
    q, k, v = (
        qkv[..., i * dim : (i + 1) * dim].reshape(batch, length, m.heads, hd).transpose(0, 2, 1, 3)
        for i in range(3)
    )
    if m.rope is not None:
        pos = positions.numpy()[:, None]
        q, k = rotary_reference(q, pos, m.rope.base), rotary_reference(k, pos, m.rope.base)
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
    allowed = np.ones((batch, 1, length, length), dtype=bool)
    if causal:
        allowed &= np.tril(np.ones((length, length), dtype=bool))
    if valid is not None:
        allowed &= valid.numpy()[:, None, None, :]
    logits = np.where(allowed, logits, -np.inf)
    has_key = allowed.any(-1, keepdims=True)
    logits = np.where(has_key, logits, 0.0)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights = weights / weights.sum(-1, keepdims=True)
    o = np.where(has_key, weights @ v, 0.0)
    o = o.transpose(0, 2, 1, 3).reshape(batch, length, dim)
    return o @ params["out.weight"].T + params.get("out.bias", 0.0)


@pytest.mark.parametrize(
    ("rope", "causal", "padding"), list(itertools.product([False, True], repeat=3))
)
def test_equals_naive_reference(rope, causal, padding):
    m = module(rope)
    x, positions, valid = inputs()
    valid = valid if padding else None
    out = m(x, positions, causal=causal, padding_mask=valid)
    assert out.shape == (2, LENGTH, DIM) and out.dtype == F64
    expected = naive(m, x, positions, causal, valid)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)


def test_no_bias_and_parameter_names():
    m = module(bias=False)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {
        "qkv.weight": (3 * DIM, DIM),
        "out.weight": (DIM, DIM),
    }
    x, positions, valid = inputs()
    np.testing.assert_allclose(
        m(x, causal=True, padding_mask=valid).detach().numpy(),
        naive(m, x, positions, True, valid),
        rtol=1e-12,
        atol=1e-12,
    )


def test_causal_output_independent_of_the_future():
    m = module(rope=True)
    x, positions, _ = inputs()
    out = m(x, positions, causal=True)
    for t in range(LENGTH - 1):
        changed = x.clone()
        changed[:, t + 1 :] += torch.randn(2, LENGTH - t - 1, DIM, dtype=F64)
        moved = positions.clone()
        moved[:, t + 1 :] += 0.5  # later positions do not matter either
        torch.testing.assert_close(m(changed, moved, causal=True)[:, : t + 1], out[:, : t + 1])
    assert not torch.allclose(m(x, positions)[:, 0], out[:, 0])  # non-causal sees the future


@pytest.mark.parametrize("causal", [False, True])
def test_valid_outputs_independent_of_padded_inputs(causal):
    m = module(rope=True)
    x, positions, valid = inputs()
    out = m(x, positions, causal=causal, padding_mask=valid)
    noise = torch.randn(2, LENGTH, DIM, dtype=F64) * (~valid)[..., None]
    out2 = m(x + noise, positions + 3.0 * (~valid), causal=causal, padding_mask=valid)
    torch.testing.assert_close(out2[valid], out[valid], rtol=1e-12, atol=1e-12)
    # Right padding: the valid part equals the unpadded sequence alone.
    alone = m(x[:1, :3], positions[:1, :3], causal=causal)
    torch.testing.assert_close(out[0, :3], alone[0], rtol=1e-12, atol=1e-12)
    if causal:  # left padding: padded queries have no key, their output is out.bias
        torch.testing.assert_close(out[1, 0], m.out.bias, rtol=0, atol=0)


def test_dropout_only_in_training():
    m = module(dropout=0.5)
    x, positions, valid = inputs()
    m.eval()
    reference = m(x)
    torch.testing.assert_close(m(x), reference, rtol=0, atol=0)
    m.train()
    torch.manual_seed(1)
    dropped = m(x, padding_mask=valid)
    assert dropped.shape == reference.shape and not torch.allclose(dropped, reference)
    assert torch.isfinite(dropped).all()


def test_gradcheck():
    m = module(rope=True)
    x, positions, valid = inputs()
    x = x[:, :3, :].clone().requires_grad_(True)
    positions = positions[:, :3].clone().requires_grad_(True)
    valid = valid[:, 1:4]  # sample 0: one padded key; sample 1: all valid

    def f(x, positions):
        return m(x, positions, causal=True, padding_mask=valid)

    assert torch.autograd.gradcheck(f, (x, positions))
    # No NaN gradients from fully masked rows.
    x2 = torch.randn(1, 3, DIM, dtype=F64, requires_grad=True)
    m(
        x2, torch.zeros(1, 3, dtype=F64), padding_mask=torch.zeros(1, 3, dtype=torch.bool)
    ).sum().backward()
    assert torch.isfinite(x2.grad).all()


def test_errors():
    with pytest.raises(OptionError, match="heads: expected a divisor of dim=8; got 3"):
        MultiheadAttention(8, 3)
    with pytest.raises(OptionError, match="heads: expected an integer >= 1; got 2.0"):
        MultiheadAttention(8, 2.0)
    with pytest.raises(OptionError, match=r"rope must be a RotaryEncoding with head_dim .* = 4.*8"):
        MultiheadAttention(8, 2, rope=RotaryEncoding(8))
    with pytest.raises(OptionError, match=r"dropout: expected .* >= 0\.0 and < 1\.0; got 1\.0"):
        MultiheadAttention(8, 2, dropout=1.0)
    m = module(rope=True)
    x, positions, valid = inputs()
    with pytest.raises(
        ShapeError, match=r"x must have shape \(batch, length, dim=8\).*\(2, 5, 6\)"
    ):
        m(x[..., :6], positions)
    with pytest.raises(ShapeError, match=r"\(2, 5\) to match x of shape \(2, 5, 8\).*\(2, 4\)"):
        m(x, positions[:, :4])
    with pytest.raises(OptionError, match="positions=None.*rope"):
        m(x)
    with pytest.raises(DTypeError, match="padding_mask must be a bool tensor"):
        m(x, positions, padding_mask=valid.long())
    with pytest.raises(ShapeError, match=r"padding_mask must have shape .* \(2, 5\).*\(2, 4\)"):
        m(x, positions, padding_mask=valid[:, :4])


def test_precomputed_rope_angles_give_the_same_output():
    torch.manual_seed(0)
    attention = MultiheadAttention(8, 2, rope=RotaryEncoding(4), dtype=torch.float64)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    positions = torch.rand(2, 5, dtype=torch.float64) * 7
    angles = attention.rope.angles(positions, x.dtype)
    torch.testing.assert_close(
        attention(x, rope_angles=angles), attention(x, positions), rtol=0, atol=0
    )

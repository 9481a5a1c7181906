"""sciml_seq.jax.attention.MultiheadAttention: the reference, float64 parity with
sciml_seq.torch.attention (with and without masks and RoPE), causality, padding
independence, dropout and errors."""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.jax.attention import MultiheadAttention
from sciml_seq.jax.position import RotaryEncoding

#: float64 parity with torch / numpy references to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64

try:
    import torch
except ImportError:  # the parity test needs it; the rest do not
    torch = None

KEY = jax.random.key(0)
DIM, HEADS, LENGTH = 8, 2, 5

# The module and flags are arguments: one compilation per structure and flag set.
apply = eqx.filter_jit(
    lambda m, x, p, causal, mask: jax.vmap(
        lambda x, p, mask: m(x, p, causal=causal, padding_mask=mask),
        in_axes=(0, 0, None if mask is None else 0),
    )(x, p, mask)
)


def module(rope: bool = False, **options) -> MultiheadAttention:
    rotary = RotaryEncoding(DIM // HEADS, base=30.0) if rope else None
    return MultiheadAttention(DIM, HEADS, rope=rotary, key=KEY, **options)


def inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, LENGTH, DIM))
    positions = np.sort(rng.uniform(0, 6, (2, LENGTH)), axis=1)
    valid = np.array([[True, True, True, False, False], [False, True, True, True, True]])
    return jnp.asarray(x), jnp.asarray(positions), jnp.asarray(valid)


needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


@needs_torch
@pytest.mark.parametrize(
    ("rope", "causal", "padding"), list(itertools.product([False, True], repeat=3))
)
def test_parity_with_torch(rope, causal, padding):
    from sciml_seq.convert import torch_to_jax
    from sciml_seq.torch.attention import MultiheadAttention as TorchAttention
    from sciml_seq.torch.position import RotaryEncoding as TorchRotary

    torch.manual_seed(0)
    rotary = TorchRotary(DIM // HEADS, base=30.0) if rope else None
    tm = TorchAttention(DIM, HEADS, rope=rotary, dtype=torch.float64)
    jm = torch_to_jax(tm, module(rope))
    x, positions, valid = inputs()
    mask = valid if padding else None
    expected = tm(
        torch.tensor(np.asarray(x)),
        torch.tensor(np.asarray(positions)),
        causal=causal,
        padding_mask=None if mask is None else torch.tensor(np.asarray(mask)),
    )
    got = apply(jm, x, positions, causal, mask)
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=0, atol=1e-13)


def test_reference_path_is_float64_softmax():
    """Float64 runs attention_reference (the fused softmax is float32): written out here."""
    m = module(rope=True)
    x, positions, valid = inputs()
    out = apply(m, x, positions, True, valid)
    qkv = jax.vmap(m.qkv)(x[0]).reshape(LENGTH, 3, HEADS, DIM // HEADS)
    q, k = (m.rope(qkv[:, i].transpose(1, 0, 2), positions[0]) for i in range(2))
    v = qkv[:, 2].transpose(1, 0, 2)
    logits = q @ k.transpose(0, 2, 1) / np.sqrt(DIM // HEADS)
    allowed = np.tril(np.ones((LENGTH, LENGTH), bool)) & np.asarray(valid[0])[None, :]
    weights = jax.nn.softmax(jnp.where(allowed, logits, -jnp.inf), axis=-1)
    o = (weights @ v).transpose(1, 0, 2).reshape(LENGTH, DIM)
    np.testing.assert_allclose(out[0], jax.vmap(m.out)(o), rtol=0, atol=1e-14)


@pytest.mark.parametrize(("causal", "padding"), [(False, False), (True, False), (True, True)])
def test_fused_path_in_float32(causal, padding):
    """float32 runs jax.nn.dot_product_attention: equals the float64 result to float32 accuracy."""
    m = module(rope=True)
    x, positions, valid = inputs()
    mask = valid if padding else None
    m32 = jax.tree.map(lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, m)
    out32 = apply(m32, x.astype(jnp.float32), positions.astype(jnp.float32), causal, mask)
    assert out32.dtype == jnp.float32
    np.testing.assert_allclose(out32, apply(m, x, positions, causal, mask), rtol=0, atol=2e-5)


def test_causal_and_padding_independence():
    m = module(rope=True)
    x, positions, valid = inputs()
    out = apply(m, x, positions, True, None)
    noise = jnp.asarray(np.random.default_rng(3).standard_normal(x.shape))
    for t in (1, 3):
        later = jnp.arange(LENGTH) > t
        changed = apply(m, x + noise * later[:, None], positions + 0.5 * later, True, None)
        np.testing.assert_allclose(changed[:, : t + 1], out[:, : t + 1], atol=1e-13)
    padded = apply(m, x, positions, True, valid)
    changed = apply(m, x + noise * ~valid[..., None], positions + 3.0 * ~valid, True, valid)
    np.testing.assert_allclose(changed[valid], padded[valid], atol=1e-13)
    np.testing.assert_allclose(padded[1, 0], m.out.bias, atol=0)  # no key: out.bias


def test_dropout_and_inference():
    m = module(dropout=0.5)
    x = inputs()[0][0]
    with pytest.raises(OptionError, match="needs a key"):
        m(x)
    evaluated = eqx.nn.inference_mode(m)
    plain = eqx.tree_at(lambda a: a.inference, module(), True)
    np.testing.assert_array_equal(evaluated(x), plain(x))
    dropped = m(x, key=jax.random.key(1))
    assert dropped.shape == (LENGTH, DIM) and not np.allclose(dropped, plain(x))


def test_errors():
    with pytest.raises(OptionError, match="heads: expected a divisor of dim=8; got 3"):
        MultiheadAttention(8, 3, key=KEY)
    with pytest.raises(OptionError, match=r"dropout: expected .* >= 0\.0 and < 1\.0; got -0\.1"):
        MultiheadAttention(8, 2, dropout=-0.1, key=KEY)
    with pytest.raises(OptionError, match=r"rope must be a RotaryEncoding with head_dim .* = 4"):
        MultiheadAttention(8, 2, rope=RotaryEncoding(8), key=KEY)
    with pytest.raises(
        OptionError, match="implementation: expected one of None, 'xla', 'cudnn'; got 'flash'"
    ):
        MultiheadAttention(8, 2, implementation="flash", key=KEY)
    m = module(rope=True)
    x, positions, valid = inputs()
    with pytest.raises(ShapeError, match=r"x must have shape \(length, dim=8\).*\(2, 5, 8\)"):
        m(x, positions[0])
    with pytest.raises(ShapeError, match=r"\(5,\) to match x of shape \(5, 8\).*\(4,\)"):
        m(x[0], positions[0, :4])
    with pytest.raises(OptionError, match="positions=None.*rope"):
        m(x[0])
    with pytest.raises(DTypeError, match="padding_mask must be a bool array"):
        m(x[0], positions[0], padding_mask=valid[0].astype(int))
    with pytest.raises(ShapeError, match=r"padding_mask must have shape \(length,\) = \(5,\)"):
        m(x[0], positions[0], padding_mask=valid[0, :4])

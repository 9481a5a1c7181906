"""sciml_seq.torch.mixers.lsh: equal to dense attention over the union of the rounds'
bucket-chunk sets (lsh_counts) with the same rotations, causal and padded; a token
attends to itself only when alone; RoPE shift invariance; redraw; gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError
from sciml_seq.torch.mixers import make_mixer
from sciml_seq.torch.mixers.lsh import LSHAttention, lsh_attention
from sciml_seq.torch.position import RotaryEncoding
from tests.mixers_a_reference import angular_buckets, largest_saved_tensor, lsh_dense

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64
DIM, HEADS = 8, 2


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    ("length", "bucket_size", "n_hashes", "n_buckets"),
    [(6, 8, 1, 2), (23, 4, 3, 4), (40, 8, 2, 8)],
)
def test_equals_dense_attention_under_the_bucket_mask(
    length, bucket_size, n_hashes, n_buckets, causal
):
    rng = np.random.default_rng(length)
    qk, v = (rng.standard_normal((2, 2, length, 4)) for _ in range(2))
    rotations = rng.standard_normal((n_hashes, 4, n_buckets // 2))
    valid = rng.uniform(size=(2, length)) > 0.2
    buckets = np.stack([[angular_buckets(qk[b, h], rotations) for h in range(2)] for b in range(2)])
    out = lsh_attention(
        torch.tensor(qk),
        torch.tensor(v),
        torch.tensor(buckets),
        torch.tensor(valid),
        bucket_size=bucket_size,
        n_buckets=n_buckets,
        causal=causal,
    )
    for b in range(2):
        for h in range(2):
            expected = lsh_dense(qk[b, h], v[b, h], buckets[b, h], valid[b], bucket_size, causal)
            np.testing.assert_allclose(out[b, h].numpy(), expected, atol=1e-12)


def test_module_uses_its_rotations_and_attends_to_itself_only_when_alone():
    torch.manual_seed(0)
    module = LSHAttention(DIM, HEADS, bucket_size=4, n_hashes=2, n_buckets=4, dtype=F64)
    x = torch.randn(1, 9, DIM, dtype=F64)
    qk = module.shared_qk(x).detach().numpy()
    v = module.v(x).view(1, 9, HEADS, DIM // HEADS).transpose(1, 2).detach().numpy()
    rotations = module.rotations.numpy()
    valid = np.ones(9, dtype=bool)
    o = np.stack(
        [
            lsh_dense(qk[0, h], v[0, h], angular_buckets(qk[0, h], rotations), valid, 4, True)
            for h in range(HEADS)
        ]
    )
    expected = module.out(torch.tensor(o).transpose(0, 1).reshape(1, 9, DIM))
    out = module(x, causal=True)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), atol=1e-12)
    # causal: the first token has nothing but itself, and attends to itself
    np.testing.assert_allclose(
        out[0, 0].detach().numpy(), module.out(module.v(x[0, :1]))[0].detach().numpy(), atol=1e-12
    )
    before = module.rotations.clone()
    module.redraw()
    assert (module.rotations - before).abs().max() > 0.1


def test_rope_depends_on_relative_positions_only():
    torch.manual_seed(1)
    module = make_mixer(
        "lsh", DIM, HEADS, rope=RotaryEncoding(DIM // HEADS), dtype=F64, bucket_size=4, n_buckets=4
    )
    x = torch.randn(2, 10, DIM, dtype=F64)
    positions = torch.rand(2, 10, dtype=F64) * 10
    np.testing.assert_allclose(
        module(x, positions).detach().numpy(),
        module(x, positions - 2.5).detach().numpy(),
        atol=1e-11,
    )


def test_refused_options():
    with pytest.raises(OptionError, match="n_buckets: expected an even number"):
        LSHAttention(DIM, HEADS, n_buckets=5)
    with pytest.raises(OptionError, match="n_hashes"):
        LSHAttention(DIM, HEADS, n_hashes=0)
    with pytest.raises(OptionError, match="dropout"):
        LSHAttention(DIM, HEADS, dropout=0.5)


def test_gradcheck():
    torch.manual_seed(0)
    module = LSHAttention(DIM, HEADS, bucket_size=2, n_hashes=2, n_buckets=2, dtype=F64)
    x = torch.randn(1, 5, DIM, dtype=F64, requires_grad=True)
    valid = torch.tensor([[True, True, False, True, True]])
    assert torch.autograd.gradcheck(lambda a: module(a, padding_mask=valid), (x,), fast_mode=True)


def test_memory_is_linear_in_length():
    module = LSHAttention(DIM, HEADS, bucket_size=16, n_hashes=2, n_buckets=8)
    sizes = [largest_saved_tensor(module, torch.randn(1, n, DIM)) for n in (256, 512)]
    assert sizes[1] <= 2.05 * sizes[0], sizes

"""sciml_seq.torch.mixers.sliding_window: equal to dense attention under
sliding_window_mask (window, dilation, global tokens, causal, padding) to rounding,
RoPE, memory linear in length (largest intermediate), the refused options, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError
from sciml_seq.mixers import sliding_window_mask
from sciml_seq.torch.mixers import make_mixer
from sciml_seq.torch.mixers.sliding_window import SlidingWindowAttention, banded_attention
from sciml_seq.torch.position import RotaryEncoding
from tests.mixers_a_reference import dense_attention, largest_saved_tensor

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64
DIM, HEADS = 8, 2
CASES = [  # (length, window, dilation, global tokens): blocks of 32 and of window*dilation
    (9, 0, 1, ()),
    (9, 2, 2, (0, 7)),
    (40, 3, 1, (5,)),
    (70, 12, 3, (1, 69)),
]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_equals_dense_attention_under_the_band_mask(case, causal):
    length, window, dilation, glob = case
    rng = np.random.default_rng(length + window)
    q, k, v = (rng.standard_normal((2, 2, length, 3)) for _ in range(3))
    valid = rng.uniform(size=(2, length)) > 0.25
    out = banded_attention(
        *(torch.tensor(a) for a in (q, k, v)),
        torch.tensor(valid),
        window=window,
        dilation=dilation,
        global_tokens=glob,
        causal=causal,
    )
    band = sliding_window_mask(length, window, dilation, glob, causal=causal)
    for b in range(2):
        for h in range(2):
            expected = dense_attention(q[b, h], k[b, h], v[b, h], band & valid[b][None, :])
            np.testing.assert_allclose(out[b, h].numpy(), expected, atol=1e-12)


def test_module_with_rope_matches_dense_attention():
    torch.manual_seed(0)
    rope = RotaryEncoding(DIM // HEADS)
    module = make_mixer(
        "sliding_window", DIM, HEADS, rope=rope, dtype=F64, window=1, global_tokens=(0,)
    )
    x = torch.randn(1, 6, DIM, dtype=F64)
    positions = torch.rand(1, 6, dtype=F64) * 6
    qkv = module.qkv(x).view(1, 6, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
    cos, sin = rope.angles(positions, F64)
    q, k, v = (a.detach() for a in qkv.unbind(0))
    q, k = rope.rotate(q, cos, sin).numpy(), rope.rotate(k, cos, sin).numpy()
    mask = sliding_window_mask(6, 1, 1, (0,))
    o = np.stack([dense_attention(q[0, h], k[0, h], v[0, h].numpy(), mask) for h in range(HEADS)])
    expected = module.out(torch.tensor(o).transpose(0, 1).reshape(1, 6, DIM))
    np.testing.assert_allclose(
        module(x, positions).detach().numpy(), expected.detach().numpy(), atol=1e-12
    )


def test_memory_is_linear_in_length():
    # the largest intermediate doubles with the length (an L x L mask would quadruple)
    module = SlidingWindowAttention(DIM, HEADS, window=8, global_tokens=(0,))
    sizes = [largest_saved_tensor(module, torch.randn(1, n, DIM), causal=True) for n in (256, 512)]
    assert sizes[1] <= 2.05 * sizes[0], sizes
    assert sizes[1] < 512 * 512 / 4, sizes


def test_refused_options():
    with pytest.raises(OptionError, match="window: expected an integer >= 0"):
        SlidingWindowAttention(DIM, HEADS, window=-1)
    with pytest.raises(OptionError, match="dilation"):
        SlidingWindowAttention(DIM, HEADS, dilation=0)
    with pytest.raises(OptionError, match="global_tokens"):
        SlidingWindowAttention(DIM, HEADS, global_tokens="first")
    module = SlidingWindowAttention(DIM, HEADS, global_tokens=(3, 9))
    with pytest.raises(OptionError, match="global_tokens: expected indices < length=8; got 9"):
        module(torch.randn(1, 8, DIM))


def test_gradcheck():
    torch.manual_seed(0)
    module = SlidingWindowAttention(DIM, HEADS, window=1, dilation=2, global_tokens=(2,), dtype=F64)
    x = torch.randn(1, 5, DIM, dtype=F64, requires_grad=True)
    valid = torch.tensor([[True, True, True, True, False]])
    assert torch.autograd.gradcheck(
        lambda a: module(a, causal=True, padding_mask=valid), (x,), fast_mode=True
    )

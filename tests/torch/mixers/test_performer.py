"""sciml_seq.torch.mixers.performer: FAVOR+ against the pairwise numpy formula (with RoPE
on the features in the numerator only, RoFormer 3.3), the estimator's error to exact
softmax attention shrinking with the feature count, causal = bidirectional on every
prefix, shift invariance with RoPE, padding, redraw, the refused options, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError
from sciml_seq.torch.attention import MultiheadAttention
from sciml_seq.torch.mixers import make_mixer
from sciml_seq.torch.mixers.performer import PerformerAttention, draw_features
from sciml_seq.torch.position import RotaryEncoding
from sciml_seq.torch.transformer import TransformerEncoder
from tests.mixers_a_reference import favor_error, largest_saved_tensor, performer_dense

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64
DIM, HEADS, LENGTH = 8, 2, 7
VALID = torch.tensor([[True] * 5 + [False] * 2, [True] * 7])


def inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((2, LENGTH, DIM)))
    positions = torch.tensor(rng.uniform(0, 10, (2, LENGTH)))
    return x, positions


def performer(rope: bool = False, **options) -> PerformerAttention:
    torch.manual_seed(0)
    options = {"n_features": 6, "chunk_size": 3, **options}
    return make_mixer(
        "performer",
        DIM,
        HEADS,
        rope=RotaryEncoding(DIM // HEADS) if rope else None,
        dtype=F64,
        **options,
    )


def heads_of(module, x):
    b, n, _ = x.shape
    qkv = module.qkv(x).view(b, n, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
    return [a.detach().numpy() for a in qkv.unbind(0)]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("rope", [False, True])
def test_equals_the_pairwise_formula(rope, causal):
    module = performer(rope)
    x, positions = inputs()
    out = module(x, positions, causal=causal, padding_mask=VALID)
    q, k, v = heads_of(module, x)
    features = module.features.numpy()
    o = np.zeros(q.shape)
    for b in range(2):
        for h in range(HEADS):
            pos = positions[b].numpy() if rope else None
            o[b, h] = performer_dense(
                q[b, h], k[b, h], v[b, h], features, VALID[b].numpy(), causal, pos
            )
    expected = module.out(torch.tensor(o).transpose(1, 2).reshape(2, LENGTH, DIM))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), atol=1e-12)


def test_error_to_softmax_attention_shrinks_as_features_grow():
    # the estimator is unbiased: its mean error to exact attention falls like m^-1/2
    rng = np.random.default_rng(0)
    q, k, v = (0.5 * rng.standard_normal((8, 4)) for _ in range(3))
    errors = []
    for m in (4, 32, 256):
        seeds = [draw_features(m, 4, dtype=F64).numpy() for _ in range(6)]
        errors.append(np.mean([favor_error(q, k, v, w) for w in seeds]))
    assert errors[1] < 0.6 * errors[0] and errors[2] < 0.6 * errors[1], errors


def test_module_error_to_dense_attention_shrinks():
    x, _ = inputs()
    errors = []
    for m in (4, 64):
        torch.manual_seed(3)
        module = PerformerAttention(DIM, HEADS, n_features=m, dtype=F64)
        dense = MultiheadAttention(DIM, HEADS, dtype=F64)
        dense.load_state_dict({k: v for k, v in module.state_dict().items() if k != "features"})
        runs = []
        for _ in range(4):
            module.redraw()
            runs.append((module(x) - dense(x)).abs().mean().item())
        errors.append(np.mean(runs))
    assert errors[1] < 0.5 * errors[0], errors


def test_orthogonal_features_are_orthogonal_within_a_block():
    w = draw_features(12, 4, dtype=F64)
    for block in (w[:4], w[4:8], w[8:]):
        gram = block @ block.T
        np.testing.assert_allclose(gram - torch.diag(gram.diag()), 0, atol=1e-12)


def test_causal_equals_bidirectional_on_every_prefix():
    module = performer(rope=True)
    x, positions = inputs(1)
    causal = module(x, positions, causal=True)
    for t in range(1, LENGTH + 1):
        prefix = module(x[:, :t], positions[:, :t])
        np.testing.assert_allclose(
            causal[:, t - 1].detach().numpy(), prefix[:, -1].detach().numpy(), atol=1e-12
        )


def test_rope_depends_on_relative_positions_only():
    module = performer(rope=True)
    x, positions = inputs(2)
    out = module(x, positions)
    shifted = module(x, positions + 3.7)
    np.testing.assert_allclose(out.detach().numpy(), shifted.detach().numpy(), atol=1e-12)
    scaled = module(x, 2 * positions)  # the positions do matter
    assert (out - scaled).abs().max() > 1e-3


def test_padding_equals_the_truncated_sequence():
    module = performer(rope=True)
    x, positions = inputs(3)
    for causal in (False, True):
        out = module(x, positions, padding_mask=VALID, causal=causal)
        short = module(x[:1, :5], positions[:1, :5], causal=causal)
        np.testing.assert_allclose(
            out[0, :5].detach().numpy(), short[0].detach().numpy(), atol=1e-12
        )


def test_redraw_and_the_encoder_redraws_in_training():
    module = performer()
    before = module.features.clone()
    module.redraw()
    assert (module.features - before).abs().max() > 0.1
    torch.manual_seed(0)
    encoder = TransformerEncoder(
        DIM,
        HEADS,
        depth_mode="tied",
        n_layers=2,
        mixer="performer",
        mixer_options={"n_features": 6, "redraw": True},
        dtype=F64,
    )
    x, positions = inputs()
    features = encoder.layers[0].attention.features.clone()
    encoder.eval()
    encoder(x, positions)
    assert torch.equal(encoder.layers[0].attention.features, features)
    encoder.train()
    encoder(x, positions)
    assert not torch.equal(encoder.layers[0].attention.features, features)


def test_refused_options():
    with pytest.raises(OptionError, match="dropout"):
        PerformerAttention(DIM, HEADS, dropout=0.1)
    with pytest.raises(OptionError, match="n_features: expected an even number"):
        PerformerAttention(DIM, HEADS, n_features=5, rope=RotaryEncoding(4))
    with pytest.raises(OptionError, match="kernel"):
        PerformerAttention(DIM, HEADS, kernel="cosine")
    with pytest.raises(OptionError, match="'performer' takes the options"):
        make_mixer("performer", DIM, HEADS, window=3)


def test_relu_kernel():
    module = performer(kernel="relu")
    x, _ = inputs()
    q, k, v = heads_of(module, x)
    w = module.features.numpy()
    phi = lambda a: np.maximum(a / 2**0.5 @ w.T, 0) + 1e-3  # noqa: E731  (d^(1/4) = sqrt 2)
    a = np.einsum("bhtm,bhsm->bhts", phi(q), phi(k))
    o = (a @ v) / a.sum(-1, keepdims=True)
    expected = module.out(torch.tensor(o).transpose(1, 2).reshape(2, LENGTH, DIM))
    np.testing.assert_allclose(module(x).detach().numpy(), expected.detach().numpy(), atol=1e-12)


def test_gradcheck():
    module = performer(rope=True, n_features=4, chunk_size=2)
    x, positions = inputs()
    x = x[:1, :4].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a: module(a, positions[:1, :4], causal=True), (x,), fast_mode=True
    )


def test_memory_is_linear_in_length():
    module = PerformerAttention(DIM, HEADS, n_features=8, chunk_size=16)
    sizes = [
        largest_saved_tensor(module, torch.randn(1, n, DIM), causal=causal)
        for causal in (False, True)
        for n in (256, 512)
    ]
    assert sizes[1] <= 2.05 * sizes[0] and sizes[3] <= 2.05 * sizes[2], sizes

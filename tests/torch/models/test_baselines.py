"""Forecasting baselines (torch) against independent numpy references, and their invariances.

References: DLinear's trend is a numpy moving average over the series padded
with (kernel_size - 1) // 2 copies of its first and last values (the paper's
code); PatchTST's patches are explicit numpy slices of the end-padded series;
NLinear / DLinear outputs are recomputed in numpy from the layers' weights;
RevIN's inverse undoes its forward to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from sciml_seq.errors import OptionError, ShapeError

torch = pytest.importorskip("torch")

from sciml_seq.torch.models.baselines import (  # noqa: E402
    DLinear,
    ITransformer,
    NLinear,
    PatchTST,
    RevIN,
    moving_average,
    patches,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64
RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 20, 4)).cumsum(axis=1)  # (batch, seq_len, channels)
SMALL = dict(d_model=8, heads=2, n_layers=1, mlp_hidden=16, dtype=F64)


def numpy_moving_average(x: np.ndarray, kernel: int) -> np.ndarray:
    """``(batch, L, C)``: mean of each length-``kernel`` window of the replicate-padded series."""
    half = (kernel - 1) // 2
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[2]):
            series = np.concatenate([[x[b, 0, c]] * half, x[b, :, c], [x[b, -1, c]] * half])
            out[b, :, c] = [series[i : i + kernel].mean() for i in range(x.shape[1])]
    return out


def weights(linear: torch.nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    return linear.weight.detach().numpy(), linear.bias.detach().numpy()


@pytest.mark.parametrize("kernel", [1, 5, 25])  # 25 > seq_len: the padding dominates
def test_moving_average_matches_numpy_with_replicate_padding(kernel):
    got = moving_average(torch.tensor(X), kernel).numpy()
    np.testing.assert_allclose(got, numpy_moving_average(X, kernel), rtol=0, atol=1e-12)


def test_dlinear_and_nlinear_equal_their_numpy_formulas():
    torch.manual_seed(0)
    dlinear, nlinear = DLinear(20, 6, kernel_size=5, dtype=F64), NLinear(20, 6, dtype=F64)
    trend = numpy_moving_average(X, 5)
    (ws, bs), (wt, bt) = weights(dlinear.seasonal), weights(dlinear.trend)
    expected = np.einsum("blc,hl->bhc", X - trend, ws) + np.einsum("blc,hl->bhc", trend, wt)
    expected += (bs + bt)[:, None]
    got = dlinear(torch.tensor(X)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    w, b = weights(nlinear.linear)
    last = X[:, -1:]
    expected = np.einsum("blc,hl->bhc", X - last, w) + b[:, None] + last
    np.testing.assert_allclose(nlinear(torch.tensor(X)).detach().numpy(), expected, atol=1e-12)


def test_patches_match_explicit_numpy_slices():
    z = RNG.standard_normal((2, 20))
    for patch_len, stride, pad_end in [(16, 8, True), (6, 4, True), (5, 5, False), (20, 3, False)]:
        padded = np.concatenate([z, np.repeat(z[:, -1:], stride, 1)], 1) if pad_end else z
        starts = range(0, padded.shape[1] - patch_len + 1, stride)
        expected = np.stack([padded[:, s : s + patch_len] for s in starts], axis=1)
        got = patches(torch.tensor(z), patch_len, stride, pad_end).numpy()
        np.testing.assert_array_equal(got, expected)
        model = PatchTST(1, 20, 4, patch_len=patch_len, stride=stride, pad_end=pad_end, **SMALL)
        assert model.n_patches == expected.shape[1] == model.encoder.encoding.table.shape[0]


def test_revin_inverse_undoes_forward_and_standardises():
    revin = RevIN(4, dtype=F64)
    with torch.no_grad():
        revin.weight.copy_(torch.tensor([0.5, 2.0, -1.5, 1.0], dtype=F64))
        revin.bias.copy_(torch.tensor([0.1, -0.3, 0.0, 2.0], dtype=F64))
    x = torch.tensor(X)
    revin.requires_grad_(False)
    z, mean, std = revin(x)
    np.testing.assert_allclose(revin.denormalize(z, mean, std).numpy(), X, rtol=0, atol=1e-12)
    plain, mean, std = RevIN(4, affine=False, dtype=F64).normalize(x)
    np.testing.assert_allclose(mean.numpy(), X.mean(axis=1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(std.numpy(), np.sqrt(X.var(axis=1, keepdims=True) + 1e-5))
    np.testing.assert_allclose(z.numpy(), plain.numpy() * [0.5, 2.0, -1.5, 1.0]
                               + [0.1, -0.3, 0.0, 2.0], atol=1e-12)  # fmt: skip
    assert len(list(RevIN(4, affine=False).parameters())) == 0


def close(got: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    """numpy's check (torch.testing's first call imports for seconds)."""
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=tol, atol=tol)


def transformers() -> list[torch.nn.Module]:
    torch.manual_seed(0)
    patch = PatchTST(4, 20, 6, patch_len=8, stride=4, affine=False, **SMALL)
    return [patch, ITransformer(4, 20, 6, **SMALL)]


@pytest.mark.parametrize("index", [0, 1], ids=["PatchTST", "ITransformer"])
def test_transformers_follow_shift_and_scale_and_permute_channels(index):
    model = transformers()[index]
    model.revin.eps = 1e-300  # exact invariance: eps is not rescaled with the input
    x = torch.tensor(X)
    y = model(x)
    assert y.shape == (3, 6, 4)
    # RevIN: forecasts follow any positive rescaling and shift of each channel's input
    scale, shift = torch.tensor([2.0, 0.5, 3.0, 1.0]), torch.tensor([1.0, -4.0, 0.0, 10.0])
    close(model(x * scale + shift), y * scale + shift, 1e-9)
    # channels: PatchTST forecasts each alone, iTransformer attends over them as a set
    order = [2, 0, 3, 1]
    close(model(x[..., order]), y[..., order], 1e-12)


def test_patchtst_is_channel_independent():
    model = transformers()[0]
    x = torch.tensor(X)
    bumped = x.clone()
    bumped[:, :, 0] += torch.randn(3, 20, dtype=F64)
    y, y_bumped = model(x), model(bumped)
    close(y_bumped[..., 1:], y[..., 1:], 0.0)
    assert not torch.allclose(y_bumped[..., 0], y[..., 0])


def test_errors_name_the_argument():
    with pytest.raises(OptionError, match="^kernel_size: expected an odd integer"):
        DLinear(20, 6, kernel_size=24)
    with pytest.raises(OptionError, match="^patch_len: expected <= seq_len=20; got 24"):
        PatchTST(4, 20, 6, patch_len=24)
    with pytest.raises(OptionError, match="^eps: expected"):
        RevIN(4, eps=0.0)
    with pytest.raises(ShapeError, match=r"^x: expected windows of shape \(batch, 20, 4\)"):
        ITransformer(4, 20, 6, **SMALL)(torch.zeros(2, 20, 3, dtype=F64))
    with pytest.raises(ShapeError, match=r"^x: expected windows of shape \(batch, 20, channels\)"):
        NLinear(20, 6)(torch.zeros(2, 19, 3))

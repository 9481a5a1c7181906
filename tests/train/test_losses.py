"""Relative L1/L2 over channel groups vs direct float64 loops; Poseidon's official loss."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.losses import channel_groups, relative_errors, relative_l1_loss
from sciml_seq.train.metrics import error_metrics, to_numpy
from sciml_seq.train.schedule import warmup_cosine

FIXTURE = Path(__file__).parents[2] / ".." / "shared" / "reference" / "poseidon" / "tiny"
SLICES = [0, 1, 3, 4]


def _direct(pred, target, slices, p):
    """Per sample, per group: (sum |e|^p / (sum |y|^p + eps))^(1/p) by loops; group mean."""
    out = []
    for b in range(pred.shape[0]):
        per_group = []
        for s, e in zip(slices[:-1], slices[1:], strict=True):
            num = sum(abs(float(v)) ** p for v in (pred[b, s:e] - target[b, s:e]).ravel())
            den = sum(abs(float(v)) ** p for v in target[b, s:e].ravel())
            per_group.append((num / (den + 1e-10)) ** (1 / p))  # eps as documented
        out.append(sum(per_group) / len(per_group))
    return np.array(out)


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    target = rng.standard_normal((5, 4, 3, 6))
    target[:, 3] *= 100.0  # a channel on another scale: groups keep it from dominating
    return target + 0.3 * rng.standard_normal(target.shape), target


@pytest.mark.parametrize("p", [1, 2])
def test_relative_errors_match_loops_in_numpy_and_torch(batch, p):
    pred, target = batch
    expected = _direct(pred, target, SLICES, p)
    np.testing.assert_allclose(relative_errors(pred, target, SLICES, p=p), expected, rtol=1e-12)
    got = relative_errors(torch.from_numpy(pred), torch.from_numpy(target), SLICES, p=p)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_mean_loss_and_gradient(batch):
    pred, target = batch
    expected = _direct(pred, target, SLICES, 1).mean()
    pred_t = torch.from_numpy(pred).requires_grad_()
    loss = relative_l1_loss(pred_t, torch.from_numpy(target), SLICES)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    # d/dpred of |pred - y| / (B * G * sum|y|) for the sample/group of each entry
    b, c = 2, 3
    expected_grad = np.sign(pred[b, c] - target[b, c]) / (5 * 3 * np.abs(target[b, 3:4]).sum())
    np.testing.assert_allclose(pred_t.grad[b, c].numpy(), expected_grad, rtol=1e-12)


def test_default_group_is_all_channels(batch):
    pred, target = batch
    np.testing.assert_allclose(
        relative_errors(pred, target), _direct(pred, target, [0, 4], 1), rtol=1e-12
    )


@pytest.mark.skipif(not FIXTURE.is_dir(), reason="../shared/reference/poseidon not present")
def test_pooled_loss_is_poseidons_official_loss():
    from safetensors.numpy import load_file

    ref = load_file(str(FIXTURE / "reference_io.safetensors"))
    got = relative_l1_loss(
        torch.from_numpy(ref["output"]),
        torch.from_numpy(ref["labels"]),
        SLICES,
        reduction="pooled",
    )
    assert got.item() == pytest.approx(float(ref["loss"]), rel=1e-13)


def test_zero_target_is_finite():
    zeros = np.zeros((2, 1, 3))
    assert np.isfinite(relative_errors(zeros + 1.0, zeros)).all()
    assert relative_l1_loss(zeros, zeros) == 0.0


def test_metrics_median_and_l2(batch):
    pred, target = batch
    m = error_metrics(torch.from_numpy(pred).float(), torch.from_numpy(target).float(), SLICES)
    l1, l2 = _direct(pred, target, SLICES, 1), _direct(pred, target, SLICES, 2)
    assert m["median_rel_l1"] == pytest.approx(np.median(l1), rel=1e-6)
    assert m["mean_rel_l2"] == pytest.approx(np.mean(l2), rel=1e-6)
    assert m["median_rel_l2"] == pytest.approx(sorted(l2)[2], rel=1e-6)
    # even count: numpy's median averages the middle two (torch.median would not)
    m4 = error_metrics(pred[:4], target[:4], SLICES)
    four = np.sort(_direct(pred[:4], target[:4], SLICES, 1))
    assert m4["median_rel_l1"] == pytest.approx((four[1] + four[2]) / 2, rel=1e-12)
    assert to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype == np.float64


def test_loss_errors(batch):
    pred, target = batch
    with pytest.raises(ShapeError, match="pred, target: expected equal shapes"):
        relative_errors(pred, target[:, :3])
    with pytest.raises(OptionError, match="channel_slice_list"):
        relative_errors(pred, target, [0, 2, 2, 4])
    with pytest.raises(OptionError, match="channel_slice_list"):
        channel_groups([1, 4], 4)
    with pytest.raises(OptionError, match="p: expected one of 1, 2; got 3"):
        relative_errors(pred, target, p=3)
    with pytest.raises(OptionError, match="reduction: expected one of 'mean', 'pooled'; got 'sum'"):
        relative_l1_loss(pred, target, reduction="sum")


def test_warmup_cosine_closed_form():
    total, warmup = 110, 10
    assert warmup_cosine(0, total_steps=total, warmup_steps=warmup) == 0.0
    assert warmup_cosine(5, total_steps=total, warmup_steps=warmup) == 0.5
    assert warmup_cosine(10, total_steps=total, warmup_steps=warmup) == 1.0
    assert warmup_cosine(60, total_steps=total, warmup_steps=warmup) == pytest.approx(0.5)
    assert warmup_cosine(35, total_steps=total, warmup_steps=warmup, min_ratio=0.2) == (
        pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi / 4)))
    )
    assert warmup_cosine(500, total_steps=total, warmup_steps=warmup, min_ratio=0.1) == (
        pytest.approx(0.1)
    )
    with pytest.raises(OptionError, match="warmup_steps: expected an integer < total_steps = 10"):
        warmup_cosine(0, total_steps=10, warmup_steps=10)
    with pytest.raises(OptionError, match="warmup_steps: expected an integer >= 0; got 1.5"):
        warmup_cosine(0, total_steps=10, warmup_steps=1.5)
    with pytest.raises(OptionError, match="total_steps: expected an integer >= 1; got 0"):
        warmup_cosine(0, total_steps=0)
    with pytest.raises(OptionError, match="min_ratio: expected a finite real number >= 0.0 and"):
        warmup_cosine(0, total_steps=10, min_ratio=2.0)


def test_the_old_module_path_warns_and_gives_the_same_functions():
    import importlib
    import sys

    import sciml_seq.losses as core

    sys.modules.pop("sciml_seq.train.losses", None)
    with pytest.warns(DeprecationWarning, match="sciml_seq.train.losses moved to sciml_seq.losses"):
        old = importlib.import_module("sciml_seq.train.losses")
    assert old.relative_l1_loss is core.relative_l1_loss
    assert old.relative_errors is core.relative_errors

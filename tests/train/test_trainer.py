"""Trainer: exact resume, NaN guard, clipping, schedule, precision, data order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml_seq.errors import NonFiniteError, OptionError
from sciml_seq.train.checkpoint import load_checkpoint, rng_state, save_checkpoint
from sciml_seq.train.pair_dataset import PairDataset
from sciml_seq.train.schedule import warmup_cosine
from sciml_seq.train.trainer import TrainConfig, Trainer

from .conftest import TinyOperator


def _trainer(trajectories, tmp_path=None, dropout=0.0, seed=0, **overrides):
    torch.manual_seed(seed)
    settings = {"steps": 8, "batch_size": 6, "lr": 3e-3, "warmup_steps": 2, "clip_norm": 1.0}
    config = TrainConfig(**{**settings, **overrides})
    model = TinyOperator(dropout=dropout)
    return Trainer(model, PairDataset(*trajectories), config, checkpoint_dir=tmp_path)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_exact_resume(trajectories, tmp_path, precision):
    straight = _trainer(trajectories, dropout=0.3, precision=precision)
    straight.fit()
    first = _trainer(trajectories, tmp_path, dropout=0.3, checkpoint_every=4, precision=precision)
    for _ in range(4):
        first.train_step()
    first.save(tmp_path / "half")
    torch.manual_seed(123)  # a different global random state: the checkpoint must restore it
    resumed = _trainer(trajectories, dropout=0.3, seed=99, precision=precision)
    resumed.load(tmp_path / "half")
    if precision == "fp16":
        assert resumed.scaler.state_dict() == first.scaler.state_dict()
    assert resumed.step == 4
    resumed.fit()
    for (name, a), b in zip(
        straight.module.state_dict().items(), resumed.module.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed.scheduler.get_last_lr() == straight.scheduler.get_last_lr()


def test_checkpoint_holds_each_rank_random_state(tmp_path):
    """Rank r gets back rank r's state; a rank the checkpoint lacks keeps its own, warned."""
    model = TinyOperator()
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append(rng_state())
    save_checkpoint(tmp_path, model=model, step=0, rng_states=states)
    for rank, seed in ((0, 1), (1, 2)):
        torch.manual_seed(seed)
        expected = torch.rand(3)
        torch.manual_seed(99)
        load_checkpoint(tmp_path, model=model, rank=rank)
        assert torch.equal(torch.rand(3), expected), rank
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    with pytest.warns(UserWarning, match="no random state for rank 2; it keeps its own"):
        load_checkpoint(tmp_path, model=model, rank=2)
    assert torch.equal(torch.rand(3), expected)


def test_resume_checks_names(trajectories, tmp_path):
    trainer = _trainer(trajectories)
    trainer.save(tmp_path / "ck")
    other = Trainer(TinyOperator(width=8, c_out=1), PairDataset(*trajectories), trainer.config)
    with pytest.raises(OptionError, match=r"tensor 'out.bias' has shape \(2,\); the model expects"):
        other.load(tmp_path / "ck")


def test_fit_writes_periodic_and_final_checkpoints(trajectories, tmp_path):
    trainer = _trainer(trajectories, tmp_path, checkpoint_every=3)
    losses = trainer.fit()
    assert len(losses) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final", "step_3", "step_6"]
    assert {p.name for p in (tmp_path / "final").iterdir()} == {
        "model.safetensors",
        "training.safetensors",
    }
    with pytest.raises(OptionError, match="checkpoint_dir"):
        _trainer(trajectories).save(None)


def test_nan_guard_names_the_loss(trajectories):
    u, t = trajectories
    u = u.copy()
    u[:] = np.nan
    trainer = _trainer((u, t))
    with pytest.raises(NonFiniteError, match="step 0: the loss is nan"):
        trainer.train_step()


def test_nan_guard_names_the_parameter(trajectories):
    trainer = _trainer(trajectories)
    trainer.train_step()
    trainer.module.out.bias.register_hook(lambda g: g * math.nan)
    with pytest.raises(
        NonFiniteError, match=r"step 1: the gradient of parameter 'out.bias' \(2,\)"
    ):
        trainer.train_step()


def test_fp16_skips_a_step_with_inf_gradients_instead_of_raising(trajectories):
    trainer = _trainer(trajectories, precision="fp16")
    trainer.train_step()
    before = {k: v.clone() for k, v in trainer.module.state_dict().items()}
    scale = trainer.scaler.get_scale()
    handle = trainer.module.out.bias.register_hook(lambda g: g * math.inf)
    trainer.train_step()  # the scaler sees inf, skips the update and halves the scale
    handle.remove()
    assert trainer.scaler.get_scale() == scale / 2 and trainer.step == 2
    for name, value in trainer.module.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_gradient_clipping(trajectories):
    trainer = _trainer(trajectories, clip_norm=1e-3)
    x, lead, y = trainer.dataset[trainer.batch_indices(0)]
    loss = trainer.loss(x, lead, y)
    grads = torch.autograd.grad(loss, list(trainer.module.parameters()))
    raw = torch.sqrt(sum((g**2).sum() for g in grads))
    assert raw > 1e-3
    trainer.train_step()
    clipped = [p.grad for p in trainer.module.parameters()]
    norm = torch.sqrt(sum((g**2).sum() for g in clipped))
    assert norm.item() == pytest.approx(1e-3, rel=1e-4)
    for g, c in zip(grads, clipped, strict=True):  # same direction
        torch.testing.assert_close(c, g * (1e-3 / (raw + 1e-6)), rtol=1e-5, atol=1e-12)


def test_schedule_and_hinted_groups(trajectories):
    class Hinted(TinyOperator):
        optim_hints = {"out.bias": {"lr": 1e-4, "weight_decay": 0.0}}

    torch.manual_seed(0)
    config = TrainConfig(steps=10, batch_size=6, lr=1e-2, warmup_steps=4, min_lr_ratio=0.1)
    trainer = Trainer(Hinted(), PairDataset(*trajectories), config)
    assert len(trainer.optimizer.param_groups) == 2
    for step in range(6):
        factor = warmup_cosine(step, total_steps=10, warmup_steps=4, min_ratio=0.1)
        lrs = sorted(g["lr"] for g in trainer.optimizer.param_groups)
        assert lrs == pytest.approx([1e-4 * factor, 1e-2 * factor])
        trainer.train_step()


def test_data_order_covers_each_pair_once_per_epoch(trajectories):
    trainer = _trainer(trajectories)
    n, size = len(trainer.dataset), trainer.config.batch_size
    epoch0 = torch.cat([trainer.batch_indices(s) for s in range(trainer.steps_per_epoch)])
    assert len(set(epoch0.tolist())) == len(epoch0) == n - n % size
    epoch1 = trainer.batch_indices(trainer.steps_per_epoch)
    assert not torch.equal(epoch1, epoch0[:size])  # reshuffled


def test_training_reduces_the_loss_fp32_bf16_fp16(trajectories):
    for precision in ("fp32", "bf16", "fp16"):
        trainer = _trainer(trajectories, steps=40, precision=precision, lr=1e-2)
        losses = trainer.fit()
        assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), precision


def test_config_and_device_errors(trajectories):
    with pytest.raises(OptionError, match="precision: expected one of 'fp32', 'bf16', 'fp16'"):
        TrainConfig(steps=1, precision="fp8")
    with pytest.raises(OptionError, match="steps: expected an integer >= 1; got 0"):
        TrainConfig(steps=0)
    with pytest.raises(OptionError, match="batch_size: expected an integer >= 1; got True"):
        TrainConfig(steps=1, batch_size=True)
    with pytest.raises(OptionError, match="clip_norm: expected a finite real number > 0.0"):
        TrainConfig(steps=1, clip_norm=0.0)
    with pytest.raises(OptionError, match="lr: expected a finite real number > 0.0; got nan"):
        TrainConfig(steps=1, lr=math.nan)
    with pytest.raises(OptionError, match="loss_reduction: expected one of 'mean', 'pooled'"):
        TrainConfig(steps=1, loss_reduction="sum")
    with pytest.raises(OptionError, match="warmup_steps: expected an integer < total_steps = 3"):
        TrainConfig(steps=3, warmup_steps=3)
    with pytest.raises(OptionError, match="batch_size: expected at most the number of pairs"):
        _trainer(trajectories, batch_size=10_000)


def test_max_seconds_stops_early(trajectories):
    trainer = _trainer(trajectories)
    assert trainer.fit(max_seconds=1e-9) == [] and trainer.step == 0
    for bad in (0.0, -1.0):
        with pytest.raises(OptionError, match="max_seconds: expected a finite real number > 0.0"):
            trainer.fit(max_seconds=bad)
    assert len(trainer.fit(max_seconds=1e6)) == 8 and trainer.step == 8


def test_compiled_training_repeats_the_eager_run_and_saves_plain_names(trajectories, tmp_path):
    """``compile="default"`` on the CPU (inductor's C++ backend): the same losses and
    weights as eager to float32 rounding, and checkpoints under the module's own names."""
    eager = _trainer(trajectories, steps=4)
    compiled = _trainer(trajectories, tmp_path, steps=4, compile="default")
    assert compiled.model is not compiled.module  # the compiled wrapper
    np.testing.assert_allclose(compiled.fit(), eager.fit(), rtol=1e-5)
    for (name, a), (same, b) in zip(
        compiled.module.state_dict().items(), eager.module.state_dict().items(), strict=True
    ):
        assert name == same
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    compiled.save(tmp_path / "final")
    resumed = _trainer(trajectories, steps=4)
    resumed.load(tmp_path / "final")
    assert resumed.step == 4
    with pytest.raises(OptionError, match="compile: expected one of 'default', 'reduce-over"):
        TrainConfig(steps=1, compile="fast")

"""The training core: the Trainer with a loss function and batches, and the adapters over it
(sequence fitting, the comparison harness) give the numbers of plain hand-written loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sciml_seq.data.long_range import SequenceTask
from sciml_seq.errors import NonFiniteError, OptionError
from sciml_seq.train.schedule import warmup_cosine
from sciml_seq.train.sequence import fit, task_loss
from sciml_seq.train.trainer import TrainConfig, Trainer


class Pool(nn.Module):
    """``(batch, length, channels) -> (batch, n_out)``: a linear map of the mean over time."""

    def __init__(self, channels: int = 2, n_out: int = 3) -> None:
        super().__init__()
        self.mix = nn.Linear(channels, 8)
        self.out = nn.Linear(8, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.mix(x)).mean(1))


def _task(n: int = 20) -> SequenceTask:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n + 6, 5, 2)).astype(np.float32)
    y = (x[:, :, 0].mean(1) > 0).astype(np.int64) + (x[:, 0, 1] > 1)
    return SequenceTask("toy", "classify", x[:n], y[:n], x[n:], y[n:], 3)


def _same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_sequence_fit_is_the_plain_adamw_loop():
    """fit (an adapter over the Trainer) against the loop it replaced: AdamW, warm-up over 5 %
    of the steps + cosine, clipping at 1, numpy permutations of ``seed`` epoch after epoch."""
    task = _task()
    torch.manual_seed(0)
    model = Pool()
    reference = Pool()
    reference.load_state_dict(model.state_dict())
    result = fit(model, task, epochs=3, batch_size=8, lr=1e-2, seed=4, log=None)
    assert result.steps == 9

    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-2, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, total_steps=9, warmup_steps=0)
    )
    rng = np.random.default_rng(4)
    x, y = torch.as_tensor(task.x_train), torch.as_tensor(task.y_train)
    losses = []
    for _ in range(3):
        order = torch.as_tensor(rng.permutation(20))
        for i in range(3):
            idx = order[i * 8 : (i + 1) * 8]
            loss = task_loss("classify", reference(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
    _same_weights(model, reference)
    assert result.train_loss[-1] == pytest.approx(np.mean(losses[-3:]), rel=1e-12)


def _regression(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x, w = torch.randn(12, 3, generator=g), torch.randn(3, 1, generator=g)
    return x, x @ w


def _mse(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def test_a_loss_function_and_step_batches_resume_exactly(tmp_path):
    """Any model and loss: batches as a function of the step, dropout, a checkpoint halfway;
    the resumed run ends with the uninterrupted run's weights."""
    x, y = _regression()

    def batches(step: int):
        idx = torch.randperm(12, generator=torch.Generator().manual_seed(step))[:4]
        return x[idx], y[idx]

    def trainer(seed: int) -> Trainer:
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.Tanh(), nn.Linear(8, 1))
        config = TrainConfig(steps=6, lr=1e-2, warmup_steps=1)
        return Trainer(model, None, config, loss_fn=_mse, batches=batches)

    straight = trainer(0)
    losses = [straight.train_step() for _ in range(6)]
    assert losses[-1] < losses[0]
    first = trainer(0)
    for _ in range(3):
        first.train_step()
    first.save(tmp_path / "half")
    resumed = trainer(5)
    resumed.load(tmp_path / "half")
    assert resumed.fit() == pytest.approx(losses[3:], rel=0, abs=0)
    _same_weights(straight.module, resumed.module)


def test_iterable_batches_aux_outputs_and_errors():
    x, y = _regression()
    model = nn.Linear(3, 1)

    def loss_fn(net, batch):
        loss = _mse(net, batch)
        return loss, {"task": loss.detach()}

    config = TrainConfig(steps=3, clip_norm=None)
    trainer = Trainer(model, None, config, loss_fn=loss_fn, batches=[(x, y)] * 2)
    for _ in range(2):
        value = trainer.train_step()
        assert float(trainer.last_aux["task"]) == value  # the aux of this step's loss
    with pytest.raises(OptionError, match="batches: expected a batch for step 2; the iterable"):
        trainer.train_step()
    with pytest.raises(OptionError, match="dataset: expected a PairDataset, or loss_fn and"):
        Trainer(model, None, config, loss_fn=loss_fn)
    bad = (x, y * float("nan"))
    with pytest.raises(NonFiniteError, match="step 0: the loss is nan"):
        Trainer(model, None, config, loss_fn=_mse, batches=[bad]).train_step()
    off = TrainConfig(steps=3, clip_norm=None, nan_guard=False)
    assert np.isnan(Trainer(model, None, off, loss_fn=_mse, batches=[bad]).train_step())


def test_harness_cell_is_the_plain_adam_loop():
    """compare's torch runner steps through the Trainer; its losses are those of the plain
    Adam loop (constant rate, no clipping) on the same weights and batches."""
    from sciml_seq.compare import Budget, torch_runner
    from sciml_seq.compare.measure import Batches
    from sciml_seq.compare.schemes import Cell, Scheme

    from ..compare.test_grid import SIZES, tiny_task

    task = tiny_task()
    cell = Cell(task.name, Scheme.parse("tied-3"), "-", "none", 0)
    record = torch_runner.run_cell(task, cell, SIZES, Budget(steps=4))
    model = torch_runner.build_model(task, cell, SIZES)
    optimizer = torch.optim.Adam(model.parameters(), lr=SIZES.learning_rate)
    batches = Batches(task.train.x.shape[0], SIZES.batch_size, cell.seed)
    x, y = torch.as_tensor(task.train.x), torch.as_tensor(task.train.y)
    losses = []
    for step in range(4):
        idx = torch.as_tensor(batches.next())
        optimizer.zero_grad()
        loss = torch_runner.task_loss(task, model(x[idx]), y[idx], None)
        loss.backward()
        optimizer.step()
        losses.append((step, loss.item()))
    assert [tuple(p) for p in record["losses"]] == losses


def test_fit_forecaster_is_the_plain_one_cycle_loop():
    """fit_forecaster (an adapter over the Trainer, moved out of torch/models) against the loop
    it replaced: AdamW, one-cycle rate, clipping, numpy draws of ``seed``."""
    from sciml_seq.data import make_irregular_task
    from sciml_seq.torch.models import Forecaster
    from sciml_seq.train.forecasting import fit_forecaster, masked_mse, predict, series_tensors

    task = make_irregular_task(16, n_context=6, n_forecast=2, seed=0)
    torch.manual_seed(0)
    options = dict(depth="tied", n_layers=1, encoding="rotary", encoding_options=dict(base=20.0))
    model = Forecaster(1, 8, 2, time_scale=1 / task.dt, **options)
    reference = Forecaster(1, 8, 2, time_scale=1 / task.dt, **options)
    reference.load_state_dict(model.state_dict())
    log = fit_forecaster(model, task, steps=4, batch_size=4, lr=1e-2, seed=3)

    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-2, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=4)
    rng = np.random.default_rng(3)
    losses = []
    for _ in range(4):
        data = series_tensors(task, rng.choice(16, 4, replace=False))
        loss = masked_mse(predict(reference, data), data["target"], data["query_mask"])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    assert log.loss == losses
    _same_weights(model, reference)


def test_the_old_forecaster_path_warns():
    import sciml_seq.torch.models as models
    import sciml_seq.torch.models.fit as old
    from sciml_seq.train import forecasting

    for module in (models, old):
        with pytest.warns(DeprecationWarning, match="moved to sciml_seq.train.forecasting"):
            assert module.fit_forecaster is forecasting.fit_forecaster
    with pytest.raises(AttributeError, match="no_such_name"):
        old.no_such_name  # noqa: B018


def test_the_schedule_fits_a_time_budget():
    """A budget of 4 s (a fake clock: 1 s per step) on a 1000-step schedule: the rate follows
    the share of time spent (250, 500, 750 steps' worth) and the run stops after 4 steps."""
    x, y = _regression()
    config = TrainConfig(steps=1000, lr=1e-2, warmup_steps=0, clip_norm=None)
    rates = []

    def trainer() -> Trainer:
        return Trainer(nn.Linear(3, 1), None, config, loss_fn=_mse, batches=lambda s: (x, y))

    timed = trainer()
    timed.clock = lambda: float(timed.step)
    losses = timed.fit(max_seconds=4.0, callback=lambda s, loss: rates.append(timed.lr()))
    assert len(losses) == 4 and timed.step == 4
    expected = [1e-2 * warmup_cosine(p, total_steps=1000) for p in (1, 250, 500, 750)]
    assert rates == pytest.approx(expected, rel=1e-12)
    plain = trainer()
    plain.clock = lambda: float(plain.step)
    plain.fit(max_seconds=4.0, schedule_fits_time=False)
    assert plain.lr() == pytest.approx(1e-2 * warmup_cosine(4, total_steps=1000), rel=1e-12)


def test_cuda_graph_compile_modes_fall_back_on_the_cpu_and_say_so():
    x, y = _regression()
    for mode in ("reduce-overhead", "max-autotune"):
        config = TrainConfig(steps=2, compile=mode)
        with pytest.warns(UserWarning, match=f"compile='{mode}' replays CUDA graphs, which need"):
            trainer = Trainer(nn.Linear(3, 1), None, config, loss_fn=_mse, batches=[(x, y)])
        assert trainer.compile_mode == "default"
    config = TrainConfig(steps=2, compile="max-autotune-no-cudagraphs")
    assert Trainer(nn.Linear(3, 1), None, config, loss_fn=_mse, batches=[]).compile_mode == (
        "max-autotune-no-cudagraphs"
    )

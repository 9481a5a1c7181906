"""Train and measure one cell of the comparison grid in PyTorch.

:func:`build_model` puts a task's head around a depth scheme;
:func:`run_cell` trains it for the budget and measures it
(:class:`~sciml_seq.compare.budget.Budget`), each step the training core's
(:meth:`sciml_seq.train.trainer.Trainer.train_step`).  Every cell of a seed starts from the
same weights (encoder, field and decoder are drawn first, in that order, from
``torch.manual_seed(seed)``; the untied and reversible stacks copy the field)
and sees the same batches in the same order.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .budget import Budget
from .measure import (
    Batches,
    Progress,
    TrainingLog,
    adaptive_block_options,
    evaluate_splits,
    median_seconds,
)
from .schemes import ACT_PONDER_COST, Cell, Regularization, Scheme
from .tasks import Task, TaskSizes


class SequenceEmbedding(nn.Module):
    """``(batch, length, channels) -> (batch, length, width)``: a linear map plus a learned
    position embedding (initialised ``N(0, 0.02^2)``, as GPT-2's)."""

    def __init__(self, channels: int, length: int, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels, width)
        self.position = nn.Parameter(0.02 * torch.randn(length, width))

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x) + self.position


class DepthModel(nn.Module):
    """``decoder(pool(block(encoder(x))))``; ``pool`` averages the positions of a
    sequence state for a classification task."""

    def __init__(self, encoder: nn.Module, block: nn.Module, decoder: nn.Module, pool: bool):
        super().__init__()
        self.encoder, self.block, self.decoder, self.pool = encoder, block, decoder, pool

    def forward(self, x: Tensor) -> Tensor:
        h = self.block(self.encoder(x))
        return self.decoder(h.mean(1) if self.pool else h)


def build_field(task: Task, sizes: TaskSizes) -> nn.Module:
    """A :class:`~sciml_seq.torch.TimeMLP` (vector states) or a
    :class:`~sciml_seq.torch.TransformerField` (sequence states) of the task's width."""
    from ..torch import TimeMLP, TransformerField

    if task.state == "sequence":
        return TransformerField(sizes.width, sizes.heads, sizes.hidden)
    return TimeMLP(sizes.width, sizes.hidden, depth=2, activation="tanh")


def build_block(scheme: Scheme, field: nn.Module, engine: str, regularizer: str) -> nn.Module:
    """The depth scheme on ``field`` (see :mod:`sciml_seq.compare.schemes`)."""
    from ..torch import ACTStack, ODEBlock, ResidualStack, ReversibleStack

    n = scheme.depth
    if scheme.kind == "untied":
        return ResidualStack([copy.deepcopy(field) for _ in range(n)])
    if scheme.kind == "tied":
        return ResidualStack(field, n)
    if scheme.kind in ("euler", "rk4"):
        return ODEBlock(field, method=scheme.kind, n_steps=n)
    if scheme.kind == "act":
        return ACTStack(field, n)
    if scheme.kind == "reversible":
        return ReversibleStack([copy.deepcopy(field) for _ in range(n)])
    return ODEBlock(field, **adaptive_block_options(scheme, engine, regularizer))


def build_model(task: Task, cell: Cell, sizes: TaskSizes) -> DepthModel:
    """The task's head around the cell's depth scheme, initialised from ``cell.seed``."""
    torch.manual_seed(cell.seed)
    x = task.train.x
    if task.state == "sequence":
        encoder: nn.Module = SequenceEmbedding(x.shape[2], x.shape[1], sizes.width)
    else:
        encoder = nn.Linear(x.shape[1], sizes.width)
    field = build_field(task, sizes)
    pool = task.state == "sequence" and task.target == "classification"
    decoder = nn.Linear(sizes.width, task.n_outputs)
    block = build_block(cell.scheme, field, cell.engine, cell.regularizer)
    return DepthModel(encoder, block, decoder, pool)


def task_loss(task: Task, pred: Tensor, y: Tensor, weight: Tensor | None) -> Tensor:
    """The task's training loss: masked MSE, cross-entropy, or the user's callable."""
    if callable(task.loss):
        return task.loss(pred, y, weight)
    if task.loss == "cross_entropy":
        return nn.functional.cross_entropy(pred, y)
    if weight is None:
        return nn.functional.mse_loss(pred, y)
    return ((pred - y) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)


class SavedBytes:
    """Bytes saved for the backward pass while active (each storage counted once):
    the activation memory of a training step, on any device."""

    def __init__(self, exclude: list[Tensor]) -> None:
        self.seen = {t.untyped_storage().data_ptr() for t in exclude}
        self.total = 0

    def pack(self, t: Tensor) -> Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in self.seen:
            self.seen.add(ptr)
            self.total += t.untyped_storage().nbytes()
        return t

    def __enter__(self) -> SavedBytes:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)


def _to(split_array: np.ndarray | None, device: torch.device) -> Tensor | None:
    return None if split_array is None else torch.as_tensor(split_array, device=device)


def run_cell(
    task: Task,
    cell: Cell,
    sizes: TaskSizes,
    budget: Budget,
    device: str = "cpu",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train the cell's model for ``budget`` and measure it; returns the record's numbers.

    Keys: ``test_metric``, ``val_metric``, ``parameters``, ``steps``,
    ``train_nfe_forward`` / ``train_nfe_backward`` (means over steps of the batch
    means), ``test_nfe_forward`` (per test sample) and its mean
    ``test_nfe_mean``, ``test_nfe_batch`` (evaluations per test batch; a batch
    runs to its slowest sample), ``seconds_per_step`` (median),
    ``seconds_per_prediction`` (median time of predicting one batch of
    ``sizes.batch_size`` test samples), ``activation_bytes`` (saved for the
    backward pass of the first step), ``peak_memory_bytes`` (CUDA only),
    ``losses`` (about 50 points of the training loss) and ``train_seconds``.
    """
    from ..train.trainer import TrainConfig, Trainer

    dev = torch.device(device)
    model = build_model(task, cell, sizes).to(dev)
    block = model.block
    x_train, y_train = _to(task.train.x, dev), _to(task.train.y, dev)
    w_train = _to(task.train.weight, dev)
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    regularization = Regularization.parse(cell.regularizer)  # once, not per step
    batches = Batches(x_train.shape[0], sizes.batch_size, cell.seed)
    log = TrainingLog(cell, progress)
    activation_bytes = 0

    def loss_fn(net: nn.Module, idx: Tensor) -> tuple[Tensor, Tensor]:
        """The objective (task loss + regularisers at the budget's fraction) and the task
        loss; the first step also counts the bytes saved for the backward pass."""
        nonlocal activation_bytes
        saved = SavedBytes(list(model.parameters())) if log.steps == 0 else None
        with saved or contextlib.nullcontext():
            pred = net(x_train[idx])
            loss = task_loss(task, pred, y_train[idx], None if w_train is None else w_train[idx])
            fraction = budget.fraction(log.steps, log.seconds)
            total = loss + _penalty(block, regularization, fraction)
        if saved is not None:
            activation_bytes = saved.total
        return total, loss

    # the training core's step: Adam at a constant rate, no clipping, and no NaN guard (a
    # diverging cell is a result to record, not an error); the budget decides the steps
    trainer = Trainer(
        model,
        None,
        TrainConfig(steps=1, lr=sizes.learning_rate, clip_norm=None, nan_guard=False),
        loss_fn=loss_fn,
        batches=(),
        optimizer=lambda groups: torch.optim.Adam(model.parameters(), lr=sizes.learning_rate),
        scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0),
        device=dev,
    )
    model.train()
    while not budget.done(log.steps, log.seconds):
        idx = torch.as_tensor(batches.next(), device=dev)
        start = time.perf_counter()
        trainer.train_step(idx)
        sync()
        elapsed = time.perf_counter() - start
        stats = block.last_stats
        loss = trainer.last_aux
        log.add(elapsed, loss.item(), stats.mean("nfe_forward"), stats.mean("nfe_backward"))
    record = evaluate(task, model, sizes, dev, sync)
    record.update(
        log.numbers(),
        parameters=sum(p.numel() for p in model.parameters()),
        activation_bytes=int(activation_bytes),
        peak_memory_bytes=int(torch.cuda.max_memory_allocated(dev)) if cuda else None,
    )
    return record


def _penalty(block: nn.Module, regularization: Regularization, fraction: float) -> Tensor | float:
    """The regularisers' weighted batch means (their weights at ``fraction`` of the
    budget, :meth:`Regularization.weights`) and ACT's ponder cost."""
    total: Tensor | float = 0.0
    for name, weight in regularization.weights(fraction).items():
        total = total + weight * block.last_regularization[name].mean()
    ponder = getattr(block, "last_ponder", None)
    if ponder is not None:
        total = total + ACT_PONDER_COST * ponder.mean()
    return total


@torch.no_grad()
def evaluate(
    task: Task, model: DepthModel, sizes: TaskSizes, dev: torch.device, sync: Callable
) -> dict[str, Any]:
    """Test and validation metrics, per-sample test NFE and the prediction time."""
    model.eval()

    def predict(x: np.ndarray) -> tuple[np.ndarray, Any]:
        pred = model(torch.as_tensor(x, device=dev))
        return pred.float().cpu().numpy(), model.block.last_stats

    out = evaluate_splits(task, sizes.batch_size, predict)
    xb = torch.as_tensor(task.test.x[: sizes.batch_size], device=dev)
    out["seconds_per_prediction"] = median_seconds(lambda: model(xb), sync)
    model.train()
    return out

"""Train and measure one cell of the comparison grid in PyTorch.

:func:`build_model` puts a task's head around a depth scheme;
:func:`run_cell` trains it for the budget and measures it
(:class:`~sciml_seq.compare.run.Budget`).  Every cell of a seed starts from the
same weights (encoder, field and decoder are drawn first, in that order, from
``torch.manual_seed(seed)``; the untied and reversible stacks copy the field)
and sees the same batches in the same order.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..regularization import regularizer_weight
from ..solver import SolveOptions
from .budget import Budget
from .schemes import ACT_PONDER_COST, STEER_FRACTION, Cell, Scheme, regularizations
from .tasks import Task, TaskSizes

Progress = Callable[[int, float], None]
"""``progress(step, loss)``, called after every training step."""


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
    tol = scheme.tolerance
    solver = SolveOptions(method=scheme.method, rtol=tol, atol=tol, engine=engine)
    return ODEBlock(
        field,
        solver=solver,
        regularizers=regularizations()[regularizer],
        steer=STEER_FRACTION if regularizer == "steer" else 0.0,
    )


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


def per_sample(value: Any, batch: int) -> np.ndarray:
    """A statistic that is a number or a ``(batch,)`` tensor, as ``(batch,)`` floats."""
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (batch,))


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
    dev = torch.device(device)
    model = build_model(task, cell, sizes).to(dev)
    block = model.block
    x_train, y_train = _to(task.train.x, dev), _to(task.train.y, dev)
    w_train = _to(task.train.weight, dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=sizes.learning_rate)
    generator = torch.Generator().manual_seed(cell.seed)
    names = regularizations()[cell.regularizer]
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    n = x_train.shape[0]
    order = torch.randperm(n, generator=generator)
    cursor, step, train_seconds = 0, 0, 0.0
    step_seconds: list[float] = []
    losses: list[tuple[int, float]] = []
    nfe_f: list[float] = []
    nfe_b: list[float] = []
    activation_bytes = 0
    model.train()
    while not budget.done(step, train_seconds):
        if cursor + sizes.batch_size > n:  # a new epoch: the same order for every cell
            order, cursor = torch.randperm(n, generator=generator), 0
        idx = order[cursor : cursor + sizes.batch_size].to(dev)
        cursor += sizes.batch_size
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        saved = SavedBytes(list(model.parameters())) if step == 0 else None
        with saved or contextlib.nullcontext():
            pred = model(x_train[idx])
            loss = task_loss(task, pred, y_train[idx], None if w_train is None else w_train[idx])
            total = loss + _penalty(block, names, budget.fraction(step, train_seconds))
        total.backward()
        optimizer.step()
        sync()
        elapsed = time.perf_counter() - start
        if saved is not None:
            activation_bytes = saved.total
        train_seconds += elapsed
        step_seconds.append(elapsed)
        stats = block.last_stats
        nfe_f.append(stats.mean("nfe_forward"))
        nfe_b.append(stats.mean("nfe_backward"))
        value = float(loss)
        if not np.isfinite(value):
            raise_nonfinite(cell, step, value)
        losses.append((step, value))
        step += 1
        if progress is not None:
            progress(step, value)
    record = evaluate(task, model, sizes, dev, sync)
    record.update(
        parameters=sum(p.numel() for p in model.parameters()),
        steps=step,
        train_seconds=train_seconds,
        seconds_per_step=statistics.median(step_seconds[2:] or step_seconds),
        train_nfe_forward=float(np.mean(nfe_f)),
        train_nfe_backward=float(np.mean(nfe_b)),
        activation_bytes=int(activation_bytes),
        peak_memory_bytes=int(torch.cuda.max_memory_allocated(dev)) if cuda else None,
        losses=thin(losses, 50),
    )
    return record


def _penalty(block: nn.Module, names: tuple[str, ...], fraction: float) -> Tensor | float:
    """The regularisers' weighted batch means (their schedules at ``fraction`` of the
    budget) and ACT's ponder cost."""
    total: Tensor | float = 0.0
    if names:
        for name, value in block.last_regularization.items():
            total = total + regularizer_weight(name, fraction) * value.mean()
    ponder = getattr(block, "last_ponder", None)
    if ponder is not None:
        total = total + ACT_PONDER_COST * ponder.mean()
    return total


def raise_nonfinite(cell: Cell, step: int, value: float) -> None:
    from ..errors import SolverError

    raise SolverError(
        f"{cell.task} / {cell.name} / seed {cell.seed}: the training loss became {value} at "
        f"step {step}; lower the learning rate or the tolerance"
    )


def thin(points: list[tuple[int, float]], count: int) -> list[tuple[int, float]]:
    """At most ``count`` evenly spaced points of a curve, the last one included."""
    if len(points) <= count:
        return points
    index = np.unique(np.linspace(0, len(points) - 1, count).round().astype(int))
    return [points[i] for i in index]


@torch.no_grad()
def evaluate(
    task: Task, model: DepthModel, sizes: TaskSizes, dev: torch.device, sync: Callable
) -> dict[str, Any]:
    """Test and validation metrics, per-sample test NFE and the prediction time."""
    model.eval()
    out: dict[str, Any] = {}
    for split_name in ("val", "test"):
        split = getattr(task, split_name)
        preds, nfe, nfe_batch = [], [], []
        for start in range(0, split.x.shape[0], sizes.batch_size):
            xb = torch.as_tensor(split.x[start : start + sizes.batch_size], device=dev)
            preds.append(model(xb).float().cpu().numpy())
            stats = model.block.last_stats
            nfe.append(per_sample(stats.nfe_forward, xb.shape[0]))
            nfe_batch.append(stats.batch_evaluations())
        out[f"{split_name}_metric"] = float(task.evaluate(np.concatenate(preds), split_name))
        if split_name == "test":
            per = np.concatenate(nfe)
            out["test_nfe_forward"] = [round(float(v), 3) for v in per]
            out["test_nfe_mean"] = float(per.mean())
            out["test_nfe_batch"] = float(np.mean(nfe_batch))
    xb = torch.as_tensor(task.test.x[: sizes.batch_size], device=dev)

    def predict() -> None:
        model(xb)

    times = []
    predict()
    for _ in range(5):
        sync()
        start = time.perf_counter()
        predict()
        sync()
        times.append(time.perf_counter() - start)
    out["seconds_per_prediction"] = statistics.median(times)
    model.train()
    return out

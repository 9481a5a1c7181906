"""Train and evaluate PyTorch sequence models on a :class:`~sciml_seq.data.long_range.SequenceTask`.

The loss and the metric follow the task's ``kind``:

* ``"classify"``: cross-entropy of ``out (batch, n_classes)``; metric accuracy;
* ``"regress"``: mean squared error of ``out (batch, 1)``; metric MSE;
* ``"seq2seq"``: cross-entropy of the last ``m`` steps of
  ``out (batch, length, n_classes)`` against ``y (batch, m)``; metric the
  per-symbol accuracy.

:func:`fit` is an adapter over the training core
(:class:`~sciml_seq.train.trainer.Trainer`, with its NaN guard): AdamW over the
parameter groups of
:func:`sciml_seq.train.param_groups.param_groups` (so the SSM layers' Δ, A, B
get their hinted learning rate and no weight decay), with a linear warm-up over
the first 5 % of the steps, cosine decay
(:func:`sciml_seq.train.schedule.warmup_cosine`) and gradient clipping.
``rate`` is passed to the model only when given (the SSM models take it; the
baselines do not).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_choice, check_int
from ..data.long_range import SequenceTask
from ..errors import ShapeError

__all__ = ["FitResult", "evaluate", "fit", "task_loss", "task_metric"]

KINDS: tuple[str, ...] = ("classify", "regress", "seq2seq")


def _check_kind(kind: object) -> str:
    return check_choice("kind", kind, KINDS)


def _select(kind: str, out: Tensor, y: Tensor) -> Tensor:
    """The model outputs that the targets ``y`` refer to (see the module docstring)."""
    if kind == "seq2seq":
        if out.ndim != 3 or out.shape[1] < y.shape[1]:
            raise ShapeError(
                f"out: expected (batch, length >= {y.shape[1]}, n_classes) for a seq2seq task "
                f"(build the model with pool='none'); got {tuple(out.shape)}"
            )
        return out[:, -y.shape[1] :]
    if out.ndim != 2 or (kind == "regress" and out.shape[1] != 1):
        want = "(batch, 1)" if kind == "regress" else "(batch, n_classes)"
        raise ShapeError(f"out: expected {want} for a {kind} task; got {tuple(out.shape)}")
    return out


def task_loss(kind: str, out: Tensor, y: Tensor) -> Tensor:
    """Training loss of the outputs ``out`` against the targets ``y`` (a scalar)."""
    out = _select(_check_kind(kind), out, y)
    if kind == "regress":
        return F.mse_loss(out[:, 0], y.to(out.dtype))
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def task_metric(kind: str, out: Tensor, y: Tensor) -> float:
    """Accuracy (``"classify"``, per symbol for ``"seq2seq"``) or MSE (``"regress"``)."""
    out = _select(_check_kind(kind), out, y)
    if kind == "regress":
        return float(F.mse_loss(out[:, 0], y.to(out.dtype)))
    return float((out.argmax(dim=-1) == y).float().mean())


def _call(model: nn.Module, x: Tensor, rate: float | None) -> Tensor:
    return model(x) if rate is None else model(x, rate=rate)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    kind: str,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    rate: float | None = None,
) -> float:
    """:func:`task_metric` over the whole set ``x (n, length, channels)``, ``y``, in eval mode.

    Batches are combined exactly (weighted by their size).
    """
    kind = _check_kind(kind)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[start : start + batch_size], device=device)
        yb = torch.as_tensor(y[start : start + batch_size], device=device)
        n = len(xb) * (yb.shape[1] if kind == "seq2seq" else 1)
        total += task_metric(kind, _call(model, xb, rate), yb) * n
        count += n
    model.train(was_training)
    return total / count


@dataclass
class FitResult:
    """What :func:`fit` did: per-epoch mean training loss and test metric, and time."""

    train_loss: list[float] = field(default_factory=list)
    test_metric: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def fit(
    model: nn.Module,
    task: SequenceTask,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.01,
    clip: float = 1.0,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rate: float | None = None,
    max_steps: int | None = None,
    log: Callable[[str], None] | None = print,
) -> FitResult:
    """Train ``model`` on ``task`` (AdamW over the hinted parameter groups, warm-up + cosine).

    Parameters
    ----------
    epochs, batch_size: passes over ``task.x_train`` (shuffled with ``seed``), batch size.
    lr, weight_decay: base AdamW settings (hinted parameters override them).
    clip: gradient-norm clipping (``0`` disables it).
    rate: passed as ``model(x, rate=rate)`` when given.
    max_steps: stop after this many optimizer steps (for smoke runs).
    log: receives one line per epoch (None: silent).

    Returns a :class:`FitResult`; the test metric is evaluated after every epoch.
    """
    from .trainer import TrainConfig, Trainer

    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps)
    kind = _check_kind(task.kind)
    n = len(task.x_train)
    per_epoch = math.ceil(n / batch_size)
    total = per_epoch * epochs if max_steps is None else min(max_steps, per_epoch * epochs)
    config = TrainConfig(
        steps=total,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        warmup_steps=total // 20,
        clip_norm=clip if clip > 0 else None,
        seed=seed,
    )

    def loss_fn(net: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        xb, yb = batch
        return task_loss(kind, _call(net, xb, rate), yb)

    # batches are handed to train_step one by one (the epoch's permutation below)
    trainer = Trainer(model, None, config, loss_fn=loss_fn, batches=(), device=device)
    rng = np.random.default_rng(seed)
    x_all = torch.as_tensor(task.x_train)
    y_all = torch.as_tensor(task.y_train)
    result = FitResult()
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.as_tensor(rng.permutation(n))
        losses = []
        for i in range(per_epoch):
            if result.steps >= total:
                break
            idx = order[i * batch_size : (i + 1) * batch_size]
            losses.append(trainer.train_step((x_all[idx], y_all[idx])))
            result.steps += 1
        metric = evaluate(
            model, task.x_test, task.y_test, kind, device=device, rate=rate, batch_size=256
        )
        result.train_loss.append(float(np.mean(losses)) if losses else float("nan"))
        result.test_metric.append(metric)
        if log is not None:
            name = "test MSE" if kind == "regress" else "test acc"
            log(
                f"epoch {epoch + 1}/{epochs}  loss {result.train_loss[-1]:.4f}  "
                f"{name} {metric:.4f}  ({time.perf_counter() - start:.0f} s)"
            )
        if result.steps >= total:
            break
    result.seconds = time.perf_counter() - start
    return result

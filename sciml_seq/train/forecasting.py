"""Train and evaluate a :class:`Forecaster` on an :class:`~sciml_seq.data.IrregularSeries`.

:func:`fit_forecaster` is an adapter over the training core
(:class:`~sciml_seq.train.trainer.Trainer`): AdamW, one-cycle learning rate,
gradient clipping, masked mean-square error; shared by
``benchmarks/irregular_forecasting.py`` and ``notebooks/irregular_forecasting.py``.
(Moved here from ``sciml_seq.torch.models.fit``, which is a deprecated alias.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..data.irregular import IrregularSeries
from ..deprecation import renamed_argument
from ..errors import OptionError
from ..torch.models.forecasting import Forecaster


def series_tensors(
    task: IrregularSeries,
    index: np.ndarray,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Tensor]:
    """The series ``index`` of ``task`` as tensors, keyed by the :class:`Forecaster` arguments.

    ``values, times, query_times, padding_mask, query_mask`` and ``target``
    (the query values), each with a leading batch axis ``len(index)``.
    """

    def tensor(a: np.ndarray, dt: torch.dtype = dtype) -> Tensor:
        return torch.as_tensor(a[index], dtype=dt, device=device)

    return {
        "values": tensor(task.values),
        "times": tensor(task.times),
        "query_times": tensor(task.query_times),
        "padding_mask": tensor(task.mask, torch.bool),
        "query_mask": tensor(task.query_mask, torch.bool),
        "target": tensor(task.query_values),
    }


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean square error over valid entries; ``pred, target (batch, m, c)``, ``mask (batch, m)``."""
    err = ((pred - target) ** 2).sum(-1) * mask
    return err.sum() / (mask.sum() * target.shape[-1])


def predict(model: Forecaster, batch: dict[str, Tensor]) -> Tensor:
    """``model`` on a :func:`series_tensors` batch: ``(batch, m, channels)``."""
    return model(
        batch["values"],
        batch["times"],
        batch["query_times"],
        padding_mask=batch["padding_mask"],
        query_mask=batch["query_mask"],
    )


@dataclass
class FitLog:
    """Per-step training loss and forward evaluations of the encoder."""

    loss: list[float] = field(default_factory=list)
    nfe_forward: list[float] = field(default_factory=list)  # per step: the batch's mean


def fit_forecaster(
    model: Forecaster,
    task: IrregularSeries,
    *,
    steps: int,
    batch_size: int | None = None,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    clip: float = 1.0,
    seed: int = 0,
    batch: int | None = None,
) -> FitLog:
    """Train ``model`` in place on random batches of ``batch_size`` series of ``task``
    (drawn with ``seed``).  ``batch`` is the deprecated name of ``batch_size``."""
    batch_size = renamed_argument("fit_forecaster", "batch", batch, "batch_size", batch_size)
    if batch_size is None:
        raise OptionError("batch_size: expected a positive integer; got None")
    from .trainer import TrainConfig, Trainer

    device, dtype = model.query.device, model.query.dtype
    rng = np.random.default_rng(seed)

    def loss_fn(net: Forecaster, data: dict[str, Tensor]) -> Tensor:
        return masked_mse(predict(net, data), data["target"], data["query_mask"])

    config = TrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay, clip_norm=clip
    )
    trainer = Trainer(
        model,
        None,
        config,
        loss_fn=loss_fn,
        batches=(),  # handed to train_step one by one below
        optimizer=lambda groups: torch.optim.AdamW(
            model.parameters(), lr=lr, weight_decay=weight_decay
        ),
        scheduler=lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps),
        device=device,
    )
    log = FitLog()
    model.train()
    for _ in range(steps):
        index = rng.choice(task.values.shape[0], batch_size, replace=False)
        log.loss.append(trainer.train_step(series_tensors(task, index, device, dtype)))
        log.nfe_forward.append(model.encoder.last_stats.mean("nfe_forward"))
    return log


def evaluate_forecaster(model: Forecaster, task: IrregularSeries, *, batch: int = 256) -> float:
    """Mean square error over all valid query points of ``task`` (evaluation mode)."""
    device, dtype = model.query.device, model.query.dtype
    model.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for lo in range(0, task.values.shape[0], batch):
            index = np.arange(lo, min(lo + batch, task.values.shape[0]))
            data = series_tensors(task, index, device, dtype)
            err = ((predict(model, data) - data["target"]) ** 2).sum(-1) * data["query_mask"]
            total += float(err.sum())
            count += float(data["query_mask"].sum()) * data["target"].shape[-1]
    return total / count


__all__ = [
    "FitLog",
    "evaluate_forecaster",
    "fit_forecaster",
    "masked_mse",
    "predict",
    "series_tensors",
]

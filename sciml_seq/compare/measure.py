"""What every runner of the comparison grid shares (no framework at import).

The runners (:mod:`.torch_runner`, :mod:`.jax_runner`) differ in how they build,
train and call a model; the rest is here, written once, so that a torch
record and a JAX record mean the same thing:

- :func:`adaptive_block_options`: the ``ODEBlock`` options of an adaptive
  scheme (solve options, regularisers, STEER);

- :class:`Batches`: the training batches, in epochs of permutations drawn from
  ``torch.randperm`` with a generator seeded by the cell's seed (numpy's
  ``default_rng(seed).permutation`` where torch is not installed): every scheme
  of a seed sees the same batches in the same order, in both frameworks when
  torch is installed;
- :class:`TrainingLog`: per step, the loss, the wall time and the batch-mean
  NFE; the non-finite loss check; the training numbers of a record;
- :func:`evaluate_splits`: validation and test metrics and the per-sample test
  NFE, batch by batch; :func:`median_seconds`: the prediction time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import NonFiniteError
from ..solver import SolveOptions
from ..stats import SolveStats
from .schemes import Cell, Regularization, Scheme

Progress = Callable[[int, float], None]
"""``progress(step, loss)``, called after every training step."""

Predict = Callable[[np.ndarray], tuple[np.ndarray, SolveStats]]
"""``predict(x_batch) -> (predictions, stats)``: a model in evaluation mode on one batch of a
split, predictions as a float numpy array and the block's per-sample statistics."""


def adaptive_block_options(scheme: Scheme, engine: str, regularizer: str) -> dict[str, Any]:
    """The keyword arguments of ``ODEBlock(field, **options)`` for an adaptive scheme:
    ``solver`` (its method, ``rtol = atol = tolerance``, ``engine``), ``regularizers``
    and ``steer`` (:class:`~sciml_seq.compare.schemes.Regularization` of the spec)."""
    tol = scheme.tolerance
    spec = Regularization.parse(regularizer)
    return {
        "solver": SolveOptions(method=scheme.method, rtol=tol, atol=tol, engine=engine),
        "regularizers": spec.names,
        "steer": spec.steer,
    }


def permutations(n: int, seed: int) -> Iterator[np.ndarray]:
    """Endless permutations of ``range(n)``: ``torch.randperm(n, generator)`` with the
    generator seeded by ``seed``, one draw after another; numpy's
    ``default_rng(seed).permutation(n)`` where torch is not installed."""
    try:
        import torch
    except ImportError:  # a JAX-only installation: the same order within the framework
        rng = np.random.default_rng(seed)
        while True:
            yield rng.permutation(n)
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield torch.randperm(n, generator=generator).numpy()


class Batches:
    """Row indices of the training batches: consecutive slices of a permutation, a new
    permutation (:func:`permutations`) when fewer than ``batch_size`` rows are left."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.orders = permutations(n, seed)
        self.order, self.cursor = next(self.orders), 0

    def next(self) -> np.ndarray:
        """The next batch, ``(batch_size,)`` int64 indices (``(n,)`` if ``n < batch_size``)."""
        if self.cursor + self.batch_size > self.n:  # a new epoch: the same order for every cell
            self.order, self.cursor = next(self.orders), 0
        idx = self.order[self.cursor : self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return np.asarray(idx, dtype=np.int64)


def per_sample(value: Any, batch: int) -> np.ndarray:
    """A statistic that is a number or a ``(batch,)`` array (numpy, torch or JAX), as
    ``(batch,)`` float64."""
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu()
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (batch,))


def thin(points: list[tuple[int, float]], count: int) -> list[tuple[int, float]]:
    """At most ``count`` evenly spaced points of a curve, the last one included."""
    if len(points) <= count:
        return points
    index = np.unique(np.linspace(0, len(points) - 1, count).round().astype(int))
    return [points[i] for i in index]


def raise_nonfinite(cell: Cell, step: int, value: float) -> None:
    """A :class:`~sciml_seq.errors.NonFiniteError` naming the cell, the step and the loss."""
    raise NonFiniteError(
        f"{cell.task} / {cell.name} / seed {cell.seed}: the training loss became {value} at "
        f"step {step}; lower the learning rate or the tolerance"
    )


class TrainingLog:
    """The training steps of one cell: their losses, wall times and costs.

    ``steps`` and ``seconds`` (training wall time so far) are what a
    :class:`~sciml_seq.compare.budget.Budget` reads.
    """

    def __init__(self, cell: Cell, progress: Progress | None = None) -> None:
        self.cell, self.progress = cell, progress
        self.steps, self.seconds = 0, 0.0
        self.step_seconds: list[float] = []
        self.losses: list[tuple[int, float]] = []
        self.nfe_forward: list[float] = []
        self.nfe_backward: list[float] = []

    def add(self, seconds: float, loss: float, nfe_forward: float, nfe_backward: float) -> None:
        """Log one step; a non-finite ``loss`` raises :class:`~sciml_seq.errors.NonFiniteError`."""
        self.seconds += seconds
        self.step_seconds.append(seconds)
        self.nfe_forward.append(nfe_forward)
        self.nfe_backward.append(nfe_backward)
        if not np.isfinite(loss):
            raise_nonfinite(self.cell, self.steps, loss)
        self.losses.append((self.steps, loss))
        self.steps += 1
        if self.progress is not None:
            self.progress(self.steps, loss)

    def numbers(self) -> dict[str, Any]:
        """``steps``, ``train_seconds``, ``seconds_per_step`` (the median, the first two
        steps left out when there are more), ``train_nfe_forward`` / ``train_nfe_backward``
        (means over steps) and ``losses`` (about 50 points)."""
        return {
            "steps": self.steps,
            "train_seconds": self.seconds,
            "seconds_per_step": statistics.median(self.step_seconds[2:] or self.step_seconds),
            "train_nfe_forward": float(np.mean(self.nfe_forward)),
            "train_nfe_backward": float(np.mean(self.nfe_backward)),
            "losses": thin(self.losses, 50),
        }


def evaluate_splits(task: Any, batch_size: int, predict: Predict) -> dict[str, Any]:
    """Validation and test metrics, per-sample test NFE, batch by batch of ``batch_size``.

    Keys: ``val_metric``, ``test_metric``, ``test_nfe_forward`` (per test sample,
    rounded to 3 decimals), ``test_nfe_mean`` and ``test_nfe_batch`` (the mean over
    test batches of :meth:`~sciml_seq.stats.SolveStats.batch_evaluations`: a batch
    runs to its slowest sample).
    """
    out: dict[str, Any] = {}
    for split_name in ("val", "test"):
        x = getattr(task, split_name).x
        preds, nfe, nfe_batch = [], [], []
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size]
            pred, stats = predict(xb)
            preds.append(np.asarray(pred, dtype=np.float32))
            nfe.append(per_sample(stats.nfe_forward, xb.shape[0]))
            nfe_batch.append(stats.batch_evaluations())
        out[f"{split_name}_metric"] = float(task.evaluate(np.concatenate(preds), split_name))
        if split_name == "test":
            per = np.concatenate(nfe)
            out["test_nfe_forward"] = [round(float(v), 3) for v in per]
            out["test_nfe_mean"] = float(per.mean())
            out["test_nfe_batch"] = float(np.mean(nfe_batch))
    return out


def median_seconds(call: Callable[[], None], sync: Callable[[], None], repeats: int = 5) -> float:
    """The median wall time of ``call()`` over ``repeats`` runs after one untimed warm-up run;
    ``sync()`` waits for the device before and after each timed run."""
    call()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


__all__ = [
    "Batches",
    "adaptive_block_options",
    "Predict",
    "Progress",
    "TrainingLog",
    "evaluate_splits",
    "median_seconds",
    "per_sample",
    "permutations",
    "raise_nonfinite",
    "thin",
]

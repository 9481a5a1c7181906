"""The ETT long-horizon protocol with torch models: a model table, a training loop, the grid.

One grid cell is (data set, input length ``seq_len``, horizon ``pred_len``);
:func:`run_grid` fits every model of the cell (closed-form models once, trained
models once per seed) on the standard splits of
:func:`~sciml_seq.data.timeseries.ett_splits` (``features="M"``) and scores it
with :func:`~sciml_seq.data.timeseries.evaluate_forecaster` over every test
window.  ``benchmarks/ett_forecasting.py`` and ``sciml-seq forecast ett`` are
thin wrappers; :func:`sciml_seq.data.timeseries.protocol.grid_tables` turns the
records into the results tables.

Models (:data:`MODELS`; :func:`register_model` adds one, e.g. Mamba or S5 once
they exist): the closed-form ``"linear"`` and ``"nlinear-cf"``
(:func:`~sciml_seq.data.timeseries.fit_linear_forecaster`, plain and
``relative=True``), and the trained ``"nlinear"``, ``"dlinear"``,
``"patchtst"``, ``"itransformer"`` (:mod:`sciml_seq.torch.models.baselines`),
``"s4d"`` (4 S4D layers, ~20k parameters, channel-independent with instance
normalisation, ``pool="last"``) and ``"transformer-ode"`` (one transformer
block integrated by dopri5 over patch tokens at their real times, see
:class:`ForecasterSeries`).

Training (:func:`train_model`): Adam (or ``make_optimizer``), constant learning
rate, MSE on the scaled data, batches of ``batch_size`` random training windows
(all channels), until ``budget_seconds`` of training steps (validation not
counted) or ``max_epochs``; the validation MSE over ``val_windows`` evenly
spaced validation windows is measured ``evals`` times across the budget (and
once per epoch with ``max_epochs``), the best checkpoint is kept, and
``patience`` passes without improvement stop early.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_int, check_real
from ..data.timeseries import (
    ETTSplits,
    WindowSource,
    ett_file,
    ett_splits,
    evaluate_forecaster,
    fit_linear_forecaster,
    mse,
    read_ett,
)
from ..errors import OptionError
from .models import Forecaster, build_sized
from .models.baselines import DLinear, ITransformer, NLinear, PatchTST
from .models.sizing import count_parameters, fit_width
from .timeseries import ChannelIndependent

__all__ = [
    "CLOSED_FORM",
    "CONTINUOUS",
    "MODELS",
    "ForecasterSeries",
    "GridRecord",
    "ModelSpec",
    "TrainResult",
    "TrainSettings",
    "build",
    "register_model",
    "run_grid",
    "train_model",
]

#: The continuous-time models of the library (those the issue's goals are about);
#: ``register_model`` callers add theirs (e.g. ``"mamba"``, ``"s5"``) here too.
CONTINUOUS = {"s4d", "transformer-ode", "mamba", "s5"}
#: Closed-form models (numpy least squares): fitted once per cell, no seed.
CLOSED_FORM = {"linear": False, "nlinear-cf": True}  # name -> ``relative``


@dataclass(frozen=True)
class ModelSpec:
    """A trained model of the table: ``build(train_split) -> nn.Module`` and its learning rate.

    The module maps windows ``(batch, seq_len, C)`` to ``(batch, pred_len, C)``;
    ``describe`` is the architecture string of the results table.
    """

    build: Callable[[WindowSource], nn.Module]
    lr: float
    describe: str


def relative_hours(source: WindowSource) -> tuple[np.ndarray, np.ndarray]:
    """Times of a window's inputs ``(seq_len,)`` and targets ``(pred_len,)``, from its last input.

    Read from the first window: the same for every window of evenly spaced data.
    """
    t_x, t_y = source.window_times(0)
    return t_x - t_x[-1], t_y - t_x[-1]


class ForecasterSeries(nn.Module):
    """A :class:`~sciml_seq.torch.models.Forecaster` over patches of a univariate series.

    Maps series ``(n, seq_len)`` to forecasts ``(n, pred_len)``.  The series is cut
    into ``seq_len / patch`` observation tokens of ``patch``
    values (the forecaster's channels) placed at the time of their first row;
    ``pred_len / patch`` query tokens at the times of the forecast patches'
    first rows each answer ``patch`` values.  ``t_x`` ``(seq_len,)`` and ``t_y``
    ``(pred_len,)`` are the times of the rows (:func:`relative_hours`).
    """

    def __init__(self, forecaster: Forecaster, t_x: np.ndarray, t_y: np.ndarray) -> None:
        super().__init__()
        self.forecaster, self.patch = forecaster, forecaster.channels
        if len(t_x) % self.patch or len(t_y) % self.patch:
            raise OptionError(
                f"patch: expected a divisor of seq_len={len(t_x)} and pred_len={len(t_y)}; "
                f"got {self.patch}"
            )
        self.register_buffer("t_x", torch.tensor(t_x[:: self.patch], dtype=torch.float32))
        self.register_buffer("t_y", torch.tensor(t_y[:: self.patch], dtype=torch.float32))

    def forward(self, z: Tensor) -> Tensor:
        n = z.shape[0]
        times, query = self.t_x.expand(n, -1), self.t_y.expand(n, -1)
        out = self.forecaster(z.reshape(n, -1, self.patch), times, query)
        return out.reshape(n, -1)


def _s4d(source: WindowSource) -> nn.Module:
    ssm = build_sized(
        "s4d", 1, source.pred_len, 20000, n_layers=4, d_state=32, pool="last"
    )  # the sequence benchmarks' S4D stack, ~20k parameters
    return ChannelIndependent(nn.Sequential(nn.Unflatten(1, (source.seq_len, 1)), ssm))


def _transformer_ode(source: WindowSource, patch: int = 16, heads: int = 4) -> nn.Module:
    t_x, t_y = relative_hours(source)

    def forecaster(dim: int) -> Forecaster:
        return Forecaster(
            patch, dim, heads, position_mode="time", depth_mode="ode", mlp_hidden=2 * dim,
            encoding="rotary", method="dopri5", rtol=1e-2, atol=1e-2,
        )  # fmt: skip

    dim, _ = fit_width(forecaster, 20000, step=2 * heads)  # even RoPE head size
    return ChannelIndependent(ForecasterSeries(forecaster(dim), t_x, t_y))


MODELS: dict[str, ModelSpec] = {
    "nlinear": ModelSpec(lambda s: NLinear(s.seq_len, s.pred_len), 5e-3, "NLinear"),
    "dlinear": ModelSpec(
        lambda s: DLinear(s.seq_len, s.pred_len, 25), 5e-3, "DLinear, moving average 25"
    ),
    "patchtst": ModelSpec(
        lambda s: PatchTST(s.inputs.shape[1], s.seq_len, s.pred_len),
        1e-3,
        "PatchTST: patches 16 / stride 8, d=16, 4 heads, 3 layers, d_ff=128, RevIN",
    ),
    "itransformer": ModelSpec(
        lambda s: ITransformer(s.inputs.shape[1], s.seq_len, s.pred_len),
        5e-4,
        "iTransformer: d=128, 8 heads, 2 layers, d_ff=128, RevIN",
    ),
    "s4d": ModelSpec(_s4d, 4e-3, "4 x S4D, N=32, ~20k parameters, pool last, instance norm"),
    "transformer-ode": ModelSpec(
        _transformer_ode,
        1e-3,
        "1 block integrated by dopri5 (rtol=atol=1e-2), patches of 16, RoPE on hours, "
        "~20k parameters, instance norm",
    ),
}
"""Trained models by name (the closed-form ones are :data:`CLOSED_FORM`)."""


def register_model(name: str, spec: ModelSpec) -> None:
    """Add a trained model to :data:`MODELS` (e.g. ``"mamba"``, ``"s5"``); names are unique."""
    if name in MODELS or name in CLOSED_FORM:
        raise OptionError(f"name: expected a new model name; got {name!r}, which exists")
    MODELS[name] = spec


def model_names() -> tuple[str, ...]:
    """Every model name, closed-form first."""
    return (*CLOSED_FORM, *MODELS)


def build(name: str, source: WindowSource, seed: int = 0) -> nn.Module:
    """The trained model ``name`` for the windows of ``source``, initialised from ``seed``."""
    if name not in MODELS:
        raise OptionError(f"model: expected one of {', '.join(MODELS)}; got {name!r}")
    torch.manual_seed(seed)
    return MODELS[name].build(source)


@dataclass(frozen=True)
class TrainSettings:
    """How :func:`train_model` trains (see the module docstring)."""

    budget_seconds: float = 60.0
    max_epochs: int | None = None
    batch_size: int = 32
    evals: int = 6
    patience: int | None = None
    val_windows: int | None = 512
    eval_batch: int = 256
    lr: float | None = None  # None: the model's own (ModelSpec.lr)

    def __post_init__(self) -> None:
        check_real("budget_seconds", self.budget_seconds, gt=0.0)
        for name in ("batch_size", "evals", "eval_batch"):
            check_int(name, getattr(self, name))
        for name in ("max_epochs", "patience", "val_windows"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name))
        if self.lr is not None:
            check_real("lr", self.lr, gt=0.0)


@dataclass
class TrainResult:
    """What :func:`train_model` did: steps, epochs, training seconds, best validation MSE."""

    steps: int = 0
    epochs: float = 0.0
    seconds: float = 0.0
    best_val: float = math.nan
    best_step: int = 0
    note: str = ""


def numpy_forecaster(model: nn.Module, device: str | torch.device) -> Callable:
    """``x (batch, seq_len, C)`` float64 -> forecasts float64, float32 on ``device``, no grad."""

    def forecast(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            pred = model(torch.as_tensor(x, dtype=torch.float32, device=device))
        return pred.double().cpu().numpy()

    return forecast


def train_model(
    model: nn.Module,
    splits: ETTSplits,
    settings: TrainSettings,
    *,
    lr: float,
    seed: int = 0,
    device: str | torch.device = "cpu",
    make_optimizer: Callable[[nn.Module, float], torch.optim.Optimizer] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``splits.train``; it ends holding the best-validation weights."""
    model.to(device)
    optimizer = (
        torch.optim.Adam(model.parameters(), lr=lr)
        if make_optimizer is None
        else make_optimizer(model, lr)
    )
    train = splits.train
    inputs = torch.tensor(train.inputs, dtype=torch.float32, device=device)
    targets = inputs if train.targets is train.inputs else torch.tensor(
        train.targets, dtype=torch.float32, device=device
    )  # fmt: skip
    offsets_x = torch.arange(train.seq_len, device=device)
    offsets_y = train.seq_len + torch.arange(train.pred_len, device=device)
    val = splits.val
    n_val = len(val) if settings.val_windows is None else min(settings.val_windows, len(val))
    val_x, val_y = val.take(np.unique(np.linspace(0, len(val) - 1, n_val).round().astype(int)))
    generator = torch.Generator().manual_seed(seed)
    result, best_state, stale = TrainResult(), None, 0
    next_eval = settings.budget_seconds / settings.evals
    per_epoch = math.ceil(len(train) / settings.batch_size)

    def validate() -> bool:
        """Score the current weights; True when training should stop (patience)."""
        nonlocal best_state, stale
        model.eval()
        score = mse(numpy_forecaster(model, device)(val_x), val_y)
        model.train()
        if score < result.best_val or best_state is None and math.isfinite(score):
            result.best_val, result.best_step = score, result.steps
            best_state, stale = copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
        return settings.patience is not None and stale >= settings.patience

    model.train()
    done = False
    while not done:
        order = torch.randperm(len(train), generator=generator).to(device)
        for start in range(0, len(order), settings.batch_size):
            began = time.perf_counter()
            first = order[start : start + settings.batch_size, None]
            loss = nn.functional.mse_loss(
                model(inputs[first + offsets_x]), targets[first + offsets_y]
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            result.seconds += time.perf_counter() - began
            result.steps += 1
            result.epochs = result.steps / per_epoch
            if result.seconds >= settings.budget_seconds:
                done = True
                break
            if result.seconds >= next_eval:
                next_eval += settings.budget_seconds / settings.evals
                if validate():
                    done = True
                    break
        if done or (settings.max_epochs is not None and result.epochs >= settings.max_epochs):
            done = True
        elif settings.max_epochs is not None and validate():
            done = True
    validate()  # the final weights are a candidate too
    if best_state is None:
        result.note = "no finite validation MSE: last weights kept"
    else:
        model.load_state_dict(best_state)
    model.eval()
    return result


@dataclass
class GridRecord:
    """One fitted model in one cell: test MSE / MAE over every test window, step and channel."""

    dataset: str
    seq_len: int
    pred_len: int
    model: str
    seed: int | None  # None: closed form
    test_mse: float
    test_mae: float
    params: int
    train: TrainResult = field(default_factory=TrainResult)
    seconds: float = 0.0  # wall-clock seconds of the whole fit and evaluation


def run_grid(
    root: str | Path,
    *,
    datasets: Iterable[str],
    horizons: Iterable[int],
    inputs: Iterable[int],
    seeds: Iterable[int],
    models: Iterable[str],
    settings: TrainSettings,
    device: str | torch.device = "cpu",
    make_optimizer: Callable[[nn.Module, float], torch.optim.Optimizer] | None = None,
    on_record: Callable[[GridRecord], None] | None = None,
    limit_windows: tuple[int, int, int] | None = None,
) -> list[GridRecord]:
    """Every model of ``models`` in every cell; closed-form once, trained once per seed.

    ``root`` is the folder of ``ETTh1.csv`` / ``ETTh2.csv``.  ``limit_windows``
    ``(train, val, test)`` keeps only the first windows of each split (a smoke
    test, not the protocol).  ``on_record`` is called after each fit.
    """
    models, seeds = list(models), list(seeds)
    for name in models:
        if name not in CLOSED_FORM and name not in MODELS:
            raise OptionError(
                f"models: expected names from {', '.join(model_names())}; got {name!r}"
            )
    records = []
    for dataset in datasets:
        data = read_ett(ett_file(dataset, root))
        for seq_len in inputs:
            for pred_len in horizons:
                splits = ett_splits(data, seq_len, pred_len, features="M")
                if limit_windows is not None:
                    splits = first_windows(splits, limit_windows)
                for name in models:
                    for seed in [None] if name in CLOSED_FORM else seeds:
                        began = time.perf_counter()
                        record = fit_one(name, splits, seed, settings, device, make_optimizer)
                        record.dataset = dataset
                        record.seconds = time.perf_counter() - began
                        records.append(record)
                        if on_record is not None:
                            on_record(record)
    return records


def fit_one(
    name: str,
    splits: ETTSplits,
    seed: int | None,
    settings: TrainSettings,
    device: str | torch.device,
    make_optimizer: Callable[[nn.Module, float], torch.optim.Optimizer] | None,
) -> GridRecord:
    """Fit model ``name`` on ``splits`` and score it on the test split."""
    train = splits.train
    if name in CLOSED_FORM:
        model = fit_linear_forecaster(train, relative=CLOSED_FORM[name])
        scores = evaluate_forecaster(model, splits.test)
        # relative: the last input's weight row is 0 by construction, not a parameter
        params = (train.seq_len - CLOSED_FORM[name]) * train.pred_len
        result = None
    else:
        module = build(name, train, seed)
        lr = settings.lr if settings.lr is not None else MODELS[name].lr
        result = train_model(
            module, splits, settings, lr=lr, seed=seed, device=device, make_optimizer=make_optimizer
        )
        scores = evaluate_forecaster(
            numpy_forecaster(module, device), splits.test, batch_size=settings.eval_batch
        )
        params = count_parameters(module)
    return GridRecord(
        dataset="",
        seq_len=train.seq_len,
        pred_len=train.pred_len,
        model=name,
        seed=seed,
        test_mse=scores.mse,
        test_mae=scores.mae,
        params=params,
        train=result or TrainResult(),
    )


def first_windows(splits: ETTSplits, counts: tuple[int, int, int]) -> ETTSplits:
    """The first ``counts`` windows of train, val and test (features M/S: targets are inputs)."""
    parts = []
    for source, n in zip((splits.train, splits.val, splits.test), counts, strict=True):
        rows = min(n, len(source)) + source.seq_len + source.pred_len - 1
        x = source.inputs[:rows]
        parts.append(
            WindowSource(x, x, source.seq_len, source.pred_len, t=source.t[:rows], name=source.name)
        )
    return ETTSplits(*parts, scaler=splits.scaler, target_scaler=splits.target_scaler)

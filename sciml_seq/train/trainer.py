"""The PyTorch training core: one optimizer step for every training loop of sciml_seq.

:class:`Trainer` takes a model, a loss function ``loss_fn(model, batch) -> loss``
(or ``(loss, aux)``) and batches (``batches(step) -> batch``, or any iterable).
Sequence fitting (:func:`sciml_seq.train.sequence.fit`), forecasting
(:func:`sciml_seq.train.forecasting.fit_forecaster`), operator training
(:func:`sciml_seq.train.operator_run.train_operator`) and the comparison
harness (:mod:`sciml_seq.compare.torch_runner`) are adapters over it.

Its default use is time-dependent operators on all-to-all trajectory pairs
(:class:`~sciml_seq.train.pair_dataset.PairDataset` as ``dataset``): the model is
any ``model(x, time) -> y`` with ``x`` ``(batch, C_in, *grid)``, ``time``
``(batch,)`` (the lead time) and ``y`` ``(batch, C_out, *grid)``, the loss the
relative L1 (:func:`~sciml_seq.losses.relative_l1_loss`).

The step:

* AdamW over :func:`~sciml_seq.train.param_groups.param_groups` (layers' optimizer
  hints honoured), linear warm-up + cosine decay
  (:func:`~sciml_seq.train.schedule.warmup_cosine`), gradient-norm clipping
  (``optimizer=`` and ``scheduler=`` replace the first two);
* precision ``"fp32"``, ``"bf16"`` (autocast) or ``"fp16"`` (autocast +
  ``GradScaler``; meant for CUDA, also runs on the CPU); the loss is computed in
  float32;
* a NaN guard (``TrainConfig.nan_guard``): a non-finite loss or gradient raises
  :class:`~sciml_seq.errors.NonFiniteError` naming the step and the tensor (the
  loss, or the first parameter whose gradient is not finite).  Under fp16 a
  non-finite gradient is the scaler's business (the step is skipped);
* with a pair dataset, data order from the step alone: the batch at step ``s`` is slice
  ``s mod steps_per_epoch`` of the permutation ``randperm(N)`` seeded with
  ``seed + epoch``, so a resumed run sees the same batches;
* checkpoints (:mod:`sciml_seq.train.checkpoint`) with exact resume, also under
  DDP (every rank's random state is saved);
* data parallel (DDP) when a process group is initialised (e.g. under
  ``torchrun``, see :mod:`sciml_seq.train.distributed`): the global batch is
  split into equal contiguous parts, one per rank; with the default per-sample
  mean loss the averaged gradients equal those of one process on the whole batch;
* ``compile``: the model (inside DDP's wrapper when there is one) runs through
  ``torch.compile`` in that mode.  Eager scOT steps on a GPU are bound by the host
  launching small kernels (``docs/scot.md``); ``"reduce-overhead"`` replays the
  compiled forward and backward as CUDA graphs.  Checkpoints hold the plain
  module's names either way.  Compiled dropout draws its own random numbers, so
  a compiled run does not repeat an eager one with dropout.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ..checks import check_choice, check_int, check_real
from ..errors import NonFiniteError, OptionError
from ..losses import REDUCTIONS, relative_l1_loss
from . import distributed
from .checkpoint import (
    load_checkpoint,
    new_run_id,
    read_checkpoint_meta,
    rng_state,
    save_checkpoint,
)
from .pair_dataset import PairDataset
from .param_groups import param_groups
from .predict import PRECISIONS, autocast
from .schedule import warmup_cosine

__all__ = ["COMPILE_MODES", "CUDA_GRAPH_MODES", "TrainConfig", "Trainer"]

#: ``torch.compile`` modes that :class:`TrainConfig` accepts (``None``: eager).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: The modes that capture CUDA graphs: off a CUDA device the Trainer falls back to
#: ``"default"`` with a warning saying so (:attr:`Trainer.compile_mode` is the mode used).
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


@dataclass
class TrainConfig:
    """Settings of :class:`Trainer` (saved in checkpoints).

    ``batch_size`` is the global batch (divisible by the number of processes).
    ``clip_norm=None`` disables clipping.  ``checkpoint_every=None`` writes a
    checkpoint only at the end of :meth:`Trainer.fit` (when a directory is given).
    ``compile``: ``None`` (eager) or one of :data:`COMPILE_MODES`.
    ``nan_guard=False`` lets a non-finite loss or gradient through (the
    comparison harness records such runs instead of stopping).
    ``channel_slice_list`` and ``loss_reduction`` are the pair loss's settings.
    """

    steps: int
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    clip_norm: float | None = 1.0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channel_slice_list: Sequence[int] | None = None
    loss_reduction: Literal["mean", "pooled"] = "mean"
    seed: int = 0
    checkpoint_every: int | None = None
    compile: str | None = None
    nan_guard: bool = True

    def __post_init__(self) -> None:
        self.steps = check_int("steps", self.steps)
        self.batch_size = check_int("batch_size", self.batch_size)
        self.lr = check_real("lr", self.lr, gt=0.0)
        self.weight_decay = check_real("weight_decay", self.weight_decay, ge=0.0)
        self.precision = check_choice("precision", self.precision, PRECISIONS)
        if self.clip_norm is not None:
            self.clip_norm = check_real("clip_norm", self.clip_norm, gt=0.0)
        if self.checkpoint_every is not None:
            self.checkpoint_every = check_int("checkpoint_every", self.checkpoint_every)
        self.seed = check_int("seed", self.seed, low=0)
        self.loss_reduction = check_choice("loss_reduction", self.loss_reduction, REDUCTIONS)
        if self.compile is not None:
            self.compile = check_choice("compile", self.compile, COMPILE_MODES)
        warmup_cosine(
            0, total_steps=self.steps, warmup_steps=self.warmup_steps, min_ratio=self.min_lr_ratio
        )  # validates the schedule settings


LossFn = Callable[[torch.nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, Any]"]
"""``loss_fn(model, batch)``: the scalar loss, or ``(loss, aux)`` (``aux`` kept as
:attr:`Trainer.last_aux`, e.g. a task loss logged beside a regularised objective)."""


def _to_device(batch: Any, device: torch.device) -> Any:
    """Tensors of a (nested tuple / list / dict) batch moved to ``device``; the rest as is."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class Trainer:
    """Train ``model``: the step of the module docstring, the loop, checkpoints, DDP.

    Parameters
    ----------
    model:
        Moved to ``device`` and wrapped in ``DistributedDataParallel`` when a
        process group exists (and in ``torch.compile`` with ``config.compile``).
    dataset:
        A :class:`~sciml_seq.train.pair_dataset.PairDataset` (operator
        training: ``model(x, time) -> y``, relative L1, step-seeded batches), or
        ``None`` when ``loss_fn`` and ``batches`` are given.
    config:
        A :class:`TrainConfig`.
    loss_fn:
        ``loss_fn(model, batch) -> loss`` or ``(loss, aux)`` (runs under the
        precision's autocast; ``model`` is the wrapped model).  Default with a
        dataset: :meth:`pair_loss`.
    batches:
        ``batches(step) -> batch`` (a function of the step: an exact resume sees
        the same batches) or an iterable of batches; tensors in a tuple, list
        or dict batch are moved to ``device``.  Default with a dataset: this
        rank's share of the step's pairs.  Under DDP each rank's batches are its
        share.
    optimizer:
        ``optimizer(param_groups) -> torch.optim.Optimizer`` (default AdamW with
        ``config.betas``); the groups come from
        :func:`~sciml_seq.train.param_groups.param_groups`.
    scheduler:
        ``scheduler(optimizer) -> LR scheduler`` stepped after every step
        (default: warm-up + cosine over ``config.steps``).
    device:
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    checkpoint_dir:
        Where :meth:`fit` writes checkpoints (``None``: nowhere).
    model_spec:
        JSON-able description stored in checkpoints so that the model can be
        rebuilt (see :mod:`sciml_seq.train.operator_models`).
    extra:
        JSON-able entries stored in every checkpoint's ``extra`` (beside
        ``"train_config"``), e.g. the time scale of the data.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        dataset: PairDataset | None = None,
        config: TrainConfig | None = None,
        *,
        loss_fn: LossFn | None = None,
        batches: Callable[[int], Any] | Iterable[Any] | None = None,
        optimizer: Callable[[list[dict[str, Any]]], torch.optim.Optimizer] | None = None,
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        device: str | torch.device = "cpu",
        checkpoint_dir: str | Path | None = None,
        model_spec: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if config is None:
            raise OptionError("config: expected a TrainConfig; got None")
        self.config = config
        self.device = torch.device(device)
        self.world, self.rank = distributed.world_size(), distributed.rank()
        self.dataset = dataset
        if dataset is not None:
            if config.batch_size % self.world:
                raise OptionError(
                    f"batch_size: expected a multiple of the number of processes {self.world}; "
                    f"got {config.batch_size}"
                )
            self.steps_per_epoch = len(dataset) // config.batch_size
            if self.steps_per_epoch < 1:
                raise OptionError(
                    f"batch_size: expected at most the number of pairs {len(dataset)}; "
                    f"got {config.batch_size}"
                )
        elif loss_fn is None or batches is None:
            raise OptionError(
                "dataset: expected a PairDataset, or loss_fn and batches; got neither"
            )
        self.loss_fn: LossFn = loss_fn or self.pair_loss
        self._batch_fn = batches if callable(batches) else None
        self._batch_iter: Iterator[Any] | None = (
            iter(batches) if batches is not None and not callable(batches) else None
        )
        self.module = model.to(self.device)
        self.model: torch.nn.Module = self.module
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.module, device_ids=ids)
        self.compile_mode = config.compile
        if config.compile in CUDA_GRAPH_MODES and self.device.type != "cuda":
            warnings.warn(
                f"compile={config.compile!r} replays CUDA graphs, which need a CUDA device; on "
                f"{self.device.type} the model is compiled without them (mode 'default')",
                stacklevel=2,
            )
            self.compile_mode = "default"
        if self.compile_mode is not None:
            self.model = torch.compile(self.model, mode=self.compile_mode)
        self._time_position: float | None = None
        self.clock: Callable[[], float] = time.perf_counter
        """The wall clock of :meth:`fit`'s time budget (replaceable in tests)."""
        groups = param_groups(self.module, config.lr, config.weight_decay)
        if optimizer is None:
            self.optimizer = torch.optim.AdamW(groups, betas=config.betas)
        else:
            self.optimizer = optimizer(groups)

        def multiplier(step: int) -> float:
            # under a time budget (fit(max_seconds=...)) the position on the schedule is the
            # share of the budget spent, so that the decay ends when the time does
            position = step if self._time_position is None else self._time_position
            return warmup_cosine(
                position,
                total_steps=config.steps,
                warmup_steps=config.warmup_steps,
                min_ratio=config.min_lr_ratio,
            )

        if scheduler is None:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, multiplier)
        else:
            self.scheduler = scheduler(self.optimizer)
        fp16 = config.precision == "fp16"
        self.scaler = torch.amp.GradScaler(self.device.type) if fp16 else None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.model_spec = model_spec
        self.extra = dict(extra or {})
        self.step = 0
        self.run_id = new_run_id()  # kept by load(): a resumed run is the same run
        self.last_aux: Any = None

    # -- data -------------------------------------------------------------------------------
    def batch_indices(self, step: int) -> torch.Tensor:
        """Flat pair indices of this process's share of the global batch at ``step``."""
        if self.dataset is None:
            raise OptionError("batch_indices: needs a PairDataset (this trainer has batches)")
        epoch, position = divmod(step, self.steps_per_epoch)
        generator = torch.Generator().manual_seed(self.config.seed + epoch)
        order = torch.randperm(len(self.dataset), generator=generator)
        size = self.config.batch_size
        batch = order[position * size : (position + 1) * size]
        share = size // self.world
        return batch[self.rank * share : (self.rank + 1) * share]

    def batch(self, step: int) -> Any:
        """The batch of ``step`` (from ``batches``, or the dataset's pairs)."""
        if self._batch_fn is not None:
            return self._batch_fn(step)
        if self._batch_iter is not None:
            try:
                return next(self._batch_iter)
            except StopIteration:
                raise OptionError(
                    f"batches: expected a batch for step {step}; the iterable is exhausted"
                ) from None
        return self.dataset[self.batch_indices(step)]

    # -- one step ---------------------------------------------------------------------------
    def loss(self, x: torch.Tensor, lead: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss of one pair batch (float32 or the data's dtype)."""
        with autocast(self.device, self.config.precision):
            pred = self.model(x, lead)
        return relative_l1_loss(
            pred.to(y.dtype),
            y,
            self.config.channel_slice_list,
            reduction=self.config.loss_reduction,
        )

    def pair_loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        """The default ``loss_fn`` of a pair dataset: :meth:`loss` of ``(x, lead, y)``."""
        x, lead, y = batch
        pred = model(x, lead)
        return relative_l1_loss(
            pred.to(y.dtype),
            y,
            self.config.channel_slice_list,
            reduction=self.config.loss_reduction,
        )

    def _objective(self, batch: Any) -> torch.Tensor:
        with autocast(self.device, self.config.precision):
            out = self.loss_fn(self.model, batch)
        loss, self.last_aux = out if isinstance(out, tuple) else (out, None)
        return loss

    def train_step(self, batch: Any = None) -> float:
        """One optimizer step on ``batch`` (default: the batch of the current step).

        Returns the (local) loss as a float.
        """
        if batch is None:
            batch = self.batch(self.step)
        batch = _to_device(batch, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._objective(batch)
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        # checked after backward, so that every rank reaches the gradient all-reduce
        value = loss.item()
        guard = self.config.nan_guard
        if guard and not math.isfinite(value):
            raise NonFiniteError(f"step {self.step}: the loss is {value}")
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if guard or self.config.clip_norm is not None:
            params = [p for p in self.module.parameters() if p.grad is not None]
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
            if guard and not torch.isfinite(norm) and self.scaler is None:
                raise NonFiniteError(f"step {self.step}: {self._first_nonfinite_gradient()}")
            if self.config.clip_norm is not None:
                torch.nn.utils.clip_grads_with_norm_(params, self.config.clip_norm, norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return value

    def lr(self) -> float:
        """The learning rate of the first parameter group for the next step."""
        return float(self.optimizer.param_groups[0]["lr"])

    def _first_nonfinite_gradient(self) -> str:
        for name, param in self.module.named_parameters():
            if param.grad is not None and not torch.isfinite(param.grad).all():
                bad = param.grad[~torch.isfinite(param.grad)]
                return (
                    f"the gradient of parameter {name!r} {tuple(param.shape)} has "
                    f"{bad.numel()} non-finite entries (first: {bad.flatten()[0].item()})"
                )
        return "the gradient norm is not finite"  # pragma: no cover - overflow of the norm

    # -- loop, checkpoints -------------------------------------------------------------------
    def fit(
        self,
        *,
        progress: bool = False,
        callback: Callable[[int, float], None] | None = None,
        max_seconds: float | None = None,
        schedule_fits_time: bool = True,
    ) -> list[float]:
        """Train from the current step to ``config.steps``; returns the losses.

        ``callback(step, loss)`` runs after each step (on every rank);
        ``progress`` shows a rich progress bar on rank 0; ``max_seconds`` stops
        early once this much wall-clock time has passed (a fixed budget; rank 0's
        clock decides for all).  With ``schedule_fits_time`` (and the default
        warm-up + cosine schedule) the learning rate follows the budget: before
        each step the position on the schedule is ``max(step + 1, steps * elapsed /
        max_seconds)``, so that the decay reaches its end when the time runs out
        rather than at a step count the budget never reaches; without it the
        schedule spans ``config.steps``.  Checkpoints go to ``checkpoint_dir``
        every ``checkpoint_every`` steps and at the end.
        """
        from rich.progress import Progress

        if max_seconds is not None:
            max_seconds = check_real("max_seconds", max_seconds, gt=0.0)
        losses: list[float] = []
        start = self.clock()
        show = progress and self.rank == 0
        with Progress(disable=not show, transient=True) as bar:
            task = bar.add_task("training", total=self.config.steps, completed=self.step)
            while self.step < self.config.steps:
                if max_seconds is not None:
                    elapsed = self._elapsed(start)
                    if elapsed >= max_seconds:
                        break
                    if schedule_fits_time:
                        by_time = self.config.steps * elapsed / max_seconds
                        self._time_position = min(
                            float(self.config.steps), max(self.step + 1.0, by_time)
                        )
                try:
                    loss = self.train_step()
                finally:
                    self._time_position = None
                losses.append(loss)
                bar.update(task, advance=1, description=f"step {self.step} loss {loss:.3e}")
                if callback is not None:
                    callback(self.step, loss)
                every = self.config.checkpoint_every
                if every and self.step % every == 0 and self.step < self.config.steps:
                    self.save(self.checkpoint_dir / f"step_{self.step}")
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if self.checkpoint_dir is not None:
            self.save(self.checkpoint_dir / "final")
        return losses

    def _elapsed(self, start: float) -> float:
        """Seconds since ``start`` on rank 0's clock (broadcast, so every rank agrees)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = self.clock() - start
        if self.world == 1:
            return elapsed
        value = torch.tensor(elapsed, dtype=torch.float64, device=self.device)
        torch.distributed.broadcast(value, src=0)
        return float(value.item())

    def save(self, path: str | Path | None) -> None:
        """Write a checkpoint of the current state (every rank calls it; rank 0 writes).

        Each rank's random state is gathered to rank 0 and saved (see
        :mod:`sciml_seq.train.checkpoint`), so that every rank resumes its own stream.
        """
        if path is None:
            raise OptionError("checkpoint_dir: expected a directory to save checkpoints into")
        rng_states = distributed.gather_to_main(rng_state())
        if self.rank == 0:
            config = asdict(self.config)
            save_checkpoint(
                path,
                model=self.module,
                step=self.step,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                scaler=self.scaler,
                model_spec=self.model_spec,
                extra={**self.extra, "train_config": config},
                rng_states=rng_states,
                run_id=self.run_id,
            )
        if self.world > 1:
            torch.distributed.barrier()

    def load(self, path: str | Path) -> None:
        """Restore model, optimizer, scheduler, scaler, this rank's random state, step and run id.

        Refuses (:class:`~sciml_seq.errors.OptionError`) a checkpoint trained with
        another ``batch_size``: the data order and the step's batch are functions of
        the batch size, so such a resume would not continue the run it claims to.
        (Other settings, e.g. more ``steps``, may change.)
        """
        saved = read_checkpoint_meta(path)
        config = saved["extra"].get("train_config", {})
        if "batch_size" in config and config["batch_size"] != self.config.batch_size:
            raise OptionError(
                f"batch_size: expected the batch size of the run in {str(saved['path'])!r} "
                f"({config['batch_size']}) to resume it; got {self.config.batch_size}"
            )
        state = load_checkpoint(
            saved["path"],
            model=self.module,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
            rank=self.rank,
        )
        self.step = state["step"]
        self.run_id = state["run_id"]

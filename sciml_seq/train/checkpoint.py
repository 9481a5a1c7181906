"""Training checkpoints in safetensors: everything needed to resume exactly.

A checkpoint is a directory with two files:

* ``model.safetensors``: the model's ``state_dict`` (tied tensors handled by
  ``safetensors.torch.save_model``); metadata ``"model_spec"`` (JSON, how to
  rebuild the model, see :mod:`sciml_seq.train.operator_models`) and ``"step"``;
* ``training.safetensors``: the optimizer's tensors (``optimizer.<param>.<key>``),
  the torch CPU and CUDA random states of every process (``rng.<rank>.cpu``,
  ``rng.<rank>.cuda.<device>``), and as JSON metadata the optimizer's parameter
  groups and non-tensor state, the learning-rate scheduler, the gradient scaler,
  the step and any ``extra`` entries.

Random states: in data-parallel training each rank draws its own random numbers
(dropout on its share of the batch), so an exact resume needs each rank's
state.  :class:`~sciml_seq.train.trainer.Trainer` gathers every rank's
:func:`rng_state` to rank 0, which writes them all into the one checkpoint, and
:func:`load_checkpoint` gives each rank back its own (``rank=``).  Only torch's
generators are saved: the training code draws nothing from numpy's or Python's
global generators (the data order comes from a generator seeded by the step).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_file, save_model

from ..errors import FormatError, OptionError

__all__ = ["load_checkpoint", "read_model_spec", "rng_state", "save_checkpoint", "set_rng_state"]

MODEL_FILE = "model.safetensors"
TRAINING_FILE = "training.safetensors"


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "state": plain}


def rng_state() -> dict[str, torch.Tensor]:
    """This process's torch random states: ``{"cpu": ..., "cuda.<device>": ...}`` (uint8).

    The CUDA entries are there once CUDA is initialised (one per visible device).
    """
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for device, rng in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda.{device}"] = rng
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    """Restore random states from :func:`rng_state` (CUDA ones only where CUDA is available)."""
    torch.set_rng_state(state["cpu"])
    cuda = [state[f"cuda.{device}"] for device in range(len(state) - 1)]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: torch.amp.GradScaler | None = None,
    model_spec: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    rng_states: Sequence[dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write ``model.safetensors`` and ``training.safetensors`` into directory ``path``.

    ``rng_states``: :func:`rng_state` of every rank, in rank order (default: this
    process's alone, as rank 0).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    meta = {"step": str(int(step)), "model_spec": json.dumps(model_spec or {})}
    save_model(model, str(path / MODEL_FILE), metadata=meta)

    tensors, optim_json = _optimizer_parts(optimizer) if optimizer else ({}, None)
    for rank, state in enumerate([rng_state()] if rng_states is None else rng_states):
        tensors.update({f"rng.{rank}.{name}": value for name, value in state.items()})
    training_meta = {
        "step": str(int(step)),
        "optimizer": json.dumps(optim_json),
        "scheduler": json.dumps(scheduler.state_dict() if scheduler else None),
        "scaler": json.dumps(scaler.state_dict() if scaler else None),
        "extra": json.dumps(extra or {}),
    }
    save_file(tensors, str(path / TRAINING_FILE), metadata=training_meta)
    return path


def _file(path: str | Path, name: str) -> str:
    """``path / name``; :class:`~sciml_seq.errors.FormatError` unless it is a file."""
    file = Path(path) / name
    if not file.is_file():
        raise FormatError(
            f"path: expected a checkpoint directory holding {name}; got {str(path)!r}"
            + ("" if Path(path).is_dir() else " (no such directory)")
        )
    return str(file)


def read_model_spec(path: str | Path) -> dict[str, Any]:
    """The ``model_spec`` stored in a checkpoint directory (``{}`` if none)."""
    with safe_open(_file(path, MODEL_FILE), "pt") as f:
        return json.loads((f.metadata() or {}).get("model_spec", "{}"))


def load_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: torch.amp.GradScaler | None = None,
    restore_rng: bool = True,
    rank: int = 0,
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into existing objects.

    The model is loaded strictly (missing or unexpected names raise).  With
    ``restore_rng`` this process gets the random state saved for ``rank``; a
    rank the checkpoint has none for (a run resumed on more processes) keeps its
    own, with a warning.  Returns ``{"step": int, "extra": dict}``.
    """
    path = Path(path)
    model = getattr(model, "module", model)
    missing, unexpected = load_model(model, _file(path, MODEL_FILE), strict=False)
    if missing or unexpected:
        raise OptionError(
            f"checkpoint {path}: parameter names differ from the model: missing "
            f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    with safe_open(_file(path, TRAINING_FILE), "pt") as f:
        meta = f.metadata() or {}
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    if optimizer is not None:
        optim_json = json.loads(meta["optimizer"])
        if optim_json is None:
            raise OptionError(f"checkpoint {path}: holds no optimizer state")
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        for pid, entries in optim_json["state"].items():
            state.setdefault(int(pid), {}).update(entries)
        optimizer.load_state_dict({"state": state, "param_groups": optim_json["param_groups"]})
    if scheduler is not None:
        scheduler.load_state_dict(json.loads(meta["scheduler"]))
    if scaler is not None:
        scaler.load_state_dict(json.loads(meta["scaler"]))
    if restore_rng:
        prefix = f"rng.{rank}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if state:
            set_rng_state(state)
        else:
            warnings.warn(
                f"checkpoint {path}: no random state for rank {rank}; it keeps its own, so "
                "the resumed run does not repeat an uninterrupted one exactly",
                stacklevel=2,
            )
    return {"step": int(meta["step"]), "extra": json.loads(meta["extra"])}

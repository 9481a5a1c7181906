"""Training checkpoints in safetensors: everything needed to resume exactly, written safely.

A checkpoint is a directory with two files:

* ``model.safetensors``: the model's ``state_dict`` (tied tensors handled by
  ``safetensors.torch.save_model``); metadata ``"model_spec"`` (JSON, how to
  rebuild the model, see :mod:`sciml_seq.train.operator_models`), ``"step"`` and
  ``"run_id"``;
* ``training.safetensors``: the optimizer's tensors (``optimizer.<param>.<key>``),
  the torch CPU and CUDA random states of every process (``rng.<rank>.cpu``,
  ``rng.<rank>.cuda.<device>``), and as JSON metadata the optimizer's parameter
  groups and non-tensor state, the learning-rate scheduler, the gradient scaler,
  the ``"step"``, the ``"run_id"`` and any ``extra`` entries.

Safe writing.  :func:`save_checkpoint` writes both files into a temporary
folder ``<name>.tmp-<token>`` beside the target, fsyncs the files and the
folder, and only then swaps it in: an existing ``<name>`` is renamed to
``<name>.old-<token>``, the new folder to ``<name>``, and the old one is
removed.  A process killed at any point leaves either the previous complete
checkpoint or the new complete one:

* killed while writing: ``<name>`` is untouched (a ``.tmp-`` folder is left, and
  removed by the next save of ``<name>``; it is never loaded);
* killed between the two renames: ``<name>`` is missing and ``<name>.old-*``
  holds the previous checkpoint; :func:`resolve_checkpoint` (used by every
  loader here) then loads that one, with a warning.  Should several be left,
  the one with the highest step (then the last name) is taken;
* killed before the old folder is removed: ``<name>`` is the new checkpoint.

Both files carry the step and the run id (a random token made when a run
starts and kept when it is resumed); a checkpoint whose files disagree (a mix
of two saves), is truncated, cannot be parsed, holds NaN or infinite weights,
or an integer tensor where the model has a float one, raises
:class:`~sciml_seq.errors.FormatError` naming the file or tensor.  A model
that does not fit the checkpoint (names or shapes) raises
:class:`~sciml_seq.errors.OptionError`.

Random states: in data-parallel training each rank draws its own random numbers
(dropout on its share of the batch), so an exact resume needs each rank's
state.  :class:`~sciml_seq.train.trainer.Trainer` gathers every rank's
:func:`rng_state` to rank 0, which writes them all into the one checkpoint, and
:func:`load_checkpoint` gives each rank back its own (``rank=``).  Only torch's
generators are saved: the training code draws nothing from numpy's or Python's
global generators (the data order comes from a generator seeded by the step).

Test hook: with the environment variable ``SCIML_SEQ_CHECKPOINT_PAUSE`` set to
``"<stage>:<marker file>"`` a save writes the marker file and sleeps (600 s) at
that stage, so that a test can kill the writer there deterministically.  Stages:
``"between-files"`` (the model file written, the training file not yet) and
``"between-renames"`` (the previous checkpoint moved aside, the new one not yet
in place).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_file, save_model

from ..errors import FormatError, OptionError

__all__ = [
    "PAUSE_ENV",
    "load_checkpoint",
    "new_run_id",
    "read_checkpoint_meta",
    "read_model_spec",
    "resolve_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

MODEL_FILE = "model.safetensors"
TRAINING_FILE = "training.safetensors"
PAUSE_ENV = "SCIML_SEQ_CHECKPOINT_PAUSE"
"""Test hook: ``"<stage>:<marker file>"`` makes a save pause at that stage (module docstring)."""


def new_run_id() -> str:
    """A fresh random run id (12 hex digits)."""
    return uuid.uuid4().hex[:12]


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


# -- safe writing ---------------------------------------------------------------------------
def _fsync(path: Path) -> None:
    """Flush a file or a directory to disk (directories: where the OS allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - directories cannot be opened on some systems
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - e.g. directories on Windows
        pass
    finally:
        os.close(fd)


def _pause(stage: str) -> None:
    """The test hook: write the marker and sleep when ``PAUSE_ENV`` names ``stage``."""
    value = os.environ.get(PAUSE_ENV, "")
    name, _, marker = value.partition(":")
    if name == stage and marker:
        Path(marker).write_text(stage)
        time.sleep(600)


def _leftovers(target: Path, kind: str) -> list[Path]:
    """``<target>.<kind>-*`` folders beside ``target`` (``kind``: ``"tmp"`` or ``"old"``)."""
    pattern = os.path.join(glob.escape(str(target.parent)), glob.escape(target.name))
    return sorted(Path(p) for p in glob.glob(f"{pattern}.{kind}-*") if Path(p).is_dir())


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
    run_id: str | None = None,
) -> Path:
    """Write ``model.safetensors`` and ``training.safetensors`` into directory ``path``.

    Written into a temporary folder and swapped in (see the module docstring):
    an existing checkpoint at ``path`` stays complete until the new one is.
    ``rng_states``: :func:`rng_state` of every rank, in rank order (default: this
    process's alone, as rank 0).  ``run_id``: stored in both files (default: a
    new one, :func:`new_run_id`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in _leftovers(target, "tmp"):  # from a writer killed earlier
        shutil.rmtree(stale, ignore_errors=True)
    token = uuid.uuid4().hex[:8]
    tmp = target.with_name(f"{target.name}.tmp-{token}")
    tmp.mkdir()
    common = {"step": str(int(step)), "run_id": str(run_id or new_run_id())}

    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    model = getattr(model, "_orig_mod", model)  # and torch.compile's wrapper
    meta = {**common, "model_spec": json.dumps(model_spec or {})}
    save_model(model, str(tmp / MODEL_FILE), metadata=meta)
    _fsync(tmp / MODEL_FILE)
    _pause("between-files")

    tensors, optim_json = _optimizer_parts(optimizer) if optimizer else ({}, None)
    for rank, state in enumerate([rng_state()] if rng_states is None else rng_states):
        tensors.update({f"rng.{rank}.{name}": value for name, value in state.items()})
    training_meta = {
        **common,
        "optimizer": json.dumps(optim_json),
        "scheduler": json.dumps(scheduler.state_dict() if scheduler else None),
        "scaler": json.dumps(scaler.state_dict() if scaler else None),
        "extra": json.dumps(extra or {}),
    }
    save_file(tensors, str(tmp / TRAINING_FILE), metadata=training_meta)
    _fsync(tmp / TRAINING_FILE)
    _fsync(tmp)

    old = target.with_name(f"{target.name}.old-{token}")
    if target.exists():
        os.replace(target, old)
        _fsync(target.parent)
        _pause("between-renames")
    os.replace(tmp, target)
    _fsync(target.parent)
    for previous in _leftovers(target, "old"):
        shutil.rmtree(previous, ignore_errors=True)
    return target


# -- reading and checking -------------------------------------------------------------------
def _header(file: Path) -> dict[str, str]:
    """The metadata of a safetensors file; :class:`FormatError` when it cannot be read."""
    try:
        with safe_open(str(file), "pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # safetensors raises its own SafetensorError, OSError, ...
        raise FormatError(
            f"checkpoint {str(file.parent)!r}: {file.name} is not a readable safetensors file "
            f"(truncated or corrupt: {' '.join(str(err).split())})"
        ) from None


def _complete(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file() and (folder / TRAINING_FILE).is_file()


def _stamp(folder: Path) -> tuple[int, str]:
    """``(step, name)`` of a left-over folder, to choose among several (unreadable: -1)."""
    try:
        return int(_header(folder / TRAINING_FILE).get("step", -1)), folder.name
    except (FormatError, ValueError):
        return -1, folder.name


def resolve_checkpoint(path: str | Path) -> Path:
    """The folder to load for checkpoint ``path``, recovering from an interrupted save.

    ``path`` itself when it holds both files; when it is missing and an
    interrupted save left the previous checkpoint in ``<path>.old-*``, that one
    (with a warning; see the module docstring).  Otherwise
    :class:`~sciml_seq.errors.FormatError`.
    """
    target = Path(path)
    if target.is_dir():
        for name in (MODEL_FILE, TRAINING_FILE):
            if not (target / name).is_file():
                raise FormatError(
                    f"path: expected a checkpoint directory holding {name}; got {str(path)!r}"
                )
        return target
    candidates = [p for p in _leftovers(target, "old") if _complete(p)]
    if not candidates:
        raise FormatError(
            f"path: expected a checkpoint directory holding {MODEL_FILE}; got {str(path)!r} "
            "(no such directory)"
        )
    chosen = max(candidates, key=_stamp)
    warnings.warn(
        f"checkpoint {str(path)!r}: missing after an interrupted save; loading the previous "
        f"checkpoint {chosen.name!r} instead",
        stacklevel=2,
    )
    return chosen


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """``{"path", "step", "run_id", "model_spec", "extra"}`` of a checkpoint, after checking that
    its two files are readable and come from the same save (same step and run id).

    ``path`` is the folder that holds them (see :func:`resolve_checkpoint`).
    """
    folder = resolve_checkpoint(path)
    model_meta = _header(folder / MODEL_FILE)
    training_meta = _header(folder / TRAINING_FILE)
    stamps = []
    for name, meta in ((MODEL_FILE, model_meta), (TRAINING_FILE, training_meta)):
        try:
            stamps.append((int(meta["step"]), str(meta["run_id"])))
        except (KeyError, ValueError):
            raise FormatError(
                f"checkpoint {str(folder)!r}: {name} has no step and run id in its metadata "
                "(not written by sciml_seq's save_checkpoint)"
            ) from None
    if stamps[0] != stamps[1]:
        (s0, r0), (s1, r1) = stamps
        raise FormatError(
            f"checkpoint {str(folder)!r}: {MODEL_FILE} is from step {s0} of run {r0!r} but "
            f"{TRAINING_FILE} from step {s1} of run {r1!r} (files of two different saves)"
        )
    try:
        spec = json.loads(model_meta.get("model_spec", "{}"))
    except json.JSONDecodeError:
        raise FormatError(
            f"checkpoint {str(folder)!r}: {MODEL_FILE} has a model_spec that is not JSON"
        ) from None
    extra = _json(training_meta, "extra", folder)
    return {
        "path": folder,
        "step": stamps[0][0],
        "run_id": stamps[0][1],
        "model_spec": spec,
        "extra": extra,
    }


def read_model_spec(path: str | Path) -> dict[str, Any]:
    """The ``model_spec`` stored in a checkpoint directory (``{}`` if none)."""
    return read_checkpoint_meta(path)["model_spec"]


def _check_weights(folder: Path, model: torch.nn.Module) -> None:
    """Every stored weight is finite, float where the model's is, and shaped like the model's."""
    expected = model.state_dict()
    file = folder / MODEL_FILE
    try:
        with safe_open(str(file), "pt") as f:
            for name in f.keys():
                tensor = f.get_tensor(name)
                want = expected.get(name)
                if want is not None and tuple(tensor.shape) != tuple(want.shape):
                    raise OptionError(
                        f"checkpoint {str(folder)!r}: tensor {name!r} has shape "
                        f"{tuple(tensor.shape)}; the model expects {tuple(want.shape)}"
                    )
                if want is not None and want.is_floating_point() != tensor.is_floating_point():
                    raise FormatError(
                        f"checkpoint {str(folder)!r}: tensor {name!r} is {tensor.dtype}; the "
                        f"model expects {want.dtype}"
                    )
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    bad = int((~torch.isfinite(tensor)).sum())
                    raise FormatError(
                        f"checkpoint {str(folder)!r}: tensor {name!r} has {bad} NaN or infinite "
                        "entries"
                    )
    except (FormatError, OptionError):
        raise
    except Exception as err:
        raise FormatError(
            f"checkpoint {str(folder)!r}: {MODEL_FILE} is not a readable safetensors file "
            f"(truncated or corrupt: {' '.join(str(err).split())})"
        ) from None


def _json(meta: dict[str, str], key: str, folder: Path) -> Any:
    try:
        return json.loads(meta[key])
    except (KeyError, json.JSONDecodeError):
        raise FormatError(
            f"checkpoint {str(folder)!r}: {TRAINING_FILE} has no readable {key!r} entry"
        ) from None


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

    The files are checked first (:func:`read_checkpoint_meta`, finite float
    weights shaped like the model's); the model is loaded strictly (missing or
    unexpected names raise :class:`~sciml_seq.errors.OptionError`).  With
    ``restore_rng`` this process gets the random state saved for ``rank``; a
    rank the checkpoint has none for (a run resumed on more processes) keeps its
    own, with a warning.  Returns ``{"step": int, "run_id": str, "extra": dict,
    "path": Path}`` (``path``: the folder loaded, see :func:`resolve_checkpoint`).
    """
    info = read_checkpoint_meta(path)
    folder: Path = info["path"]
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    _check_weights(folder, model)
    missing, unexpected = load_model(model, str(folder / MODEL_FILE), strict=False)
    if missing or unexpected:
        raise OptionError(
            f"checkpoint {str(folder)!r}: parameter names differ from the model: missing "
            f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    try:
        with safe_open(str(folder / TRAINING_FILE), "pt") as f:
            meta = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as err:
        raise FormatError(
            f"checkpoint {str(folder)!r}: {TRAINING_FILE} is not a readable safetensors file "
            f"(truncated or corrupt: {' '.join(str(err).split())})"
        ) from None
    if optimizer is not None:
        optim_json = _json(meta, "optimizer", folder)
        if optim_json is None:
            raise OptionError(f"checkpoint {str(folder)!r}: holds no optimizer state")
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        for pid, entries in optim_json["state"].items():
            state.setdefault(int(pid), {}).update(entries)
        try:
            optimizer.load_state_dict({"state": state, "param_groups": optim_json["param_groups"]})
        except (ValueError, KeyError) as err:
            raise OptionError(
                f"checkpoint {str(folder)!r}: the optimizer state does not fit this optimizer "
                f"({' '.join(str(err).split())})"
            ) from None
    if scheduler is not None:
        scheduler.load_state_dict(_json(meta, "scheduler", folder))
    if scaler is not None:
        scaler.load_state_dict(_json(meta, "scaler", folder))
    if restore_rng:
        prefix = f"rng.{rank}."
        rng = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if rng:
            set_rng_state(rng)
        else:
            warnings.warn(
                f"checkpoint {folder}: no random state for rank {rank}; it keeps its own, so "
                "the resumed run does not repeat an uninterrupted one exactly",
                stacklevel=2,
            )
    return {
        "step": info["step"],
        "run_id": info["run_id"],
        "extra": _json(meta, "extra", folder),
        "path": folder,
    }

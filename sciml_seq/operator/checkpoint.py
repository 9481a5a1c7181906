"""Official scOT checkpoint folders (``config.json`` + ``model.safetensors``), read with numpy.

The layout is what Poseidon's ``ScOT.save_pretrained(dir, safe_serialization=True)``
writes and what its ``from_pretrained(dir)`` reads: tensors under the official
``state_dict`` names.  Nothing is ever downloaded: ``path`` is a local folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping

import numpy as np

from ..errors import FormatError, OptionError, ShapeError
from .config import ScOTConfig

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def _folder(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise OptionError(
            f"path: expected a local folder holding {CONFIG_NAME} and {WEIGHTS_NAME} "
            f"(checkpoints are never downloaded), got {path!r}"
        )
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not os.path.isfile(os.path.join(path, name)):
            raise OptionError(f"path: folder {path!r} has no {name}")
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[ScOTConfig, dict[str, np.ndarray]]:
    """The configuration and the arrays (official names, stored dtype) of a checkpoint folder."""
    from safetensors.numpy import load_file

    folder = _folder(path)
    file = os.path.join(folder, CONFIG_NAME)
    try:
        with open(file, encoding="utf-8") as f:
            values = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FormatError(f"path: {file!r}: {CONFIG_NAME} is not valid JSON ({err})") from None
    if not isinstance(values, dict):
        raise FormatError(
            f"path: {file!r}: {CONFIG_NAME}: expected a JSON object; got {type(values).__name__}"
        )
    config = ScOTConfig.from_dict(values)
    try:
        arrays = load_file(os.path.join(folder, WEIGHTS_NAME))
    except Exception as err:  # safetensors' own SafetensorError for a truncated file
        raise FormatError(
            f"path: {folder!r}: {WEIGHTS_NAME} is not a readable safetensors file "
            f"(truncated or corrupt: {' '.join(str(err).split())})"
        ) from None
    return config, arrays


def write_checkpoint(
    path: str | os.PathLike, config: ScOTConfig, arrays: Mapping[str, np.ndarray]
) -> None:
    """Write ``config.json`` and ``model.safetensors`` into the folder ``path`` (created)."""
    from safetensors.numpy import save_file

    folder = os.fspath(path)
    os.makedirs(folder, exist_ok=True)
    config.to_json(os.path.join(folder, CONFIG_NAME))
    contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    save_file(contiguous, os.path.join(folder, WEIGHTS_NAME), metadata={"format": "pt"})


def check_arrays(
    shapes: Mapping[str, tuple[int, ...]],
    arrays: Mapping[str, np.ndarray],
    what: str,
    *,
    not_float: Iterable[str] = (),
) -> None:
    """Every array named in ``shapes`` has that shape and, unless named in ``not_float`` (the
    model's integer buffers), a float dtype and finite entries.

    :class:`~sciml_seq.errors.ShapeError` or :class:`~sciml_seq.errors.FormatError`
    naming the tensor (a wrong-shaped bias must not load and then broadcast).
    """
    not_float = set(not_float)
    for name, shape in shapes.items():
        value = np.asarray(arrays[name])
        if tuple(value.shape) != tuple(shape):
            raise ShapeError(
                f"{what}: tensor {name!r} has shape {tuple(value.shape)}; the model built from "
                f"its config expects {tuple(shape)}"
            )
        if name in not_float:
            continue
        if value.dtype.kind != "f" and value.dtype.name != "bfloat16":
            raise FormatError(f"{what}: tensor {name!r} is {value.dtype}; expected a float dtype")
        if not np.isfinite(value.astype(np.float32)).all():
            bad = int((~np.isfinite(value.astype(np.float32))).sum())
            raise FormatError(f"{what}: tensor {name!r} has {bad} NaN or infinite entries")


def check_names(expected: Iterable[str], given: Iterable[str], what: str = "checkpoint") -> None:
    """``OptionError`` listing the missing and unexpected names unless the two sets agree."""
    expected, given = list(expected), set(given)
    missing = [k for k in expected if k not in given]
    unexpected = sorted(given - set(expected))
    if missing or unexpected:
        raise OptionError(
            f"{what}: parameter names do not match the model built from its config "
            f"(missing {len(missing)}: {missing[:5]}{'...' if len(missing) > 5 else ''}; "
            f"unexpected {len(unexpected)}: {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''})"
        )


__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "check_arrays",
    "check_names",
    "read_checkpoint",
    "write_checkpoint",
]

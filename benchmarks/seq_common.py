"""What the sequence-task benchmarks share: model families, sizing, the run header.

Used by ``benchmarks/long_range.py`` and ``benchmarks/rate_change.py``, and for
the run header by ``benchmarks/ssm.py`` (run as scripts, so this module is
imported from their folder).
"""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

#: Architecture of each model family, apart from the width (fitted to the
#: parameter budget by :func:`sciml_seq.torch.models.sizing.build_sized`).
ARCH: dict[str, dict[str, Any]] = {
    "s4d": {"n_layers": 4, "d_state": 32},
    "s4": {"n_layers": 4, "d_state": 32},
    "lssl": {"n_layers": 4, "d_state": 32},
    "lstm": {"n_layers": 1},
    "gru": {"n_layers": 1},
    "transformer": {"n_layers": 2, "heads": 2},
}

#: Base learning rate per family (the SSM layers' Δ, A, B keep their hinted 1e-3).
LR: dict[str, float] = {
    "s4d": 4e-3,
    "s4": 4e-3,
    "lssl": 4e-3,
    "lstm": 4e-3,
    "gru": 4e-3,
    "transformer": 1e-3,
}

#: Pooling per family for pooled tasks (sequence tasks use "none").
POOL: dict[str, str] = {"lstm": "last", "gru": "last"}


def make_model(name: str, task, n_params: int, l_max: int | None = None):
    """A model of family ``name`` for ``task`` sized to ``n_params``."""
    from sciml_seq.torch.models.sizing import build_sized

    options = dict(ARCH[name])
    options["pool"] = "none" if task.kind == "seq2seq" else POOL.get(name, "mean")
    if name == "s4":
        options["l_max"] = l_max or task.length
    return build_sized(name, task.channels, task.d_output, n_params, **options)


def describe(name: str, model) -> str:
    """Short architecture string, e.g. ``"4 x S4D, H=29, N=32"``."""
    from torch import nn

    if name in ("s4d", "s4", "lssl"):
        first = model.layers[0]
        return f"{len(model.layers)} x {name.upper()}, H={first.d_model}, N={first.d_state}"
    if name in ("lstm", "gru"):
        rnn: nn.RNNBase = model.rnn
        return f"{rnn.num_layers} x {name.upper()}, hidden={rnn.hidden_size}"
    block = model.blocks[0]
    return (
        f"{len(model.blocks)} blocks, d={block.attn.dim}, heads={block.attn.heads}, "
        f"d_ff={block.mlp[0].out_features}, RoPE, {'causal' if model.causal else 'bidirectional'}"
    )


def set_threads(threads: int | None) -> None:
    """Pin torch's CPU threads (1 avoids spin-waiting on a shared, oversubscribed CPU)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def versions() -> str:
    parts = []
    for name in ("torch", "numpy", "scikit-learn"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} missing")
    return ", ".join(parts)


def command(script: str, argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return " ".join([f"python benchmarks/{Path(script).name}", *args])


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(f"wrote {path}")

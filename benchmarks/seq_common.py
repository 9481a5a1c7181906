"""What the sequence-task benchmarks share: model families, sizing, training options.

Used by ``benchmarks/long_range.py`` and ``benchmarks/rate_change.py`` (run as
scripts, so this module is imported from their folder); the results header is
``benchmarks/report.py``'s.
"""

from __future__ import annotations

import argparse
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


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both sequence tasks train with: budget, data, batch, device, seed."""
    parser.add_argument("--params", type=int, default=20000, help="parameter budget per model")
    parser.add_argument("--n-test", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-steps", type=int, default=None, help="stop early (smoke runs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None)

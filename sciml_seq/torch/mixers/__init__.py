"""Sequence mixers for the transformer block (mirrors :mod:`sciml_seq.jax.mixers`).

Every mixer has the constructor head and call of
:class:`~sciml_seq.torch.attention.MultiheadAttention`::

    Mixer(dim, heads, *, dropout=0.0, rope=None, bias=True, dtype=None, **options)
    mixer(x, positions=None, *, causal=False, padding_mask=None, rope_angles=None)

with ``x (batch, length, dim)`` -> ``(batch, length, dim)``.  The names, facts
and option checks are in :mod:`sciml_seq.mixers`; :func:`make_mixer` builds one
by name.  Modules are imported when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from ...mixers import MIXERS, check_mixer_options
from ..position import RotaryEncoding

MIXER_CLASSES: dict[str, tuple[str, str]] = {
    "softmax": ("..attention", "MultiheadAttention"),
    "performer": (".performer", "PerformerAttention"),
    "sliding_window": (".sliding_window", "SlidingWindowAttention"),
    "lsh": (".lsh", "LSHAttention"),
    "fnet": (".fnet", "FNetMixer"),
    "gmlp": (".gmlp", "SpatialGatingMixer"),
    "aaren": (".aaren", "AarenMixer"),
}
"""``name -> (module relative to this package, class)``; imported on first use."""


def mixer_class(name: str) -> type[nn.Module]:
    """The class of the mixer ``name`` (one of :data:`sciml_seq.mixers.MIXERS`)."""
    check_mixer_options(name, None, dim=1, heads=1)  # the name check, one message
    module, cls = MIXER_CLASSES[name]
    return getattr(importlib.import_module(module, __name__), cls)


def make_mixer(
    name: str,
    dim: int,
    heads: int,
    *,
    rope: RotaryEncoding | None = None,
    dtype: torch.dtype | None = None,
    **options: Any,
) -> nn.Module:
    """The mixer ``name`` of width ``dim`` with ``heads`` heads and its keyword ``options``.

    The options are checked by :func:`sciml_seq.mixers.check_mixer_options`
    (``OptionError`` naming the option) before the module is built.
    """
    options = check_mixer_options(name, options, dim=dim, heads=heads, rope=rope is not None)
    return mixer_class(name)(dim, heads, rope=rope, dtype=dtype, **options)


__all__ = ["MIXERS", "MIXER_CLASSES", "make_mixer", "mixer_class"]

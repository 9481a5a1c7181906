"""Official ``state-spaces/s4`` checkpoints into :class:`~sciml_seq.torch.ssm.S4D`
and :class:`~sciml_seq.torch.ssm.S4` (the names and layouts are mapped by the
framework-free :func:`sciml_seq.ssm.official_to_sciml`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from ...errors import OptionError, ShapeError
from ...ssm import (
    official_to_sciml,
    read_official,
)
from .layer import SSMLayer

__all__ = ["load_official_state_dict"]


def load_official_state_dict(
    module: SSMLayer, source: str | os.PathLike | Mapping[str, Any]
) -> SSMLayer:
    """Load official ``state-spaces/s4`` parameters into an :class:`S4D` or :class:`S4`, in place.

    ``source`` is an official ``S4Block`` ``state_dict`` (``layer.kernel.*``,
    ``layer.D``, ``output_linear.0.*``), the minimal ``s4d.py`` ``S4D`` one (into
    an :class:`S4D` built with ``init="lin", disc="zoh"``; its opposite sign of
    ``Im λ`` is conjugated away), or an ``.npz`` holding either with a ``param/``
    prefix (the shared reference fixtures).  A DPLR C-tilde is re-tuned from the
    official ``l_kernel`` to ``module.l_max``.  See
    :func:`sciml_seq.ssm.official_to_sciml`.

    Raises
    ------
    OptionError: a parameter is missing on one side; ShapeError: shapes differ.
    """
    kind = getattr(module, "_official_kind", None)
    if kind is None:
        raise OptionError(
            f"module: expected an S4D or S4 layer (official checkpoints exist for those); "
            f"got {type(module).__name__}"
        )
    mapped = official_to_sciml(read_official(source), kind=kind, l_max=module.l_max)
    target = module.state_dict()
    missing = sorted(set(target) - set(mapped))
    extra = sorted(set(mapped) - set(target))
    if missing or extra:
        raise OptionError(
            f"source: parameters do not match the {type(module).__name__} layer "
            f"(missing: {missing}, unexpected: {extra}); build it with the official sizes"
        )
    with torch.no_grad():
        for name, value in mapped.items():
            if tuple(value.shape) != tuple(target[name].shape):
                raise ShapeError(
                    f"source: parameter {name!r} has shape {tuple(value.shape)} but the layer "
                    f"expects {tuple(target[name].shape)}; build it with the official sizes "
                    f"(d_model, d_state, channels, bidirectional)"
                )
            target[name].copy_(torch.as_tensor(value))
    return module

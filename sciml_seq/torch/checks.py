"""Argument checks on torch types (the framework-free ones: :mod:`sciml_seq.checks`)."""

from __future__ import annotations

import torch

from ..errors import DTypeError

__all__ = ["check_float_dtype"]


def check_float_dtype(name: str, dtype: object) -> torch.dtype:
    """``dtype`` if it is a floating-point ``torch.dtype``; else ``DTypeError`` naming ``name``."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise DTypeError(f"{name}: expected a floating-point torch.dtype; got {dtype!r}")
    return dtype

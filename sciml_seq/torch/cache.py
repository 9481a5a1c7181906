"""Tensors that modules build once and keep (index maps, frequency tables)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["cacheable_tensor"]


def cacheable_tensor(values: Any, *, device: torch.device | None, dtype=None) -> Tensor:
    """``torch.tensor(values, dtype=dtype, device=device)``, fit to be cached and reused.

    Built outside :func:`torch.inference_mode`: a tensor made inside it is an
    inference tensor, which autograd refuses to save, so a cache filled by a
    first call under ``inference_mode`` (an evaluation loop) would break every
    later training call.  The copy to a GPU synchronises it: callers keep the
    result rather than build it per call.
    """
    with torch.inference_mode(False):
        return torch.tensor(values, dtype=dtype, device=device)

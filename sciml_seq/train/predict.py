"""A torch operator as a numpy function ``predict(x, lead) -> y`` for :mod:`.evaluate`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

from ..checks import check_choice

__all__ = ["AUTOCAST_DTYPES", "PRECISIONS", "autocast", "torch_predictor"]

AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
"""The ``precision`` names and the dtype they autocast to (``None``: no autocast)."""

PRECISIONS = tuple(AUTOCAST_DTYPES)


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (a no-op for ``"fp32"``)."""
    dtype = AUTOCAST_DTYPES[check_choice("precision", precision, PRECISIONS)]
    return torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()


def torch_predictor(
    model: torch.nn.Module,
    *,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``predict(x (batch, C_in, *grid), lead (batch,)) -> (batch, C_out, *grid)`` in numpy.

    Runs ``model`` in eval mode without gradients on ``device``, in the
    parameters' dtype, under bf16/fp16 autocast for ``precision="bf16"/"fp16"``.
    """
    check_choice("precision", precision, PRECISIONS)
    device = torch.device(device)
    model = model.to(device).eval()
    dtype = next(model.parameters()).dtype

    def predict(x: np.ndarray, lead: np.ndarray) -> np.ndarray:
        xs = torch.as_tensor(np.asarray(x), device=device, dtype=dtype)
        leads = torch.as_tensor(np.asarray(lead), device=device, dtype=dtype)
        with torch.no_grad(), autocast(device, precision):
            return model(xs, leads).float().cpu().numpy()

    return predict

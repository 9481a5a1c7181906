"""A torch operator as a numpy function ``predict(x, lead) -> y`` for :mod:`.evaluate`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch

__all__ = ["torch_predictor"]


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
    device = torch.device(device)
    model = model.to(device).eval()
    dtype = next(model.parameters()).dtype
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def predict(x: np.ndarray, lead: np.ndarray) -> np.ndarray:
        xs = torch.as_tensor(np.asarray(x), device=device, dtype=dtype)
        leads = torch.as_tensor(np.asarray(lead), device=device, dtype=dtype)
        context = torch.autocast(device.type, dtype=amp) if amp else nullcontext()
        with torch.no_grad(), context:
            return model(xs, leads).float().cpu().numpy()

    return predict

"""What every Triton kernel here shares: availability checks and row layout."""

from __future__ import annotations

import importlib.util
import os
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch
from torch import Tensor

from sciml_seq.errors import DTypeError, OptionError, ShapeError

__all__ = [
    "KERNEL_DTYPES",
    "Rows",
    "cdiv",
    "on_device",
    "real_view",
    "require_triton",
    "rows",
    "triton_available",
]

#: The complex dtypes the kernels compute in (complex32 has no Triton math: exp, cos, sin).
KERNEL_DTYPES = (torch.complex64, torch.complex128)


def triton_available() -> bool:
    """Whether the ``triton`` package can be imported (it is not imported here)."""
    return importlib.util.find_spec("triton") is not None


def require_triton(*tensors: Tensor, what: str) -> None:
    """Raise :class:`~sciml_seq.errors.OptionError` when ``what`` cannot run through Triton.

    Triton needs the ``triton`` package and CUDA tensors, or the CPU interpreter
    (``TRITON_INTERPRET=1`` in the environment before Triton is first imported).
    """
    if not triton_available():
        raise OptionError(
            f"backend: 'triton' needs the triton package (pip install 'sciml-seq[kernels]') "
            f"for {what}; it is not installed. Use backend='lean' (plain PyTorch, same "
            f"numbers to rounding)"
        )
    interpret = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    for t in tensors:
        if t.device.type != "cuda" and not interpret:
            raise OptionError(
                f"backend: 'triton' runs {what} on CUDA tensors (or on the CPU with "
                f"TRITON_INTERPRET=1); got a tensor on {t.device}. Use backend='lean' on "
                f"this device"
            )


class Rows:
    """Two broadcast operands ``a (..., N)`` and ``b (..., N)`` laid out as rows.

    ``a`` becomes ``(M, N)`` with ``M`` the product of the broadcast batch
    shape; ``b`` becomes ``(MB, N)`` with row ``m`` of ``a`` paired with row
    ``m % MB`` of ``b`` (no copy of ``b`` when its batch shape is a trailing
    part of the broadcast one, the common case of per-channel parameters).
    """

    def __init__(self, a: Tensor, b: Tensor, names: tuple[str, str] = ("a", "b")) -> None:
        if a.shape[-1] != b.shape[-1]:
            raise ShapeError(
                f"{names[1]}: expected the last dimension of {names[0]} ({a.shape[-1]}); "
                f"got shape {tuple(b.shape)}"
            )
        self.N = a.shape[-1]
        self.batch = tuple(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]))
        self.a = a.expand(*self.batch, self.N).reshape(-1, self.N).contiguous()
        trailing = tuple(b.shape[:-1])
        while trailing and trailing[0] == 1:
            trailing = trailing[1:]
        if trailing == tuple(self.batch[len(self.batch) - len(trailing) :]):
            self.b = b.reshape(-1, self.N).contiguous()
        else:
            self.b = b.expand(*self.batch, self.N).reshape(-1, self.N).contiguous()
        self.M, self.MB = self.a.shape[0], self.b.shape[0]

    def reduce(self, grad_rows: Tensor, like: Tensor) -> Tensor:
        """Sum per-row gradients ``(M, N)`` back to the shape of ``like``."""
        return grad_rows.reshape(*self.batch, self.N).sum_to_size(like.shape)


def rows(a: Tensor, b: Tensor, names: tuple[str, str] = ("a", "b")) -> Rows:
    """:class:`Rows` of ``a`` and ``b``, checking they are complex64/128 of one dtype and device.

    ``names`` are the caller's argument names, used in the error messages.
    """
    for name, t in zip(names, (a, b), strict=True):
        if t.dtype not in KERNEL_DTYPES:
            raise DTypeError(
                f"{name}: expected a complex tensor (complex64 or complex128); got {t.dtype}"
            )
    first, second = names
    if a.dtype != b.dtype:
        raise DTypeError(f"{second}: expected the dtype of {first} ({a.dtype}); got {b.dtype}")
    if a.device != b.device:
        raise OptionError(
            f"{second}: expected a tensor on the device of {first} ({a.device}); got {b.device}"
        )
    return Rows(a, b, names)


def real_view(z: Tensor) -> Tensor:
    """Contiguous ``(..., 2)`` real view of a complex tensor (what the kernels read).

    A lazily conjugated tensor (``z.conj()``) is materialised first: the kernels
    read raw memory and would otherwise see the unconjugated values.
    """
    return torch.view_as_real(z.resolve_conj().contiguous())


def cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` in integers (the number of blocks of ``b`` covering ``a``)."""
    return -(-a // b)


def on_device(t: Tensor) -> AbstractContextManager:
    """Make ``t``'s GPU the current one while a kernel launches.

    Triton launches on the current CUDA device and stream, not on the tensors'
    device: without this a tensor on ``cuda:1`` read from ``cuda:0`` faults.
    A no-op for CPU tensors (the interpreter).
    """
    return torch.cuda.device(t.device) if t.device.type == "cuda" else nullcontext()

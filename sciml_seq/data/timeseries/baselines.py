"""Framework-free halves of the forecasting baselines of ``sciml_seq.{torch,jax}.models.baselines``.

The option checks (shared so that torch and JAX refuse the same options with
the same message, at construction) and the patch count of PatchTST.
"""

from __future__ import annotations

from ...checks import check_int, check_real
from ...errors import OptionError

__all__ = ["check_kernel_size", "check_revin", "patch_count"]


def check_kernel_size(kernel_size: int) -> int:
    """DLinear's moving-average kernel: a positive odd integer (the trend keeps the length)."""
    kernel_size = check_int("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise OptionError(
            "kernel_size: expected an odd integer (the replicate padding of "
            f"(kernel_size - 1) // 2 steps at each end keeps the length); got {kernel_size}"
        )
    return kernel_size


def check_revin(eps: float) -> float:
    """RevIN's variance floor ``eps`` > 0."""
    return check_real("eps", eps, gt=0.0)


def patch_count(seq_len: int, patch_len: int, stride: int, pad_end: bool) -> int:
    """PatchTST's patch count: ``(seq_len - patch_len) // stride + 1``, +1 with ``pad_end``.

    ``pad_end`` appends ``stride`` copies of the last value before cutting (the
    paper's ``padding_patch="end"``).  Raises ``OptionError`` naming
    ``patch_len`` when a patch is longer than the (padded) input.
    """
    seq_len = check_int("seq_len", seq_len)
    patch_len, stride = check_int("patch_len", patch_len), check_int("stride", stride)
    if patch_len > seq_len:
        raise OptionError(f"patch_len: expected <= seq_len={seq_len}; got {patch_len}")
    return (seq_len - patch_len) // stride + 1 + (1 if pad_end else 0)

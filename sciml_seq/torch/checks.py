"""Argument checks on torch types (the framework-free ones: :mod:`sciml_seq.checks`)."""

from __future__ import annotations

import torch

from ..errors import DeviceError, DTypeError

__all__ = ["check_device", "check_float_dtype", "check_like", "check_module_input"]


def check_float_dtype(name: str, dtype: object) -> torch.dtype:
    """``dtype`` if it is a floating-point ``torch.dtype``; else ``DTypeError`` naming ``name``."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise DTypeError(f"{name}: expected a floating-point torch.dtype; got {dtype!r}")
    return dtype


def check_like(name: str, value: torch.Tensor, like: torch.Tensor, what: str) -> None:
    """Raise unless ``value`` has the device and dtype of ``like`` (``what`` says what that is).

    Devices first (:class:`~sciml_seq.errors.DeviceError`), then dtypes
    (:class:`~sciml_seq.errors.DTypeError`); under an enabled autocast for the
    tensor's device the dtype may differ (autocast casts it).  Only metadata is
    read: no synchronisation.
    """
    if value.device != like.device:
        raise DeviceError(
            f"{name}: expected a tensor on {like.device} (the device of {what}; move one of "
            f"them with .to(device)); got {value.device}"
        )
    if value.dtype != like.dtype:
        device_type = value.device.type
        if device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type):
            return
        raise DTypeError(
            f"{name}: expected dtype {like.dtype} (the dtype of {what}; convert one of them "
            f"with .to(dtype)); got {value.dtype}"
        )


def check_module_input(name: str, x: object, module: torch.nn.Module) -> None:
    """Raise unless ``x`` is a floating-point tensor on the device and of the dtype of
    ``module``'s first floating-point parameter (metadata only: no synchronisation)."""
    if not isinstance(x, torch.Tensor):
        raise DTypeError(f"{name}: expected a torch.Tensor; got {type(x).__name__}")
    if not x.is_floating_point():
        raise DTypeError(f"{name}: expected a floating-point tensor; got {x.dtype}")
    for param in module.parameters():
        if param.is_floating_point():
            check_like(name, x, param, "the module's parameters")
            return


def check_device(name: str, device: object) -> torch.device:
    """``device`` as a ``torch.device`` that this process can use; else ``DeviceError``.

    Refuses names torch does not know (``"tpu"``) and CUDA/MPS devices that are
    not available, with the argument named.
    """
    try:
        resolved = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError):
        raise DeviceError(
            f"{name}: expected a torch device such as 'cpu' or 'cuda'; got {device!r}"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"{name}: got {device!r} but CUDA is not available here")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceError(
                f"{name}: got {device!r} but only {torch.cuda.device_count()} CUDA device(s) "
                "are visible"
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{name}: got {device!r} but MPS is not available here")
    return resolved

"""Data-parallel helpers: process group from ``torchrun``'s environment, rank queries.

``torchrun --nproc-per-node N ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_from_env`
starts the process group from them (NCCL on CUDA, gloo on the CPU) and returns
the device this process should use.  Without those variables it does nothing.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["gather_to_main", "init_from_env", "is_main", "rank", "shutdown", "world_size"]


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this is rank 0 (the process that logs and writes files)."""
    return rank() == 0


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` (picklable) on rank 0, in rank order; ``None`` on the others.

    Without a process group: ``[obj]``.  Every rank must call it (a collective).
    """
    if world_size() == 1:
        return [obj]
    out = [None] * world_size() if rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def init_from_env(device: str = "cpu") -> torch.device:
    """Join the process group described by torchrun's environment variables.

    ``device``: ``"cpu"`` (gloo) or ``"cuda"`` (NCCL, one GPU per process,
    ``cuda:<LOCAL_RANK>``).  Returns the device to use; a no-op returning
    ``torch.device(device)`` when ``WORLD_SIZE`` is unset or 1.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        if device == "cuda" and dist.is_initialized():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device(device)
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return torch.device("cuda", local)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def shutdown() -> None:
    """Leave the process group, if one was started (call once at the end of a run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

"""Sharding grid points across processes with ``torch.distributed`` (torchrun or ``--workers``).

Under ``torchrun --nproc-per-node N`` (or ``losstopo landscape --workers N``) every rank evaluates
its share of each chunk; rank 0 gathers the results, writes the store, and every rank returns the
same field. Each rank evaluates on :func:`losstopo.engine.default_device` (its local GPU).
"""

from __future__ import annotations

import atexit
import os
from typing import Any

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """``(rank, world_size)``, initialising the process group from torchrun's variables if needed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and dist.is_available() and "MASTER_ADDR" in os.environ:
        backend = (
            "nccl"
            if torch.cuda.is_available() and os.environ.get("LOSSTOPO_BACKEND") != "gloo"
            else "gloo"
        )
        dist.init_process_group(backend=backend)
        atexit.register(_shutdown)
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def broadcast(obj: Any, size: int) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, size: int) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if size == 1:
        return [obj]
    out: list[Any] = [None] * size
    dist.all_gather_object(out, obj)
    return out


def _shutdown() -> None:
    """Leave the process group cleanly at exit (a rank exiting with it open can abort)."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()

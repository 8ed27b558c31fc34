"""The one default device of every function that evaluates a model.

CUDA when it is available (under ``torchrun`` the GPU of the process's ``LOCAL_RANK``), else the
CPU; ``device=None`` means this everywhere.

Examples
--------
>>> import torch
>>> from losstopo.engine import default_device, resolve_device
>>> default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
True
>>> resolve_device("cpu")
device(type='cpu')
"""

from __future__ import annotations

import os

import torch

from ..errors import InvalidParameterError


def default_device() -> torch.device:
    """This process's device: its local GPU when CUDA is available (``LOCAL_RANK`` under
    torchrun), else the CPU."""
    if torch.cuda.is_available():
        rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a :class:`torch.device`; ``None`` gives :func:`default_device`."""
    if device is None:
        return default_device()
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidParameterError(
            f"Unknown device {device!r} ({exc}); give 'cpu', 'cuda', 'cuda:1', 'mps' or a "
            "torch.device."
        ) from exc

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
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidParameterError(
            f"Unknown device {device!r} ({exc}); give 'cpu', 'cuda', 'cuda:1', 'mps' or a "
            "torch.device."
        ) from exc
    check_available(dev)
    return dev


def check_available(dev: torch.device) -> None:
    """Refuse a CUDA (or MPS) device this machine does not have, in one sentence.

    >>> check_available(torch.device("cpu"))
    """
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InvalidParameterError(
                f"The device {str(dev)!r} was asked for but this machine has no usable CUDA GPU "
                "(or this PyTorch was built without CUDA); use device='cpu' (--device cpu)."
            )
        if dev.index is not None and dev.index >= count:
            raise InvalidParameterError(
                f"The device {str(dev)!r} does not exist: this machine has {count} CUDA GPU(s), "
                f"cuda:0 to cuda:{count - 1}; pick one of those."
            )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InvalidParameterError(
                "The device 'mps' was asked for but Apple's Metal backend is not available "
                "here; use device='cpu' (--device cpu)."
            )


def tf32_policy(dev: torch.device) -> dict[str, dict[str, bool]]:
    """On CUDA, ``{"tf32": {"matmul": ..., "cudnn": ...}}``: whether PyTorch lets float32 matrix
    products and cuDNN convolutions run in TF32 (PyTorch's defaults: products no, convolutions
    yes). TF32 keeps 10 bits of mantissa: on an H200 the ResNet-20 losses differed from the
    CPU's by 3-8e-4 (relative) with cuDNN's TF32 and by 5e-7 without. Empty elsewhere.

    >>> tf32_policy(torch.device("cpu"))
    {}
    >>> sorted(tf32_policy(torch.device("cuda"))["tf32"])
    ['cudnn', 'matmul']
    """
    if dev.type != "cuda":
        return {}
    return {
        "tf32": {
            "matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn": bool(torch.backends.cudnn.allow_tf32),
        }
    }

"""Loading checkpoints safely: ``weights_only=True`` unless the caller explicitly opts out.

Examples
--------
>>> import torch, tempfile, os
>>> from losstopo.checkpoints import load_state_dict
>>> model = torch.nn.Linear(2, 1)
>>> path = os.path.join(tempfile.mkdtemp(), "m.pt")
>>> torch.save(model.state_dict(), path)
>>> sorted(load_state_dict(path))
['bias', 'weight']
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError
from .space import ParameterSpace


def load_state_dict(
    path: str | os.PathLike[str], allow_pickle: bool = False
) -> dict[str, torch.Tensor]:
    """Read a state_dict (or a dict holding one under ``"state_dict"``/``"model"``) from ``path``.

    With ``allow_pickle=False`` (the default) the file is read with ``weights_only=True``, which
    cannot run code; a file that needs more is refused with instructions.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"Checkpoint {path} is a directory; pass a .pt file saved with torch.save (a folder of "
            "checkpoints is a --trajectory)."
        )
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist; check the path.")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"Checkpoint {path} is empty (0 bytes); it was not written completely. Save it again "
            "with torch.save(model.state_dict(), path)."
        )
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):  # zip, or old pickle
        raise CheckpointError(
            f"Checkpoint {path} is not a file written by torch.save (it starts with {head!r}); "
            "pass a file saved with torch.save(model.state_dict(), path)."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Checkpoint {path} holds Python objects beyond tensors, so it cannot be read with "
            "weights_only=True. If you trust the file, opt in with allow_pickle=True "
            "(--allow-pickle on the command line), or re-save it as model.state_dict()."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a text file gives KeyError, others other errors
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"Checkpoint {path} cannot be read as a PyTorch file ({reason}); it may be corrupt or "
            "of another format. Pass a file saved with torch.save(model.state_dict(), path)."
        ) from exc
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"Checkpoint {path} is not a state_dict (a mapping of names to tensors); save "
            "model.state_dict()."
        )
    return dict(obj)


def load_into(
    model: nn.Module, path: str | os.PathLike[str], allow_pickle: bool = False
) -> nn.Module:
    """Load a checkpoint into ``model`` after checking every tensor's name and shape.

    The first mismatching tensor is named in the error and the model is left untouched.
    """
    state = load_state_dict(path, allow_pickle=allow_pickle)
    space = ParameterSpace.from_module(model)
    space.check_state_dict(state, what=f"checkpoint {Path(path).name}")
    own = model.state_dict()
    for name, tensor in own.items():
        if name in state and tuple(state[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"Tensor {name!r} of checkpoint {Path(path).name} has shape "
                f"{tuple(state[name].shape)} but the model's has {tuple(tensor.shape)}."
            )
    missing = [n for n in own if n not in state]
    if missing:
        raise CheckpointError(
            f"Checkpoint {Path(path).name} has no tensor {missing[0]!r} that the model has; it was "
            "saved from another architecture."
        )
    extra = [n for n in state if n not in own]
    if extra:
        raise CheckpointError(
            f"Checkpoint {Path(path).name} has a tensor {extra[0]!r} that the model does not have; "
            "it was saved from another architecture. Load it into the model it came from."
        )
    model.load_state_dict(state, strict=True)
    return model

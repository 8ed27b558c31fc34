"""`ParameterSpace`: a model's trainable tensors as one flat vector, keyed by state_dict names.

Examples
--------
>>> import torch
>>> from losstopo import ParameterSpace
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
>>> space = ParameterSpace.from_module(model)
>>> space.names
('0.weight', '0.bias', '1.weight', '1.bias')
>>> space.n_params
12
>>> vec = space.flatten(model)
>>> space.unflatten(vec)["0.weight"].shape
torch.Size([2, 3])
>>> space.buffer_names
('1.running_mean', '1.running_var', '1.num_batches_tracked')
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from .errors import CheckpointError, InvalidTypeError, ShapeMismatchError, validate_choice

Include = Literal["all", "weights"]


@dataclass(frozen=True)
class ParameterSpace:
    """Which of a model's tensors form the parameter vector, and where each one sits in it.

    Attributes
    ----------
    names, shapes : tuples
        State-dict names and shapes of the tensors in the vector, in model order.
    offsets : tuple of int
        Start of each tensor in the flat vector.
    buffer_names : tuple of str
        Buffers (BatchNorm running statistics) tracked alongside but not part of the vector.
    excluded : tuple of str
        Trainable tensors left out of the vector (``include="weights"`` leaves out 1-D tensors).
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    buffer_names: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    include: str = "all"

    @classmethod
    def from_module(cls, model: nn.Module, include: Include = "all") -> ParameterSpace:
        """The parameter space of ``model``.

        Parameters
        ----------
        include : {"all", "weights"}
            ``"all"``: every trainable parameter. ``"weights"``: only tensors with more than one
            dimension (leaves out biases and BatchNorm scales/shifts, which stay at their values).
        """
        if not isinstance(model, nn.Module):
            raise InvalidTypeError(
                f"ParameterSpace.from_module needs a torch.nn.Module; got {type(model).__name__}."
            )
        validate_choice(include, "include", ("all", "weights"))
        names, shapes, offsets, excluded = [], [], [], []
        offset = 0
        for name, p in model.named_parameters():
            if not p.requires_grad:
                excluded.append(name)
                continue
            if include == "weights" and p.dim() <= 1:
                excluded.append(name)
                continue
            names.append(name)
            shapes.append(tuple(p.shape))
            offsets.append(offset)
            offset += p.numel()
        buffers = tuple(name for name, _ in model.named_buffers())
        return cls(tuple(names), tuple(shapes), tuple(offsets), buffers, tuple(excluded), include)

    # ------------------------------------------------------------------ sizes
    @property
    def numels(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s)) for s in self.shapes)

    @property
    def n_params(self) -> int:
        """Length of the flat vector."""
        return sum(self.numels)

    def __len__(self) -> int:
        return self.n_params

    def slices(self) -> dict[str, slice]:
        """Name -> slice of the flat vector."""
        return {
            n: slice(o, o + k)
            for n, o, k in zip(self.names, self.offsets, self.numels, strict=True)
        }

    # ------------------------------------------------------------------ conversions
    def flatten(self, source: nn.Module | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The flat vector of a model's (or a state_dict's) tensors, detached, on their device."""
        tensors = self._tensors_of(source)
        if not tensors:
            return torch.zeros(0)
        return torch.cat([t.detach().reshape(-1) for t in tensors])

    def unflatten(self, vec: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        """Name -> tensor views into ``vec`` (no copy)."""
        if isinstance(vec, np.ndarray):
            vec = torch.from_numpy(vec)
        if vec.dim() != 1 or vec.numel() != self.n_params:
            raise ShapeMismatchError(
                f"Expected a flat vector of {self.n_params} parameters for this space; got shape "
                f"{tuple(vec.shape)}. Flatten with the same ParameterSpace that built the vector."
            )
        return {
            n: vec[o : o + k].view(s)
            for n, o, k, s in zip(self.names, self.offsets, self.numels, self.shapes, strict=True)
        }

    def check_state_dict(self, state: Mapping[str, torch.Tensor], what: str = "checkpoint") -> None:
        """Raise :class:`CheckpointError` naming the first tensor missing or of another shape."""
        for name, shape in zip(self.names, self.shapes, strict=True):
            if name not in state:
                raise CheckpointError(
                    f"The {what} has no tensor {name!r} that the model has; it was saved from "
                    "another architecture. Load it into the model it came from."
                )
            got = tuple(state[name].shape)
            if got != shape:
                raise CheckpointError(
                    f"Tensor {name!r} of the {what} has shape {got} but the model's has {shape}; "
                    "it was saved from another architecture or configuration."
                )

    def _tensors_of(self, source: nn.Module | Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        if isinstance(source, nn.Module):
            params = dict(source.named_parameters())
            missing = [n for n in self.names if n not in params]
            if missing:
                raise ShapeMismatchError(
                    f"The model has no parameter {missing[0]!r} of this ParameterSpace; build the "
                    "space from the same architecture."
                )
            state = {n: params[n] for n in self.names}
            self.check_state_dict(state, what="model")
            return [state[n] for n in self.names]
        if isinstance(source, Mapping):
            self.check_state_dict(source)
            return [source[n] for n in self.names]
        raise InvalidTypeError(
            f"Expected a torch.nn.Module or a state_dict mapping; got {type(source).__name__}."
        )

    def fingerprint(self) -> str:
        """A short hash of the names and shapes (the architecture as this space sees it)."""
        h = hashlib.sha256()
        for n, s in zip(self.names, self.shapes, strict=True):
            h.update(f"{n}:{s};".encode())
        h.update(("buffers:" + ",".join(self.buffer_names)).encode())
        return h.hexdigest()[:16]


def tensor_hash(t: torch.Tensor | np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of a tensor's bytes, dtype and shape."""
    arr = (
        t.detach().cpu().contiguous().numpy()
        if isinstance(t, torch.Tensor)
        else np.ascontiguousarray(t)
    )
    h = hashlib.sha256()
    h.update(str(arr.dtype).encode())
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:16]

"""Directions held per tensor, as Li et al.'s code writes them, turned into flat vectors.

Li et al.'s ``net_plotter`` keeps a direction as a list with one array per ``model.parameters()``
entry (frozen parameters included), or per ``model.state_dict()`` entry for its
``dir_type="states"`` (BatchNorm running statistics included), and losstopo users often hold one as a dict keyed by
parameter name. :func:`flatten_directions` turns either (or a list of them, one per direction)
into the ``(n_components, n_params)`` rows of :class:`~losstopo.ParameterSpace` order, saying
exactly which tensor does not fit when one does not.

Examples
--------
>>> import torch
>>> model = torch.nn.Linear(3, 2)
>>> per_tensor = [torch.ones(2, 3), torch.zeros(2)]              # one direction, Li's layout
>>> by_name = {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}
>>> flat = flatten_directions(model, [per_tensor, by_name])
>>> flat.rows.shape, flat.rows[0].tolist() == flat.rows[1].tolist(), flat.dropped
((2, 8), True, ())
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InvalidTypeError, ShapeMismatchError
from ..space import ParameterSpace


def _array(value: Any) -> np.ndarray | None:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    if isinstance(value, np.ndarray):
        return value.astype(np.float64, copy=False)
    return None


def is_per_tensor(directions: Any) -> bool:
    """Whether ``directions`` is one direction or a list of directions held per tensor.

    Examples
    --------
    >>> import numpy as np
    >>> is_per_tensor({"weight": np.zeros((2, 3))}), is_per_tensor(np.zeros((2, 8)))
    (True, False)
    >>> is_per_tensor([np.zeros((2, 3)), np.zeros(2)]), is_per_tensor([np.zeros(8), np.zeros(8)])
    (True, False)
    """
    if isinstance(directions, Mapping):
        return True
    if not isinstance(directions, (list, tuple)) or not directions:
        return False
    first = directions[0]
    if isinstance(first, (Mapping, list, tuple)):
        return True
    # a list of arrays: per tensor unless every item is a flat vector of the same length
    arrays = [_array(d) for d in directions]
    if any(a is None for a in arrays):
        return False
    shapes = {a.shape for a in arrays if a is not None}
    return not (len(shapes) == 1 and next(iter(shapes)) and len(next(iter(shapes))) == 1)


def _one_direction(
    model: nn.Module, space: ParameterSpace, direction: Any, index: int
) -> tuple[dict[str, np.ndarray], list[str]]:
    """One direction (dict by name, or list in ``model.parameters()`` or state_dict order) as
    ``name -> array`` over the trainable parameters and floating-point buffers it moves."""
    params = dict(model.named_parameters())
    buffers = {k: v for k, v in model.named_buffers() if v.is_floating_point()}
    shapes = {**{k: tuple(v.shape) for k, v in params.items()},
              **{k: tuple(v.shape) for k, v in buffers.items()}}  # fmt: skip
    where = f"direction {index}"
    if isinstance(direction, Mapping):
        unknown = [k for k in direction if k not in shapes]
        if unknown:
            raise ShapeMismatchError(
                f"The {where} has a tensor {unknown[0]!r} that is neither a parameter nor a "
                "floating-point buffer of the model; key the direction by the names of "
                "model.state_dict()."
            )
        missing = [n for n in space.names if n not in direction]
        if missing:
            raise ShapeMismatchError(
                f"The {where} has no tensor for the parameter {missing[0]!r}; give one entry per "
                "trainable parameter (zeros for a tensor that should not move)."
            )
        tensors = dict(direction)
    elif isinstance(direction, (list, tuple)):
        order = list(params)
        states = list(model.state_dict())
        if len(direction) == len(order):
            tensors = dict(zip(order, direction, strict=True))
        elif len(direction) == len(states):  # Li et al.'s dir_type="states"
            tensors = {
                k: d for k, d in zip(states, direction, strict=True) if k in shapes
            }  # integer buffers (num_batches_tracked) do not move
        else:
            raise ShapeMismatchError(
                f"The {where} holds {len(direction)} tensors but the model has {len(order)} "
                f"parameters ({len(states)} state_dict entries); give one array per "
                "model.parameters() entry, or per model.state_dict() entry, in that order."
            )
    else:
        raise InvalidTypeError(
            f"The {where} is a {type(direction).__name__}; give a flat vector, a list with one "
            "array per model.parameters() entry, or a dict keyed by parameter name."
        )
    out, dropped = {}, []
    for name, value in tensors.items():
        arr = _array(value)
        if arr is None:
            raise InvalidTypeError(
                f"Tensor {name!r} of the {where} is a {type(value).__name__}; give a numpy array "
                "or a torch tensor."
            )
        if arr.shape != shapes[name]:
            raise ShapeMismatchError(
                f"Tensor {name!r} of the {where} has shape {arr.shape} but the model's has "
                f"{shapes[name]}; build the direction from this model."
            )
        if name in params and name not in space.names:
            if np.any(arr != 0):
                dropped.append(name)
            continue
        out[name] = arr
    return out, dropped


@dataclass(frozen=True)
class PerTensorDirections:
    """Directions given per tensor, flattened: parameter rows and the buffers they move."""

    rows: np.ndarray  # (n_components, n_params), ParameterSpace order
    buffer_names: tuple[str, ...]  # floating-point buffers moved, in model.named_buffers() order
    buffer_rows: np.ndarray  # (n_components, n_buffer_entries)
    dropped: tuple[str, ...]  # frozen parameters whose (non-zero) entries were dropped


def flatten_directions(model: nn.Module, directions: Any) -> PerTensorDirections:
    """Per-tensor directions as ``(n_components, n_params)`` rows plus the buffers they move.

    ``directions`` is one direction or a list of them, each a dict ``name -> array`` or a list
    with one array per ``model.parameters()`` entry (Li et al.'s layout, frozen parameters
    included) or per ``model.state_dict()`` entry (Li's ``dir_type="states"``). Frozen
    parameters are not part of losstopo's parameter space, so their entries are dropped; when
    they are not zero a ``UserWarning`` says so, since Li et al.'s code moves them too.
    Floating-point buffers (BatchNorm running statistics) with a non-zero entry in some direction
    are kept in ``buffer_names``/``buffer_rows``, zeros where a direction leaves them out.
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(
            "Directions given per tensor need the model as the centre (PlaneProjector(model, "
            f"directions)) to know the tensors' names and order; got a {type(model).__name__}."
        )
    space = ParameterSpace.from_module(model)
    single = isinstance(directions, Mapping) or (
        isinstance(directions, (list, tuple))
        and bool(directions)
        and not isinstance(directions[0], (Mapping, list, tuple))
    )
    items: Sequence[Any] = [directions] if single else directions
    parts, dropped = [], []
    for i, d in enumerate(items):
        tensors, frozen = _one_direction(model, space, d, i)
        parts.append(tensors)
        dropped += [n for n in frozen if n not in dropped]
    if dropped:
        warnings.warn(
            f"The directions move the frozen parameter(s) {', '.join(dropped)}, which losstopo "
            "keeps fixed (requires_grad=False); those components are dropped, so the plane "
            "differs from one that moves them.",
            UserWarning,
            stacklevel=3,
        )
    rows = np.stack(
        [
            np.concatenate([t[n].reshape(-1) for n in space.names]) if space.names else np.zeros(0)
            for t in parts
        ]
    )
    buffers = {k: v for k, v in model.named_buffers() if v.is_floating_point()}
    moved = tuple(k for k in buffers if any(k in t and np.any(t[k] != 0) for t in parts))
    buffer_rows = np.stack(
        [
            np.concatenate([t.get(k, np.zeros(tuple(buffers[k].shape))).reshape(-1) for k in moved])
            if moved
            else np.zeros(0)
            for t in parts
        ]
    )
    return PerTensorDirections(rows, moved, buffer_rows, tuple(dropped))

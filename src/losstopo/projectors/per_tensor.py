"""Directions held per tensor, as Li et al.'s code writes them, turned into flat vectors.

Li et al.'s ``net_plotter`` keeps a direction as a list with one array per ``model.parameters()``
entry (frozen parameters included), and losstopo users often hold one as a dict keyed by
parameter name. :func:`flatten_directions` turns either (or a list of them, one per direction)
into the ``(n_components, n_params)`` rows of :class:`~losstopo.ParameterSpace` order, saying
exactly which tensor does not fit when one does not.

Examples
--------
>>> import torch
>>> model = torch.nn.Linear(3, 2)
>>> per_tensor = [torch.ones(2, 3), torch.zeros(2)]              # one direction, Li's layout
>>> by_name = {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}
>>> rows, dropped = flatten_directions(model, [per_tensor, by_name])
>>> rows.shape, rows[0].tolist() == rows[1].tolist(), dropped
((2, 8), True, [])
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
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
) -> tuple[np.ndarray, list[str]]:
    """One direction (dict by name, or list in ``model.parameters()`` order) as a flat row."""
    params = dict(model.named_parameters())
    order = list(params)
    where = f"direction {index}"
    if isinstance(direction, Mapping):
        unknown = [k for k in direction if k not in params]
        if unknown:
            buffers = dict(model.named_buffers())
            hint = (
                " (a buffer: directions over BatchNorm statistics are dir_type='states' "
                "directions, not supported by PlaneProjector)"
                if unknown[0] in buffers
                else ""
            )
            raise ShapeMismatchError(
                f"The {where} has a tensor {unknown[0]!r} that the model has no parameter of"
                f"{hint}; key the direction by the names of model.named_parameters()."
            )
        missing = [n for n in space.names if n not in direction]
        if missing:
            raise ShapeMismatchError(
                f"The {where} has no tensor for the parameter {missing[0]!r}; give one entry per "
                "trainable parameter (zeros for a tensor that should not move)."
            )
        tensors = dict(direction)
    elif isinstance(direction, (list, tuple)):
        n_states = len(model.state_dict())
        if len(direction) != len(order):
            extra = (
                " (one per state_dict entry, as Li et al.'s dir_type='states' writes; give the "
                "'weights' directions, one per model.parameters() entry)"
                if len(direction) == n_states and n_states != len(order)
                else ""
            )
            raise ShapeMismatchError(
                f"The {where} holds {len(direction)} tensors but the model has {len(order)} "
                f"parameters{extra}; give one array per model.parameters() entry, in that order."
            )
        tensors = dict(zip(order, direction, strict=True))
    else:
        raise InvalidTypeError(
            f"The {where} is a {type(direction).__name__}; give a flat vector, a list with one "
            "array per model.parameters() entry, or a dict keyed by parameter name."
        )
    parts, dropped = [], []
    for name, value in tensors.items():
        arr = _array(value)
        if arr is None:
            raise InvalidTypeError(
                f"Tensor {name!r} of the {where} is a {type(value).__name__}; give a numpy array "
                "or a torch tensor."
            )
        expected = tuple(params[name].shape)
        if arr.shape != expected:
            raise ShapeMismatchError(
                f"Tensor {name!r} of the {where} has shape {arr.shape} but the model's parameter "
                f"has {expected}; build the direction from this model."
            )
        if name not in space.names and np.any(arr != 0):
            dropped.append(name)
    for name in space.names:
        parts.append(_array(tensors[name]).reshape(-1))  # type: ignore[union-attr]
    return np.concatenate(parts) if parts else np.zeros(0), dropped


def flatten_directions(model: nn.Module, directions: Any) -> tuple[np.ndarray, list[str]]:
    """Per-tensor directions as ``(n_components, n_params)`` rows, and the frozen tensors dropped.

    ``directions`` is one direction or a list of them, each a dict ``name -> array`` or a list
    with one array per ``model.parameters()`` entry (Li et al.'s layout, frozen parameters
    included). Frozen parameters are not part of losstopo's parameter space, so their entries
    are dropped; when they are not zero a ``UserWarning`` says so, since Li et al.'s code moves
    them too.
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
    rows, dropped = [], []
    for i, d in enumerate(items):
        row, frozen = _one_direction(model, space, d, i)
        rows.append(row)
        dropped += [n for n in frozen if n not in dropped]
    if dropped:
        warnings.warn(
            f"The directions move the frozen parameter(s) {', '.join(dropped)}, which losstopo "
            "keeps fixed (requires_grad=False); those components are dropped, so the plane "
            "differs from one that moves them.",
            UserWarning,
            stacklevel=3,
        )
    return np.stack(rows), dropped

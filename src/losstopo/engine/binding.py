"""A private copy of the model whose parameters are views into one flat buffer.

Setting a point writes its parameters into that buffer, fresh from the centre for a linear decoder
(``center + sum_i a_i d_i``: no cumulative walking, so no rounding drift), or as the decoded vector
for any other decoder. The caller's model is never touched.

A *linear decoder* is any object with ``center`` ``(n_params,)`` and ``components``
``(n_components, n_params)`` arrays; any other decoder is a callable
``coords (m, n_components) -> params (m, n_params)``.

Examples
--------
>>> import numpy as np, torch
>>> from losstopo import ParameterSpace
>>> model = torch.nn.Linear(2, 1)
>>> space = ParameterSpace.from_module(model)
>>> binding = Binding(model, space, torch.device("cpu"))
>>> binding.write(np.arange(3.0))
>>> binding.net.weight.tolist(), binding.net.bias.tolist()
([[0.0, 1.0]], [2.0])
>>> bool(torch.equal(model.weight, binding.net.weight))  # the caller's model is untouched
False
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InvalidParameterError, InvalidTypeError
from ..space import ParameterSpace


def is_linear_decoder(decoder: Any) -> bool:
    """Whether ``decoder`` is ``center + coords @ components`` (has both arrays)."""
    return hasattr(decoder, "center") and hasattr(decoder, "components")


class LinearTensors:
    """A linear decoder's centre and components as tensors of the model's dtype on the device."""

    def __init__(self, decoder: Any, dtype: torch.dtype, device: torch.device):
        self.center = torch.as_tensor(np.asarray(decoder.center), dtype=dtype, device=device)
        self.components = torch.as_tensor(
            np.asarray(decoder.components), dtype=dtype, device=device
        )
        self.rows = list(self.components)  # one view per direction, made once

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def moving(self, space: ParameterSpace) -> set[str]:
        """The names of the parameters some direction moves (nonzero in a component)."""
        nonzero = (self.components != 0).any(dim=0)
        return {name for name, sl in space.slices().items() if bool(nonzero[sl].any())}

    def stacked(self, coords: np.ndarray) -> torch.Tensor:
        """The parameter vectors at the rows of ``coords``: ``(m, n_params)``."""
        a = torch.as_tensor(coords, dtype=self.center.dtype, device=self.center.device)
        return self.center[None, :] + a @ self.components


class Binding:
    """The private copy of ``model`` on ``device``, its parameters views into ``flat``."""

    def __init__(self, model: nn.Module, space: ParameterSpace, device: torch.device):
        try:
            self.net = copy.deepcopy(model).to(device)
        except RuntimeError as exc:
            raise InvalidTypeError(
                f"The model cannot be copied for evaluation ({exc}). Remove torch.nn.utils."
                "weight_norm hooks (use torch.nn.utils.parametrizations.weight_norm) or other "
                "non-leaf parameters."
            ) from exc
        self.net.eval()
        self.space = space
        self.device = device
        ref = space.flatten(self.net)
        self.dtype = ref.dtype
        self.flat = ref.detach().clone()
        params = dict(self.net.named_parameters())
        for name, view in space.unflatten(self.flat).items():
            params[name].requires_grad_(False)
            params[name].data = view
        for p in self.net.parameters():
            p.requires_grad_(False)

    def write_linear(self, linear: LinearTensors, coords: np.ndarray) -> None:
        """``center + sum_i coords_i components_i`` into the buffer, fresh from the centre."""
        fresh = True  # the first term writes center + a d straight into the buffer
        for a, row in zip(np.asarray(coords, dtype=np.float64).tolist(), linear.rows, strict=True):
            if a != 0.0:
                if fresh:
                    torch.add(linear.center, row, alpha=a, out=self.flat)
                    fresh = False
                else:
                    self.flat.add_(row, alpha=a)
        if fresh:
            self.flat.copy_(linear.center)

    def write(self, vector: np.ndarray | torch.Tensor) -> None:
        """A flat parameter vector into the buffer."""
        self.flat.copy_(torch.as_tensor(vector, dtype=self.dtype))


def moved_buffers(
    net: nn.Module, spec: Any, bn: str, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(buffer, centre, components)`` of each buffer of ``net`` a states plane moves
    (``spec``: the decoder's ``buffers``, ``(names, centre, components)``, or ``None``)."""
    if spec is None:
        return []
    if bn == "recompute":
        raise InvalidParameterError(
            "These directions move the BatchNorm running statistics (dir_type='states'), "
            "which bn='recompute' would re-estimate; use bn='eval' with them."
        )
    names, center, comps = spec
    own = dict(net.named_buffers())
    out, start = [], 0
    for name in names:
        buf = own[name]
        n = buf.numel()
        c = torch.as_tensor(center[start : start + n], dtype=buf.dtype, device=device)
        d = torch.as_tensor(comps[:, start : start + n], dtype=buf.dtype, device=device)
        out.append((buf, c.view(buf.shape), d.view(-1, *buf.shape)))
        start += n
    return out

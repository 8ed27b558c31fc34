"""The first-layer split: a linear decoder's first layer computed once per batch, not per point.

For a linear decoder and an ``nn.Sequential`` whose first parametrised layer is ``Linear``/``Conv``,
that layer's output is affine in the coordinates, ``W(a)x + b(a) = (W0 x + b0) + sum_i a_i
(D_i x + db_i)``: the terms are computed once for every batch of the data, and each point only
combines them before running the rest of the network.

Examples
--------
>>> import types
>>> import numpy as np, torch
>>> from losstopo import ParameterSpace
>>> from losstopo.data import EvalData
>>> from losstopo.engine.binding import Binding, LinearTensors
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
>>> space = ParameterSpace.from_module(model)
>>> center = space.flatten(model).double().numpy()
>>> decoder = types.SimpleNamespace(center=center, components=np.ones((1, center.size)))
>>> binding = Binding(model, space, torch.device("cpu"))
>>> linear = LinearTensors(decoder, binding.dtype, binding.device)
>>> data = EvalData.from_any((torch.randn(5, 3), torch.zeros(5, dtype=torch.long)), "cross_entropy")
>>> split = FirstLayerSplit.build(binding.net, binding.net, space, linear, data, 5, binding.device)
>>> (fn, h, _), = split.batches(np.array([0.5]))
>>> binding.write_linear(linear, np.array([0.5]))
>>> bool(torch.allclose(fn(h), binding.net(data.inputs)))
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import EvalData
from ..space import ParameterSpace
from .binding import LinearTensors
from .fold import is_plain_layer

LayerFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


class FirstLayerSplit:
    """Precomputed first-layer terms ``W0 x + b0`` and ``D_i x + db_i`` for a linear decoder."""

    def __init__(
        self,
        layer_fn: LayerFn,
        tail: nn.Sequential,
        terms: list[tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]],
    ):
        self.layer_fn = layer_fn
        self.tail = tail
        self.terms = terms  # per batch: (base, [term_i], targets)
        mods = list(tail)  # not children(): a module used twice must stay twice
        self.relu_first = bool(mods) and type(mods[0]) is nn.ReLU
        self.tail_after_relu = nn.Sequential(*mods[1:]) if self.relu_first else tail

    @classmethod
    def build(
        cls,
        net: nn.Module,
        named: nn.Module,
        space: ParameterSpace,
        linear: LinearTensors,
        data: EvalData,
        batch_size: int,
        device: torch.device,
        memory_cap: int = 2**30,
    ) -> FirstLayerSplit | None:
        """The split of ``net`` (``named``: the module whose parameter names ``space`` uses, the
        same as ``net`` or the network ``net`` was folded from), or ``None`` when it does not
        apply or its terms would exceed ``memory_cap`` bytes."""
        if not isinstance(net, nn.Sequential):
            return None
        mods = list(net)
        first = next((i for i, m in enumerate(mods) if any(True for _ in m.parameters())), None)
        if first is None or first == len(mods) - 1:
            return None
        if any(any(True for _ in m.buffers()) for m in mods[:first]):
            return None
        layer = mods[first]
        if not is_plain_layer(layer):
            return None  # a subclass with its own forward, hooks or parametrizations
        layer_fn = _layer_fn(layer)
        if layer_fn is None:
            return None
        prefix = nn.Sequential(*mods[:first])
        tail = nn.Sequential(*mods[first + 1 :])
        weight, bias = layer.weight, layer.bias
        assert isinstance(weight, torch.Tensor) and (bias is None or isinstance(bias, torch.Tensor))
        pname = {id(p): n for n, p in named.named_parameters()}  # names of the original
        if id(weight) not in pname or (bias is not None and id(bias) not in pname):
            return None  # e.g. a parametrized weight (weight_norm): computed, not a parameter
        w_name = pname[id(weight)]
        b_name = pname[id(bias)] if bias is not None else None
        slices = space.slices()
        if w_name not in slices:
            return None
        shape_w = weight.shape

        def part(vec: torch.Tensor, name: str | None, shape: Any) -> torch.Tensor | None:
            if name is None:
                return None
            if name in slices:
                return vec[slices[name]].view(shape)
            return None

        center_w = linear.center[slices[w_name]].view(shape_w)
        center_b = part(linear.center, b_name, (shape_w[0],))
        if center_b is None and bias is not None:
            center_b = bias.detach().clone()  # bias excluded from the space: stays fixed
        dirs = [
            (
                linear.components[k][slices[w_name]].view(shape_w),
                part(linear.components[k], b_name, (shape_w[0],)),
            )
            for k in range(linear.n_components)
        ]
        terms = []
        nbytes = 0
        with torch.inference_mode():
            for x, y in data.batches(batch_size, device):
                z = prefix(x)
                base = layer_fn(z, center_w, center_b)
                extra = [layer_fn(z, dw, db) for dw, db in dirs]
                nbytes += base.element_size() * base.numel() * (1 + len(extra))
                if nbytes > memory_cap:
                    return None
                terms.append((base, extra, y))
        return cls(layer_fn, tail, terms)

    def batches(
        self, coords: np.ndarray
    ) -> Iterator[tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor]]:
        """``(rest of the network, first-layer output, targets)`` per batch at ``coords``."""
        for base, extra, y in self.terms:
            h: torch.Tensor | None = None
            for a, term in zip(coords, extra, strict=True):
                if a != 0.0:
                    if h is None:
                        h = torch.add(base, term, alpha=float(a))
                    else:
                        h.add_(term, alpha=float(a))
            if h is None:
                # the centre: the tail may work in place (ReLU(inplace=True)), never on the cache
                yield self.tail, base.clone(), y
            elif self.relu_first:
                # h is a private buffer: the tail's leading ReLU can run in place.
                yield self.tail_after_relu, h.relu_(), y
            else:
                yield self.tail, h, y


def _layer_fn(layer: nn.Module) -> LayerFn | None:
    """The layer's forward as a function of input, weight and bias (Linear and zero-padded Conv)."""
    if type(layer) is nn.Linear:

        def linear_fn(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
            return F.linear(z, w, b)

        return linear_fn
    if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and layer.padding_mode == "zeros":
        conv = layer  # exact type (is_plain_layer)

        def conv_fn(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
            return conv._conv_forward(z, w, b)

        return conv_fn
    return None

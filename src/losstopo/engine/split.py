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
>>> (fn, h, _), = split.batches(np.array([0.5]), 5)
>>> binding.write_linear(linear, np.array([0.5]))
>>> bool(torch.allclose(fn(h), binding.net(data.inputs)))
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import EvalData
from ..space import ParameterSpace
from .binding import LinearTensors
from .fold import has_hooks, is_plain_layer

LayerFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


class SplitTerms:
    """The first layer's terms over the whole data, ``base = W0 x + b0`` and ``term_i = D_i x +
    db_i`` (``(n_samples, ...)`` each), and the targets; sliced into batches of any size."""

    def __init__(self, base: torch.Tensor, extra: list[torch.Tensor], targets: torch.Tensor):
        self.base = base
        self.extra = extra
        self.targets = targets
        # One private output buffer per batch, reused at every point, when nothing outside the
        # engine can hold on to it (no hooks in the rest of the network): no allocation per point.
        self.reuse = False
        self._buffers: dict[tuple[int, int], torch.Tensor] = {}
        # Per batch, ``base + sum_i a_i term_i`` over every direction but the last, with the
        # coefficients it was computed for: grid points in C order (last axis fastest) share
        # them along a row, so a point adds one term, not all of them.
        self._partials: dict[tuple[int, int], tuple[tuple[float, ...], torch.Tensor]] = {}
        self._batch_size = 0  # the batch size the buffers and partial sums are for

    @classmethod
    def compute(
        cls,
        inputs: Iterator[tuple[torch.Tensor, torch.Tensor]],
        n_samples: int,
        layer_fn: LayerFn,
        center: tuple[torch.Tensor, torch.Tensor | None],
        dirs: list[tuple[torch.Tensor, torch.Tensor | None]],
        memory_cap: int,
    ) -> SplitTerms | None:
        """The terms of ``layer_fn`` over ``inputs`` (batches of the first layer's input and the
        targets), or ``None`` when they would take more than ``memory_cap`` bytes."""
        parts: list[list[torch.Tensor]] = [[] for _ in range(1 + len(dirs))]
        ys = []
        with torch.inference_mode():
            for z, y in inputs:
                outs = [layer_fn(z, *center)] + [layer_fn(z, dw, db) for dw, db in dirs]
                held = len(outs) + (len(outs) > 2)  # the terms, and a partial sum of them
                per_sample = outs[0].element_size() * outs[0][0].numel() * held
                if per_sample * n_samples > memory_cap:
                    return None
                for part, out in zip(parts, outs, strict=True):
                    part.append(out)
                ys.append(y)
            full = [p[0] if len(p) == 1 else torch.cat(p) for p in parts]
            targets = ys[0] if len(ys) == 1 else torch.cat(ys)
        return cls(full[0], full[1:], targets)

    def batches(
        self, coords: np.ndarray, batch_size: int
    ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(start, h, targets)`` per batch: ``h`` is the engine's own tensor (the tail may
        overwrite it): fresh, or the batch's private buffer when :attr:`reuse` is set.

        ``h = ((base + a_1 term_1) + a_2 term_2) + ...``, the terms with a non-zero coefficient
        added in order, whether or not the sum over all but the last comes from the cache."""
        n = len(self.base)
        if batch_size != self._batch_size:  # another batch size: the old buffers are not needed
            self._buffers.clear()
            self._partials.clear()
            self._batch_size = batch_size
        weights = np.asarray(coords, dtype=np.float64).tolist()
        last = len(self.extra) - 1
        for i in range(0, n, batch_size):
            whole = i == 0 and batch_size >= n  # no slicing: one batch of all the data
            base = self.base if whole else self.base[i : i + batch_size]
            out = self._buffer(i, base) if self.reuse else None
            partial = self._partial(i, base, weights[:last], batch_size, whole)
            a = weights[last] if last >= 0 else 0.0
            if a != 0.0:
                term = self.extra[last] if whole else self.extra[last][i : i + batch_size]
                h = torch.add(partial, term, alpha=a, out=out)
            else:  # a copy: never the cache itself
                h = out.copy_(partial) if out is not None else partial.clone()
            yield i, h, self.targets if whole else self.targets[i : i + batch_size]

    def _partial(
        self, start: int, base: torch.Tensor, weights: list[float], batch_size: int, whole: bool
    ) -> torch.Tensor:
        """``base + sum_i a_i term_i`` over ``weights`` (all directions but the last), from the
        cache when the batch's last point had the same coefficients."""
        if not any(weights):
            return base
        key = (start, len(base))
        cached = self._partials.get(key)
        if cached is not None and cached[0] == tuple(weights):
            return cached[1]
        partial = cached[1] if cached is not None else torch.empty_like(base)
        fresh = True
        for a, term in zip(weights, self.extra, strict=False):
            if a != 0.0:
                part = term if whole else term[start : start + batch_size]
                if fresh:
                    torch.add(base, part, alpha=a, out=partial)
                    fresh = False
                else:
                    partial.add_(part, alpha=a)
        self._partials[key] = (tuple(weights), partial)
        return partial

    def _buffer(self, start: int, like: torch.Tensor) -> torch.Tensor:
        key = (start, len(like))
        if key not in self._buffers:
            self._buffers[key] = torch.empty_like(like)
        return self._buffers[key]


def affine_parts(
    layer: nn.Module,
    named: nn.Module,
    space: ParameterSpace,
    linear: LinearTensors,
) -> (
    tuple[tuple[torch.Tensor, torch.Tensor | None], list[tuple[torch.Tensor, torch.Tensor | None]]]
    | None
):
    """The weight and bias of ``layer`` at the decoder's centre and along each direction:
    ``((W0, b0), [(D_i, db_i), ...])``; ``None`` when the weight is not a parameter of the space
    (``named``: the module whose parameter names ``space`` uses)."""
    weight, bias = layer.weight, layer.bias
    assert isinstance(weight, torch.Tensor) and (bias is None or isinstance(bias, torch.Tensor))
    pname = {id(p): n for n, p in named.named_parameters()}  # names of the original
    if id(weight) not in pname or (bias is not None and id(bias) not in pname):
        return None  # e.g. a parametrized weight (weight_norm): computed, not a parameter
    slices = space.slices()
    w_name = pname[id(weight)]
    b_name = pname[id(bias)] if bias is not None else None
    if w_name not in slices:
        return None
    shape_w = weight.shape
    center_w = linear.center[slices[w_name]].view(shape_w)
    center_b: torch.Tensor | None = None
    if bias is not None:
        center_b = (
            linear.center[slices[b_name]].view(-1)
            if b_name in slices
            else bias.detach().clone()  # bias excluded from the space: stays fixed
        )
    dirs = [
        (
            linear.components[k][slices[w_name]].view(shape_w),
            linear.components[k][slices[b_name]].view(-1) if b_name in slices else None,
        )
        for k in range(linear.n_components)
    ]
    return (center_w, center_b), dirs


class FirstLayerSplit:
    """Precomputed first-layer terms ``W0 x + b0`` and ``D_i x + db_i`` for a linear decoder."""

    def __init__(self, tail: nn.Sequential, terms: SplitTerms):
        self.tail = tail
        self.terms = terms
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
        apply or its terms would exceed ``memory_cap`` bytes (``batch_size``: the batches the
        terms are computed in)."""
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
        layer_fn = layer_function(layer)
        parts = affine_parts(layer, named, space, linear)
        if layer_fn is None or parts is None:
            return None
        prefix = nn.Sequential(*mods[:first])
        tail = nn.Sequential(*mods[first + 1 :])
        inputs = ((prefix(x), y) for x, y in data.batches(batch_size, device))
        terms = SplitTerms.compute(inputs, data.n_samples, layer_fn, *parts, memory_cap)
        if terms is None:
            return None
        terms.reuse = not any(has_hooks(m) for m in tail.modules())
        return cls(tail, terms)

    def batches(
        self, coords: np.ndarray, batch_size: int
    ) -> Iterator[tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor]]:
        """``(rest of the network, first-layer output, targets)`` per batch at ``coords``."""
        for _, h, y in self.terms.batches(coords, batch_size):
            if self.relu_first:
                # h is a private buffer: the tail's leading ReLU can run in place.
                yield self.tail_after_relu, h.relu_(), y
            else:
                yield self.tail, h, y


def layer_function(layer: nn.Module) -> LayerFn | None:
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

"""Channels-last convolutions on a traced graph: one memory layout choice for every 2D convolution.

On CPUs, oneDNN runs a 2D convolution whose weight is channels-last (NHWC) without reordering
its input and output at every call; on a ResNet-20 that is 1.3-1.5x faster than the default
layout. The parameters of the engine's copy are views into one flat buffer (NCHW), so each
convolution gets a private channels-last copy of its weight, refreshed from the buffer before
every point like the folded BatchNorms (:class:`~.fold.FoldedLayer` keeps its folded weight in
the chosen layout itself). Values agree with the default layout to float rounding (another
summation order), so the layout is part of the evaluation strategy and chosen by timing.

:func:`wrap_convolutions` replaces every plain ``nn.Conv2d`` node of a traced graph by a
:class:`LayoutConv` (sharing the original module); :class:`Layout` switches all of them, and the
folded convolutions, between the two layouts.

Examples
--------
>>> import torch
>>> from losstopo.engine.graph import trace
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
>>> gm, _ = trace(net)
>>> layout = Layout([], wrap_convolutions(gm))
>>> layout.set(True)
>>> layout.refresh()
>>> x = torch.randn(2, 3, 8, 8)
>>> with torch.no_grad():
...     bool(torch.allclose(gm(x), net(x), atol=1e-6))
True
>>> layout.convolutions
1
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import fx, nn

from .fold import FoldedLayer, is_plain_layer


class LayoutConv(nn.Module):
    """A plain ``nn.Conv2d`` run with a private channels-last copy of its weight when on."""

    def __init__(self, layer: nn.Conv2d):
        super().__init__()
        self.layer = layer
        self.weight: torch.Tensor | None = None  # None: the layer's own weight (default layout)

    def set(self, channels_last: bool) -> None:
        weight = self.layer.weight
        self.weight = (
            torch.empty_like(weight.detach(), memory_format=torch.channels_last)
            if channels_last
            else None
        )

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the layer's current weight into the private one (when channels-last)."""
        if self.weight is not None:
            self.weight.copy_(self.layer.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.layer.weight if self.weight is None else self.weight
        return self.layer._conv_forward(x, weight, self.layer.bias)


def wrap_convolutions(gm: fx.GraphModule) -> list[LayoutConv]:
    """Replace every plain ``nn.Conv2d`` node of ``gm`` by a :class:`LayoutConv` (one per
    module, shared by its calls); the wrappers, empty when the graph has none."""
    wrapped: dict[int, tuple[str, LayoutConv]] = {}
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        assert isinstance(node.target, str)
        mod = gm.get_submodule(node.target)
        if type(mod) is not nn.Conv2d or not is_plain_layer(mod) or mod.padding_mode != "zeros":
            continue
        if id(mod) not in wrapped:
            name = f"losstopo_layout_{len(wrapped)}"
            wrapper = LayoutConv(mod)
            gm.add_submodule(name, wrapper)
            wrapped[id(mod)] = (name, wrapper)
        node.target = wrapped[id(mod)][0]
    if wrapped:
        gm.graph.lint()
        gm.recompile()
    return [wrapper for _, wrapper in wrapped.values()]


class Layout:
    """The memory layout of a graph's 2D convolutions: plain ones (``wrappers``) and folded
    ones (the :class:`~.fold.FoldedLayer` of a ``Conv2d`` among ``folded``)."""

    def __init__(self, folded: Sequence[FoldedLayer], wrappers: Sequence[LayoutConv]):
        self.folded = [f for f in folded if type(f.layer) is nn.Conv2d]
        self.wrappers = list(wrappers)
        self.channels_last = False

    @property
    def convolutions(self) -> int:
        """How many 2D convolutions the layout applies to."""
        return len(self.folded) + len(self.wrappers)

    def set(self, channels_last: bool) -> None:
        """Switch every convolution's weight to channels-last (``True``) or back; call
        :meth:`refresh` (and refresh the folded layers) before the next point."""
        self.channels_last = bool(channels_last)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        for folded in self.folded:
            folded.weight = torch.empty_like(folded.weight, memory_format=fmt)
        for wrapper in self.wrappers:
            wrapper.set(self.channels_last)

    def refresh(self) -> None:
        """Copy the current weights of the plain convolutions into their channels-last copies."""
        if self.channels_last:
            for wrapper in self.wrappers:
                wrapper.refresh()

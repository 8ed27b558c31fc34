"""The engine's private layouts on a traced graph: one choice, by timing, for every layer it fits.

- *Channels-last 2D convolutions.* On CPUs, oneDNN runs a 2D convolution whose weight is
  channels-last (NHWC) without reordering its input and output at every call; on a ResNet-20
  that is 1.3-1.5x faster than the default layout. The parameters of the engine's copy are views
  into one flat buffer (NCHW), so each convolution gets a private channels-last copy of its
  weight, refreshed from the buffer before every point like the folded BatchNorms
  (:class:`~.fold.FoldedLayer` keeps its folded weight in the chosen layout itself).
- *Padded linear outputs.* A linear layer with 6 to 15 outputs (a 10-class head) runs 1.5-2.3x
  slower in MKL's matrix product than one with 16 on a large batch (``docs/benchmarks.md``); the
  layer then runs with a private weight padded with zero rows to 16 outputs, and its output is
  a copy of the first columns of the padded one.

Values agree with the default layout to float rounding (another summation order), so the layout
is part of the evaluation strategy and chosen by timing.

:func:`wrap_layers` replaces every plain ``nn.Conv2d`` node of a traced graph by a
:class:`LayoutConv` and every plain ``nn.Linear`` with 6 to 15 outputs by a
:class:`PaddedLinear` (sharing the original module); :class:`Layout` switches all of them, and
the folded convolutions, between the default layout and the private ones.

Examples
--------
>>> import torch
>>> from losstopo.engine.graph import trace
>>> net = torch.nn.Sequential(
...     torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 10)
... ).eval()
>>> gm, _ = trace(net)
>>> layout = Layout([], *wrap_layers(gm))
>>> layout.set(True)
>>> layout.refresh()
>>> x = torch.randn(2, 3, 8, 8)
>>> with torch.no_grad():
...     bool(torch.allclose(gm(x), net(x), atol=1e-6))
True
>>> layout.describe()
'convolutions channels-last, linear outputs padded to 16'
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
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


#: Linear layers with this many outputs run padded to :data:`PADDED_OUTPUTS` in the private layout.
PADDED_RANGE = range(6, 16)
PADDED_OUTPUTS = 16


class PaddedLinear(nn.Module):
    """A plain ``nn.Linear`` with 6 to 15 outputs run, when on, with a private weight (and bias)
    padded with zero rows to :data:`PADDED_OUTPUTS` outputs; its output is a contiguous copy of
    the first columns."""

    def __init__(self, layer: nn.Linear):
        super().__init__()
        self.layer = layer
        self.weight: torch.Tensor | None = None  # None: the layer's own weight
        self.bias: torch.Tensor | None = None

    def set(self, padded: bool) -> None:
        weight = self.layer.weight.detach()
        if not padded:
            self.weight = self.bias = None
            return
        self.weight = weight.new_zeros((PADDED_OUTPUTS, weight.shape[1]))
        self.bias = weight.new_zeros(PADDED_OUTPUTS) if self.layer.bias is not None else None

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the layer's current weight and bias into the padded ones (when padded)."""
        if self.weight is not None:
            n = self.layer.out_features
            self.weight[:n].copy_(self.layer.weight)
            if self.bias is not None:
                self.bias[:n].copy_(self.layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight is None:
            return F.linear(x, self.layer.weight, self.layer.bias)
        # a contiguous copy of the first columns: what follows (a user's loss) may view it
        return F.linear(x, self.weight, self.bias)[..., : self.layer.out_features].contiguous()


def _wraps(mod: nn.Module) -> type[nn.Module] | None:
    if not is_plain_layer(mod):
        return None
    if type(mod) is nn.Conv2d and mod.padding_mode == "zeros":
        return LayoutConv
    if type(mod) is nn.Linear and mod.out_features in PADDED_RANGE:
        return PaddedLinear
    return None


def wrap_layers(gm: fx.GraphModule) -> tuple[list[LayoutConv], list[PaddedLinear]]:
    """Replace every plain ``nn.Conv2d`` node of ``gm`` by a :class:`LayoutConv` and every
    plain ``nn.Linear`` with 6 to 15 outputs by a :class:`PaddedLinear` (one per module, shared
    by its calls); the two lists of wrappers, empty when the graph has none."""
    wrapped: dict[int, tuple[str, nn.Module]] = {}
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        assert isinstance(node.target, str)
        mod = gm.get_submodule(node.target)
        kind = _wraps(mod)
        if kind is None:
            continue
        if id(mod) not in wrapped:
            name = f"losstopo_layout_{len(wrapped)}"
            wrapper = kind(mod)
            gm.add_submodule(name, wrapper)
            wrapped[id(mod)] = (name, wrapper)
        node.target = wrapped[id(mod)][0]
    if wrapped:
        gm.graph.lint()
        gm.recompile()
    wrappers = [wrapper for _, wrapper in wrapped.values()]
    return (
        [w for w in wrappers if isinstance(w, LayoutConv)],
        [w for w in wrappers if isinstance(w, PaddedLinear)],
    )


class Layout:
    """The private layouts of a graph: its 2D convolutions, plain ones (``convolutions``) and
    folded ones (the :class:`~.fold.FoldedLayer` of a ``Conv2d`` among ``folded``), channels-last,
    and its linear layers with 6 to 15 outputs (``linears``) padded; all on or all off."""

    def __init__(
        self,
        folded: Sequence[FoldedLayer],
        convolutions: Sequence[LayoutConv],
        linears: Sequence[PaddedLinear] = (),
    ):
        self.folded = [f for f in folded if type(f.layer) is nn.Conv2d]
        self.convolutions = list(convolutions)
        self.linears = list(linears)
        self.on = False

    @property
    def layers(self) -> int:
        """How many layers the private layouts apply to."""
        return len(self.folded) + len(self.convolutions) + len(self.linears)

    @property
    def channels_last(self) -> bool:
        """Whether the 2D convolutions run channels-last now."""
        return self.on and bool(self.folded or self.convolutions)

    @property
    def padded_linear(self) -> bool:
        """Whether the linear layers with 6 to 15 outputs run padded now."""
        return self.on and bool(self.linears)

    def set(self, on: bool) -> None:
        """Switch every layer to its private layout (``True``) or back; call :meth:`refresh`
        (and refresh the folded layers) before the next point."""
        self.on = bool(on)
        fmt = torch.channels_last if self.on else torch.contiguous_format
        for folded in self.folded:
            folded.weight = torch.empty_like(folded.weight, memory_format=fmt)
        for wrapper in self._wrappers():
            wrapper.set(self.on)

    def refresh(self) -> None:
        """Copy the current weights of the wrapped layers into their private copies."""
        if self.on:
            for wrapper in self._wrappers():
                wrapper.refresh()

    def _wrappers(self) -> list[LayoutConv | PaddedLinear]:
        return [*self.convolutions, *self.linears]

    def describe(self) -> str:
        """What the layout does now, in words (empty when off)."""
        parts = ["convolutions channels-last"] if self.channels_last else []
        parts += [f"linear outputs padded to {PADDED_OUTPUTS}"] if self.padded_linear else []
        return ", ".join(parts)

"""The first-layer split on a traced graph: the graph's first affine layer computed once per batch.

The graph's first node that touches parameters or buffers must be a plain convolution or linear
layer (or such a layer with an eval-mode BatchNorm folded in, as :func:`.graph.fold_graph` leaves
it, when the directions leave that BatchNorm's scale fixed), and every node before it must be
parameter-free and write into nothing. Its output is then affine in the coordinates,
``h(a) = h0 + sum_i a_i h_i``: the terms are computed once over the data
(:class:`.split.SplitTerms`) and each point runs only the rest of the graph, the *tail*, a graph
module taking the input and ``h`` (residual connections from the input stay correct).

Examples
--------
>>> import types
>>> import numpy as np, torch
>>> from losstopo import ParameterSpace
>>> from losstopo.data import EvalData
>>> from losstopo.engine.binding import Binding, LinearTensors
>>> from losstopo.engine.graph import trace
>>> _ = torch.manual_seed(0)
>>> class Net(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.a, self.b = torch.nn.Linear(3, 3), torch.nn.Linear(3, 2)
...     def forward(self, x):
...         return self.b(torch.relu(self.a(x)) + x)  # the input is used after the first layer
>>> model = Net()
>>> space = ParameterSpace.from_module(model)
>>> center = space.flatten(model).double().numpy()
>>> decoder = types.SimpleNamespace(center=center, components=np.ones((1, center.size)))
>>> binding = Binding(model, space, torch.device("cpu"))
>>> linear = LinearTensors(decoder, binding.dtype, binding.device)
>>> data = EvalData.from_any((torch.randn(5, 3), torch.zeros(5, dtype=torch.long)), "cross_entropy")
>>> gm, _ = trace(binding.net)
>>> split = GraphSplit.build(gm, binding.net, space, linear, data, 5, binding.device)
>>> split.layer
'a'
>>> (fn, h, _), = split.batches(np.array([0.5]), 5)
>>> binding.write_linear(linear, np.array([0.5]))
>>> bool(torch.allclose(fn(h), binding.net(data.inputs)))
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from ..data import EvalData
from ..space import ParameterSpace
from .binding import LinearTensors
from .fold import Folded, FoldedLayer, has_hooks, is_plain_layer
from .graph import is_in_place, relu_in_place
from .layout import LayoutConv, PaddedLinear
from .split import SplitTerms, affine_parts, layer_function

Parts = tuple[
    tuple[torch.Tensor, torch.Tensor | None], list[tuple[torch.Tensor, torch.Tensor | None]]
]


def _first_affine(gm: fx.GraphModule) -> tuple[fx.Node, list[fx.Node]] | None:
    """The first node touching parameters or buffers, and the nodes before it, or ``None`` when
    a node before it writes into a tensor or runs a module with hooks."""
    before: list[fx.Node] = []
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            before.append(node)
            continue
        if node.op in ("output", "get_attr"):
            return None
        if node.op == "call_module":
            assert isinstance(node.target, str)
            mod = gm.get_submodule(node.target)
            if any(True for _ in mod.parameters()) or any(True for _ in mod.buffers()):
                return node, before
            if has_hooks(mod):
                return None
        if is_in_place(gm, node):
            return None
        before.append(node)
    return None


def _folded_parts(
    folded: FoldedLayer, named: nn.Module, space: ParameterSpace, linear: LinearTensors
) -> Parts | None:
    """The folded layer's weight and bias at the centre and along each direction, when the
    directions leave the BatchNorm's scale fixed (the fold is then affine in the coordinates)."""
    parts = affine_parts(folded.layer, named, space, linear)
    if parts is None:
        return None
    (w0, b0), dirs = parts
    bn = folded.bn
    pname = {id(p): n for n, p in named.named_parameters()}
    slices = space.slices()

    def at_center(p: torch.Tensor | None) -> torch.Tensor | None:
        if p is None:
            return None
        name = pname.get(id(p))
        return linear.center[slices[name]] if name in slices else p.detach().clone()

    def along(p: torch.Tensor | None, k: int) -> torch.Tensor | None:
        name = pname.get(id(p)) if p is not None else None
        return linear.components[k][slices[name]] if name in slices else None

    gamma, beta = at_center(bn.weight), at_center(bn.bias)
    moving = [along(bn.weight, k) for k in range(len(dirs))]
    if any(d is not None and bool(d.any()) for d in moving):
        return None  # the scale moves: the folded layer is not affine in the coordinates
    scale = folded.inv_std if gamma is None else folded.inv_std * gamma
    shape = (-1,) + (1,) * (w0.dim() - 1)
    bias = -folded.mean if b0 is None else b0 - folded.mean
    bias = bias * scale + (beta if beta is not None else 0.0)
    out_dirs = []
    for k, (dw, db) in enumerate(dirs):
        shift = None if db is None else db * scale
        dbeta = along(bn.bias, k)
        if dbeta is not None:
            shift = dbeta.clone() if shift is None else shift + dbeta
        out_dirs.append((dw * scale.view(shape), shift))
    return (w0 * scale.view(shape), bias), out_dirs


class GraphSplit:
    """The first-layer split of a traced graph: cached terms and the tail run per point."""

    def __init__(
        self, tail: fx.GraphModule, terms: SplitTerms, inputs: torch.Tensor | None, layer: str
    ):
        self.tail = tail
        self.terms = terms
        self.inputs = inputs  # the data the tail reads besides h (None: it reads only h)
        self.layer = layer
        self.copy_inputs = False
        self._tail_alone = partial(tail, None)

    @classmethod
    def build(
        cls,
        gm: fx.GraphModule,
        named: nn.Module,
        space: ParameterSpace,
        linear: LinearTensors,
        data: EvalData,
        batch_size: int,
        device: torch.device,
        memory_cap: int = 2**30,
    ) -> GraphSplit | None:
        """The split of ``gm`` (``named``: the module whose parameter names ``space`` uses), or
        ``None`` when it does not apply or its terms would exceed ``memory_cap`` bytes."""
        found = _first_affine(gm)
        if found is None or not data.resident:
            return None
        node, before = found
        placeholders = [n for n in before if n.op == "placeholder"]
        if len(placeholders) != 1 or len(node.args) != 1 or node.kwargs:
            return None
        assert isinstance(node.target, str)
        mod = gm.get_submodule(node.target)
        if isinstance(mod, (LayoutConv, PaddedLinear)):
            mod = mod.layer  # the split computes the layer's terms once, in any layout
        parts: Parts | None
        if isinstance(mod, FoldedLayer):
            layer_fn = layer_function(mod.layer)
            parts = _folded_parts(mod, named, space, linear)
        elif is_plain_layer(mod):
            layer_fn = layer_function(mod)
            parts = affine_parts(mod, named, space, linear)
        else:
            return None
        if layer_fn is None or parts is None:
            return None
        prefix = _prefix(gm, before, node.args[0])
        if isinstance(mod, FoldedLayer) and isinstance(mod.layer, nn.Linear):
            with torch.inference_mode():
                z_first = prefix(next(iter(data.batches(1, device)))[0])
            if z_first.dim() != 2:
                return None  # a folded Linear on (N, C, L) inputs runs unfolded
        inputs = ((prefix(x), y) for x, y in data.batches(batch_size, device))
        with torch.inference_mode():
            terms = SplitTerms.compute(inputs, data.n_samples, layer_fn, *parts, memory_cap)
        if terms is None:
            return None
        tail, reads_input = _tail(gm, placeholders[0], node)
        terms.reuse = not any(has_hooks(m) for m in tail.modules())
        return cls(tail, terms, data.inputs if reads_input else None, node.target)

    def batches(
        self, coords: np.ndarray, batch_size: int
    ) -> Iterator[tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor]]:
        """``(tail with this batch's input, first-layer output, targets)`` per batch."""
        for i, h, y in self.terms.batches(coords, batch_size):
            if self.inputs is None:
                yield self._tail_alone, h, y
                continue
            x = self.inputs[i : i + batch_size]
            yield partial(self.tail, x.clone() if self.copy_inputs else x), h, y


def _prefix(gm: fx.GraphModule, before: list[fx.Node], result: Any) -> fx.GraphModule:
    """A graph module computing ``result`` (the first affine layer's input) from the input."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in before:
        env[node] = graph.node_copy(node, lambda n: env[n])
    graph.output(env[result] if isinstance(result, fx.Node) else result)
    return fx.GraphModule(gm, graph)


def _tail(gm: fx.GraphModule, x: fx.Node, layer: fx.Node) -> tuple[fx.GraphModule, bool]:
    """The graph with ``layer``'s output given as a second input ``h``; whether it reads ``x``."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    env[x] = graph.placeholder(x.name)
    h = graph.placeholder("losstopo_first_layer")
    for node in gm.graph.nodes:
        if node is x:
            continue
        env[node] = h if node is layer else graph.node_copy(node, lambda n: env[n])
    # nodes before the layer that only fed it (all pure: checked by _first_affine)
    order = {node: i for i, node in enumerate(gm.graph.nodes)}
    for node in reversed(list(gm.graph.nodes)):
        if order[node] < order[layer] and node is not x and not env[node].users:
            graph.erase_node(env[node])
    tail = fx.GraphModule(gm, graph)
    relu_in_place(tail, fresh_inputs=(h,))
    tail.graph.lint()
    tail.recompile()
    return tail, bool(env[x].users)


def describe_paths(
    traced: bool,
    failure: str,
    folded: Folded | None,
    split: object,
    copies_inputs: bool,
    layout: str = "",
) -> dict[str, str]:
    """``{"path": "fx" | "generic", "detail": one sentence}``: which fast paths ran, and why the
    generic path did when it did (``failure``: why tracing failed, empty if not tried;
    ``layout``: the private layouts in words, empty when off)."""
    folds = len(folded.pairs) if folded is not None else 0
    where = f" at '{split.layer}'" if isinstance(split, GraphSplit) else ""
    did = f"{folds} BatchNorm(s) folded, first-layer split {'on' + where if split else 'off'}"
    if layout:
        did += f", {layout}"
    if copies_inputs:
        did += "; the model writes into its input, so each batch is copied first"
    if traced:
        return {"path": "fx", "detail": f"torch.fx graph: {did}"}
    why = failure or "no fast path applies (bn='recompute' or moved statistics)"
    return {"path": "generic", "detail": f"{why}; nn.Sequential containers only: {did}"}

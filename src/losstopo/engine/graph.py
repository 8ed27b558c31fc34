"""Fast paths for any graph: the model traced with ``torch.fx``, BatchNorm folded anywhere in it.

:func:`trace` turns the engine's private copy of the model into a ``torch.fx.GraphModule`` that
shares its modules (and so its parameters, views into the flat buffer). Modules of ``torch.nn``,
modules with hooks and modules with parametrizations stay whole (``call_module`` nodes run them
through ``__call__``, hooks included); everything else (residual blocks, the user's ``forward``)
is traced through. A model that cannot be traced (data-dependent control flow, hooks on the model
itself, global module hooks) gets ``None`` and the reason, and the engine keeps its generic path
(the rewrites of :mod:`.fold` and :mod:`.split`, inside ``nn.Sequential`` containers only).

:func:`fold_graph` rewrites the traced graph: every eval-mode BatchNorm whose input is a plain
convolution or linear layer used by nothing else becomes one :class:`~.fold.FoldedLayer` node
(residual blocks included), and a ReLU whose input is a fresh tensor used only by it runs in
place. :mod:`.graph_split` applies the first-layer split to the graph's first affine layer.

A trace runs the model's Python once: side effects of a ``forward`` (a counter, a print, a sleep)
do not happen at every point. So a model whose ``forward`` assigns attributes is not traced
(:func:`stateful_forward`), and the engine runs the traced graph only when it folds a BatchNorm
or when every module's ``forward`` is one of ``torch.nn`` (:func:`torch_forwards_only`).

The user's model is never touched: the graph is built from the engine's copy, and new modules
(the folded layers) are added to the graph module only.

Examples
--------
>>> import torch
>>> from losstopo.models import resnet20
>>> net = resnet20(skip=True).eval()
>>> gm, reason = trace(net)
>>> reason
''
>>> folded = fold_graph(gm)
>>> len(folded)  # every BatchNorm of ResNet-20, shortcuts included
21
>>> for layer in folded:
...     layer.refresh()
>>> x = torch.randn(2, 3, 32, 32)
>>> with torch.no_grad():
...     bool(torch.allclose(gm(x), net(x), atol=1e-4))
True
"""

from __future__ import annotations

import dis
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .fold import FoldedLayer, foldable, has_hooks, is_plain_layer
from .layout import LayoutConv, PaddedLinear

#: ``torch.relu`` and its aliases, as they appear in traced graphs.
RELU_FUNCTIONS = (torch.relu, F.relu)


def global_hooks() -> bool:
    """Whether global module hooks are registered (they would run on leaves only once traced)."""
    from torch.nn.modules import module as module_mod

    return bool(module_mod._global_forward_hooks or module_mod._global_forward_pre_hooks)


class _Tracer(fx.Tracer):
    """``torch.nn`` modules and modules with hooks or parametrizations stay whole."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if has_hooks(m):
            return True  # run through __call__ at every point, hooks included
        return super().is_leaf_module(m, module_qualified_name)


#: Why a model with a ``forward`` of its own and no BatchNorm to fold keeps the generic path.
OWN_FORWARD = "nothing to fold, and the model's own forward runs as written"


def torch_forwards_only(net: nn.Module) -> bool:
    """Whether every module of ``net`` runs a ``forward`` of ``torch.nn`` (``nn.Sequential``
    subclasses included): its trace then does exactly what the model does."""
    for module in net.modules():
        forward = getattr(type(module).forward, "__module__", "") or ""
        if not forward.startswith("torch.nn"):
            return False
    return True


def stateful_forward(net: nn.Module) -> str:
    """The name of a module class of ``net`` whose ``forward`` assigns attributes or globals
    (e.g. ``self.calls += 1``: a traced graph would do it once, not at every call), or ``""``."""
    for module in net.modules():
        cls = type(module)
        if cls.__module__.startswith(("torch.nn", "torch.ao.nn")):
            continue
        code = getattr(cls.forward, "__code__", None)
        if code is None:
            continue
        ops = {ins.opname for ins in dis.get_instructions(code)}
        if ops & {"STORE_ATTR", "DELETE_ATTR", "STORE_GLOBAL", "DELETE_GLOBAL"}:
            return cls.__name__
    return ""


def trace(net: nn.Module) -> tuple[fx.GraphModule | None, str]:
    """``(graph module, "")`` sharing ``net``'s modules, or ``(None, reason)`` when ``net``
    cannot be traced (the reason is one phrase naming the failure)."""
    if has_hooks(net):
        return None, "the model itself has hooks or parametrizations"
    if global_hooks():
        return None, "global module hooks are registered"
    stateful = stateful_forward(net)
    if stateful:
        return None, f"{stateful}.forward assigns attributes (state a traced graph would freeze)"
    try:
        graph = _Tracer().trace(net)
        gm = fx.GraphModule(net, graph, type(net).__name__)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means the generic path
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"torch.fx cannot trace the model ({type(exc).__name__}: {first[:160]})"
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if not placeholders or any(not n.args for n in placeholders[1:]):
        return None, "the model's forward does not take exactly one required input"
    gm.eval()
    return gm, ""


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    if node.op != "call_module":
        return None
    assert isinstance(node.target, str)
    return gm.get_submodule(node.target)


def fold_graph(gm: fx.GraphModule) -> list[FoldedLayer]:
    """Fold every eval-mode BatchNorm into the plain layer before it, in place in ``gm``'s graph;
    the folded layers (call ``refresh`` before using ``gm``), empty when nothing folds."""
    pairs: dict[tuple[int, int], tuple[str, FoldedLayer]] = {}
    for node in list(gm.graph.nodes):
        bn = _module(gm, node)
        if bn is None or len(node.args) != 1 or node.kwargs:
            continue
        src = node.args[0]
        if not isinstance(src, fx.Node) or len(src.users) != 1:
            continue  # the layer's output is used elsewhere too: keep it
        layer = _module(gm, src)
        if layer is None or len(src.args) != 1 or src.kwargs or not foldable(layer, bn):
            continue
        key = (id(layer), id(bn))
        if key not in pairs:  # a pair called twice shares one folded layer
            name = f"losstopo_folded_{len(pairs)}"
            folded = FoldedLayer(layer, bn)  # type: ignore[arg-type]
            gm.add_submodule(name, folded)
            pairs[key] = (name, folded)
        with gm.graph.inserting_after(src):
            new = gm.graph.call_module(pairs[key][0], (src.args[0],))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        gm.graph.erase_node(src)
    if pairs:
        relu_in_place(gm)
        gm.graph.lint()
        gm.recompile()
    return [folded for _, folded in pairs.values()]


def _fresh(gm: fx.GraphModule, node: Any, fresh_inputs: tuple[fx.Node, ...]) -> bool:
    """Whether ``node``'s value is a new tensor of the graph's own (safe to overwrite once its
    only user is done with it)."""
    if not isinstance(node, fx.Node):
        return False
    if node in fresh_inputs:
        return True
    mod = _module(gm, node)
    if isinstance(mod, (FoldedLayer, LayoutConv, PaddedLinear)) or (
        mod is not None and is_plain_layer(mod)
    ):
        return True  # a layer's output: a new tensor
    return (
        node.op == "call_function"
        and node.target in (operator.add, torch.add)
        and not (node.kwargs)
    )


def relu_in_place(gm: fx.GraphModule, fresh_inputs: tuple[fx.Node, ...] = ()) -> int:
    """Make each ReLU whose input is a fresh tensor used by nothing else run in place; returns
    how many (``fresh_inputs``: placeholders that receive private buffers)."""
    count = 0
    for node in list(gm.graph.nodes):
        mod = _module(gm, node)
        is_relu = (
            (type(mod) is nn.ReLU and not has_hooks(mod))
            or (
                node.op == "call_function"
                and node.target in RELU_FUNCTIONS
                and node.kwargs in ({}, {"inplace": False})  # F.relu(x) traces with inplace=False
            )
            or (node.op == "call_method" and node.target == "relu" and not node.kwargs)
        )
        if not is_relu or len(node.args) != 1:
            continue
        src = node.args[0]
        if not _fresh(gm, src, fresh_inputs) or len(src.users) != 1:  # type: ignore[union-attr]
            continue
        with gm.graph.inserting_after(node):
            new = gm.graph.call_function(torch.relu_, (src,))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        count += 1
    if count:
        gm.recompile()
    return count


def is_in_place(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Whether ``node`` may write into one of its inputs (``x.mul_``, ``operator.iadd``, an
    ``inplace=True`` module, ``torch.relu_``)."""
    if node.op == "call_method":
        name = str(node.target)
        return name.endswith("_") and not name.startswith("__")
    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        return (name.endswith("_") and not name.startswith("__")) or name.startswith("__i")
    mod = _module(gm, node)
    return mod is not None and bool(getattr(mod, "inplace", False))

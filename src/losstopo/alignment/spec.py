"""Which axes of which tensors share a permutation: :class:`PermutationSpec` and its derivation.

Hidden units of a network can be reordered without changing its function, provided every tensor
that indexes those units is reordered alike: the output rows of a layer, its bias, the
BatchNorm after it, the input columns of the next layer. A :class:`PermutationSpec` lists, for
every tensor of the state_dict, one permutation name (or ``None``) per axis.

:func:`permutation_spec` derives it from the model's graph (:mod:`torch.fx`): each linear or
convolution layer opens a new permutation of its output units; BatchNorm and elementwise
operations carry it; a residual addition ties the permutations of the tensors it adds into one;
the model's inputs and outputs are not permuted.

Examples
--------
>>> from losstopo.models import MLP
>>> spec = permutation_spec(MLP(4, (8, 6), 3))
>>> spec.sizes
{'1': 8, '3': 6}
>>> spec.axes["3.weight"], spec.axes["5.weight"]
(('3', '1'), (None, '3'))
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import InvalidParameterError, InvalidTypeError, ShapeMismatchError

__all__ = ["PermutationSpec", "permutation_spec"]

_EXPLICIT = "give the spec explicitly: PermutationSpec.from_axes({tensor name: (perm or None per axis)}, model)"

_ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.PReLU,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity,
)  # fmt: skip
_NONLINEAR_MODULES = _ELEMENTWISE_MODULES[:16]  # up to PReLU
_POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)  # fmt: skip
_NONLINEAR_FUNCTIONS: set[Any] = {
    torch.relu, torch.tanh, torch.sigmoid, nn.functional.relu, nn.functional.gelu,
    nn.functional.silu, nn.functional.leaky_relu, nn.functional.elu, nn.functional.tanh,
    nn.functional.sigmoid, nn.functional.softplus, nn.functional.relu6, nn.functional.mish,
}  # fmt: skip
_ELEMENTWISE_FUNCTIONS: set[Any] = _NONLINEAR_FUNCTIONS | {
    nn.functional.dropout, torch.dropout, nn.functional.max_pool2d, nn.functional.avg_pool2d,
    nn.functional.max_pool1d, nn.functional.avg_pool1d,
}  # fmt: skip
_TIE_FUNCTIONS: set[Any] = {operator.add, operator.iadd, operator.sub, operator.mul, torch.add,
                            torch.sub, torch.mul}  # fmt: skip
_NONLINEAR_METHODS = {"relu", "tanh", "sigmoid", "relu_", "tanh_", "sigmoid_"}
_TIE_METHODS = {"add", "add_", "mul", "mul_", "sub", "sub_"}


@dataclass(frozen=True)
class PermutationSpec:
    """Permutation names per axis of every tensor, the size of each permutation.

    Attributes
    ----------
    axes : tensor name (state_dict) -> one permutation name or ``None`` per axis
    sizes : permutation name -> number of units it permutes
    activations : permutation name -> graph nodes whose outputs carry it on axis 1 (what
        :func:`~losstopo.alignment.activation_matching` correlates); empty for a given spec
        without them
    """

    axes: dict[str, tuple[str | None, ...]]
    sizes: dict[str, int]
    activations: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_axes(
        cls,
        axes: Mapping[str, Any],
        model: nn.Module,
        activations: Mapping[str, Any] | None = None,
    ) -> PermutationSpec:
        """A spec given by hand, checked against ``model`` (names, number of axes, sizes).

        Tensors of the model that ``axes`` does not list are not permuted.

        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
        >>> spec = PermutationSpec.from_axes({"0.weight": ("h", None), "0.bias": ("h",),
        ...                                   "2.weight": (None, "h")}, model)
        >>> spec.sizes, spec.axes["2.bias"]
        ({'h': 4}, (None,))
        """
        if not isinstance(model, nn.Module):
            raise InvalidTypeError(
                f"PermutationSpec.from_axes needs the model; got {type(model).__name__}."
            )
        if not isinstance(axes, Mapping):
            raise InvalidTypeError(
                "The spec's 'axes' must map tensor names to a tuple of permutation names (or "
                f"None) per axis; got {type(axes).__name__}."
            )
        state = model.state_dict()
        full: dict[str, tuple[str | None, ...]] = {}
        sizes: dict[str, int] = {}
        where: dict[str, str] = {}
        for name, spec_axes in axes.items():
            if name not in state:
                raise ShapeMismatchError(
                    f"The permutation spec names tensor {name!r}, which the model does not have; "
                    f"use the model's state_dict names (e.g. {next(iter(state), '?')!r})."
                )
            row = tuple(None if a is None else str(a) for a in spec_axes)
            shape = tuple(state[name].shape)
            if len(row) != len(shape):
                raise ShapeMismatchError(
                    f"The permutation spec gives {len(row)} axes for tensor {name!r}, which has "
                    f"{len(shape)} (shape {shape}); give one entry (a name or None) per axis."
                )
            for i, perm in enumerate(row):
                if perm is None:
                    continue
                if perm in sizes and sizes[perm] != shape[i]:
                    raise ShapeMismatchError(
                        f"Permutation {perm!r} has size {sizes[perm]} at {where[perm]} but axis {i} "
                        f"of {name!r} has size {shape[i]}; one permutation must index axes of "
                        "one size."
                    )
                sizes.setdefault(perm, shape[i])
                where.setdefault(perm, f"{name!r} axis {i}")
            full[name] = row
        for name, t in state.items():
            full.setdefault(name, (None,) * t.dim())
        acts = {str(k): tuple(str(n) for n in v) for k, v in (activations or {}).items()}
        for perm in acts:
            if perm not in sizes:
                raise InvalidParameterError(
                    f"The spec's activations name permutation {perm!r}, which no tensor axis "
                    "uses; name permutations of 'axes'."
                )
        return cls(full, sizes, acts)

    def check(self, model: nn.Module) -> None:
        """Raise unless this spec fits ``model`` (every named tensor exists with those sizes)."""
        PermutationSpec.from_axes(self.axes, model, self.activations)

    def perm_axes(self) -> dict[str, list[tuple[str, int]]]:
        """Permutation name -> every (tensor name, axis) it indexes."""
        out: dict[str, list[tuple[str, int]]] = {p: [] for p in self.sizes}
        for name, row in self.axes.items():
            for i, perm in enumerate(row):
                if perm is not None:
                    out[perm].append((name, i))
        return out


class _Vars:
    """Union-find over permutation variables; variable 0 is "not permuted"."""

    def __init__(self) -> None:
        self.parent = [0]
        self.size = [0]
        self.origin = ["<fixed>"]

    def new(self, size: int, origin: str) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.origin.append(origin)
        return len(self.parent) - 1

    def find(self, v: int) -> int:
        while self.parent[v] != v:
            self.parent[v] = self.parent[self.parent[v]]
            v = self.parent[v]
        return v

    def union(self, a: int, b: int, node: str) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if ra != 0 and rb != 0 and self.size[ra] != self.size[rb]:
            raise ShapeMismatchError(
                f"Graph node {node!r} combines {self.size[ra]} units with {self.size[rb]}; "
                f"the derivation cannot tie them, so {_EXPLICIT}."
            )
        lo, hi = min(ra, rb), max(ra, rb)  # 0 (fixed) absorbs; else the older variable names
        self.parent[hi] = lo
        return lo


def permutation_spec(model: nn.Module) -> PermutationSpec:
    """The :class:`PermutationSpec` of ``model``, derived from its :mod:`torch.fx` graph.

    Supported: linear and convolution layers (also depthwise), BatchNorm, LayerNorm on features,
    elementwise activations, dropout, pooling, flattening after global pooling, additions and
    products (residual connections tie their permutations). Inputs and outputs stay fixed. Each
    permutation is named after the layer that first produces its units. An operation the
    derivation does not know raises an error naming the graph node.

    Examples
    --------
    >>> from losstopo.models import resnet20
    >>> spec = permutation_spec(resnet20(skip=True))
    >>> len(spec.sizes)  # one residual stream per stage + one per block's inner layer
    12
    >>> len(permutation_spec(resnet20(skip=False)).sizes)
    19
    """
    from torch import fx

    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"'model' must be a torch.nn.Module; got {type(model).__name__}.")
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as exc:  # noqa: BLE001 - any tracing failure gets the same advice
        raise InvalidParameterError(
            f"The model cannot be traced by torch.fx ({type(exc).__name__}: {exc}); {_EXPLICIT}."
        ) from exc
    modules = dict(model.named_modules())
    state = model.state_dict()
    uf = _Vars()
    var: dict[str, int] = {}
    flat_ok: dict[str, bool] = {}  # whether flattening keeps axis 1 as the units' axis
    nodes_of: dict[int, list[tuple[str, bool]]] = {}
    assigned: dict[str, list[int | None]] = {}

    def assign(tensor: str, row: list[int | None], node: str) -> None:
        if tensor not in assigned:
            assigned[tensor] = row
            return
        for a, b in zip(assigned[tensor], row, strict=True):  # a module used twice: tie
            if (a is None) != (b is None):
                raise InvalidParameterError(
                    f"Graph node {node!r} uses {tensor!r} in a way its first use does not "
                    f"permute alike; {_EXPLICIT}."
                )
            if a is not None and b is not None:
                uf.union(a, b, node)

    def input_var(node: fx.Node) -> int:
        ins = [a for a in node.all_input_nodes if a.name in var]
        return var[ins[0].name] if ins else 0

    def unsupported(node: fx.Node, what: str) -> InvalidParameterError:
        return InvalidParameterError(
            f"Graph node {node.name!r} ({what}) acts on permuted units in a way the derivation "
            f"does not support; {_EXPLICIT}."
        )

    for node in graph.nodes:
        name = node.name
        if node.op == "placeholder" or node.op == "get_attr":
            var[name], flat_ok[name] = 0, True
            continue
        if node.op == "output":
            for arg in node.all_input_nodes:
                uf.union(var.get(arg.name, 0), 0, name)
            continue
        v_in = input_var(node)
        fixed_in = uf.find(v_in) == 0 and all(
            uf.find(var.get(a.name, 0)) == 0 for a in node.all_input_nodes
        )
        out, keep_flat, nonlinear = (
            v_in,
            flat_ok.get(node.all_input_nodes[0].name if node.all_input_nodes else "", True),
            False,
        )
        if node.op == "call_module":
            mod = modules[str(node.target)]
            prefix = f"{node.target}."
            own = [k for k in state if k.startswith(prefix) and "." not in k[len(prefix) :]]
            if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                is_conv = not isinstance(mod, nn.Linear)
                if not is_conv and not keep_flat and not fixed_in:
                    raise unsupported(node, "a linear layer on a tensor with spatial axes")
                n_out = int(mod.weight.shape[0])
                groups = getattr(mod, "groups", 1)
                out = uf.new(n_out, str(node.target))
                w = mod.weight
                if groups == 1:
                    assign(f"{prefix}weight", [out, v_in] + [None] * (w.dim() - 2), name)
                elif groups == mod.in_channels == n_out:  # depthwise: one filter per unit
                    uf.union(out, v_in, name)
                    assign(f"{prefix}weight", [out] + [None] * (w.dim() - 1), name)
                else:
                    raise unsupported(node, f"a grouped convolution, groups={groups}")
                if mod.bias is not None:
                    assign(f"{prefix}bias", [out], name)
                keep_flat = not is_conv
            elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
                for k in own:
                    assign(k, [] if state[k].dim() == 0 else [v_in], name)
            elif isinstance(mod, nn.LayerNorm):
                if len(mod.normalized_shape) != 1 or not (keep_flat or fixed_in):
                    raise unsupported(node, "LayerNorm over more than the units' axis")
                for k in own:
                    assign(k, [v_in], name)
            elif isinstance(mod, _ELEMENTWISE_MODULES):
                if own and not fixed_in:
                    if not isinstance(mod, nn.PReLU) or mod.num_parameters != 1:
                        raise unsupported(node, f"{type(mod).__name__} with per-unit parameters")
                for k in own:
                    assign(k, [None] * state[k].dim(), name)
                nonlinear = isinstance(mod, _NONLINEAR_MODULES)
            elif isinstance(mod, _POOL_MODULES):
                size = getattr(mod, "output_size", None)
                keep_flat = size is not None and all(
                    s == 1 for s in (size if isinstance(size, tuple) else (size,))
                )
            elif isinstance(mod, nn.Flatten):
                if not (fixed_in or (keep_flat and mod.start_dim == 1)):
                    raise unsupported(node, "flattening units together with spatial axes")
                keep_flat = True
            elif own or not fixed_in:
                raise unsupported(node, f"module {type(mod).__name__}")
        elif node.op == "call_function":
            fn = node.target
            if fn in _TIE_FUNCTIONS:
                for a in node.all_input_nodes:
                    out = uf.union(out, var.get(a.name, 0), name)
            elif fn in _ELEMENTWISE_FUNCTIONS:
                nonlinear = fn in _NONLINEAR_FUNCTIONS
            elif fn is torch.flatten:
                start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
                if not (fixed_in or (keep_flat and start == 1)):
                    raise unsupported(node, "flattening units together with spatial axes")
                keep_flat = True
            elif fn is nn.functional.adaptive_avg_pool2d:
                keep_flat = True
            elif fn is getattr:
                out = 0
            elif not fixed_in:
                raise unsupported(node, f"function {getattr(fn, '__name__', fn)}")
        elif node.op == "call_method":
            method = str(node.target)
            if method in _TIE_METHODS:
                for a in node.all_input_nodes:
                    out = uf.union(out, var.get(a.name, 0), name)
            elif method in _NONLINEAR_METHODS or method in ("contiguous", "clone"):
                nonlinear = method in _NONLINEAR_METHODS
            elif method == "flatten":
                start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
                if not (fixed_in or (keep_flat and start == 1)):
                    raise unsupported(node, "flattening units together with spatial axes")
                keep_flat = True
            elif method == "size" or method == "dim":
                out = 0
            elif not fixed_in:
                raise unsupported(node, f"method .{method}()")
        var[name], flat_ok[name] = out, keep_flat
        nodes_of.setdefault(out, []).append((name, nonlinear))

    missing = [k for k in state if k not in assigned]
    if missing:
        raise InvalidParameterError(
            f"The tensor {missing[0]!r} is used outside the layers the derivation knows "
            f"(e.g. read directly in forward); {_EXPLICIT}."
        )
    names: dict[int, str] = {}
    axes: dict[str, tuple[str | None, ...]] = {}
    for tensor, row in assigned.items():
        out_row: list[str | None] = []
        for v in row:
            root = None if v is None else uf.find(v)
            if root is None or root == 0:
                out_row.append(None)
            else:
                out_row.append(names.setdefault(root, uf.origin[root]))
        axes[tensor] = tuple(out_row)
    axes = {k: axes[k] for k in state}
    sizes = {names[r]: uf.size[r] for r in sorted(names)}
    activations: dict[str, list[str]] = {}
    fallback: dict[str, list[str]] = {}
    for v, listed in nodes_of.items():
        root = uf.find(v)
        if root == 0 or root not in names:
            continue
        for node_name, nonlinear in listed:
            (activations if nonlinear else fallback).setdefault(names[root], []).append(node_name)
    acts = {p: tuple(activations.get(p) or fallback.get(p, [])) for p in sizes}
    return PermutationSpec(axes, sizes, acts)

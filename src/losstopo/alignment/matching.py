"""Permutations that align one model's hidden units with another's, and applying them.

- :func:`weight_matching` (Ainsworth et al. 2022): coordinate descent over the permutations,
  each step a linear assignment maximising the inner product of the two models' weights.
- :func:`activation_matching` (Entezari et al. 2022; Ainsworth et al.): match units by the
  correlation of their activations on data.
- :func:`apply_permutation`: a new model with its units reordered; the function is unchanged.

A :class:`Permutation` maps each permutation name of a spec to an index array ``perm``: unit
``i`` of the permuted model is unit ``perm[i]`` of the original.

Examples
--------
>>> import torch
>>> from losstopo.models import MLP
>>> _ = torch.manual_seed(0)
>>> a = MLP(4, (8,), 3)
>>> shuffled = Permutation.random(permutation_spec(a), seed=1)
>>> b = apply_permutation(a, shuffled)
>>> x = torch.randn(5, 4)
>>> bool(torch.allclose(a(x), b(x), atol=1e-6))
True
>>> found = weight_matching(a, b)
>>> bool(torch.equal(apply_permutation(b, found)[1].weight, a[1].weight))
True
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from ..data import EvalData
from ..errors import InvalidParameterError, InvalidTypeError, validate_int
from .spec import PermutationSpec, permutation_spec

__all__ = [
    "Permutation",
    "activation_matching",
    "apply_permutation",
    "permute_points",
    "permute_state",
    "weight_matching",
]


@dataclass(frozen=True, eq=False)
class Permutation:
    """Index arrays per permutation name of ``spec``; unit ``i`` becomes unit ``perms[p][i]``.

    ``attrs``: how it was found (method, iterations, objective).
    """

    perms: dict[str, np.ndarray]
    spec: PermutationSpec
    attrs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def identity(cls, spec: PermutationSpec) -> Permutation:
        """The permutation that changes nothing."""
        return cls({p: np.arange(n) for p, n in spec.sizes.items()}, spec, {"method": "identity"})

    @classmethod
    def random(cls, spec: PermutationSpec, seed: int = 0) -> Permutation:
        """Uniformly random permutations (for tests: the function of a model must not change)."""
        rng = np.random.default_rng(seed)
        perms = {p: rng.permutation(n) for p, n in spec.sizes.items()}
        return cls(perms, spec, {"method": "random", "seed": seed})

    def inverse(self) -> Permutation:
        """The permutation undoing this one.

        >>> from losstopo.models import MLP
        >>> p = Permutation.random(permutation_spec(MLP(2, (5,), 2)), seed=0)
        >>> bool(all((p.inverse().perms[k][p.perms[k]] == range(5)).all() for k in p.perms))
        True
        """
        return Permutation(
            {k: np.argsort(v) for k, v in self.perms.items()}, self.spec, dict(self.attrs)
        )

    @property
    def n_moved(self) -> int:
        """How many units the permutation moves, over all its permutations."""
        return int(sum(np.count_nonzero(v != np.arange(v.size)) for v in self.perms.values()))


def permute_state(
    state: dict[str, torch.Tensor],
    permutation: Permutation,
    except_axis: tuple[str, int] | None = None,
) -> dict[str, torch.Tensor]:
    """``state`` with every axis the spec names reordered (optionally all but one axis)."""
    out = {}
    for name, tensor in state.items():
        row = permutation.spec.axes.get(name, ())
        for axis, perm in enumerate(row):
            if perm is None or (except_axis is not None and except_axis == (name, axis)):
                continue
            idx = torch.as_tensor(permutation.perms[perm], device=tensor.device)
            tensor = tensor.index_select(axis, idx)
        out[name] = tensor
    return out


def apply_permutation(model: nn.Module, permutation: Permutation) -> nn.Module:
    """A new model whose units are reordered by ``permutation``; ``model`` is left untouched.

    The new model computes the same function as ``model`` (up to float rounding).
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"'model' must be a torch.nn.Module; got {type(model).__name__}.")
    if not isinstance(permutation, Permutation):
        raise InvalidTypeError(
            "'permutation' must be a Permutation (from weight_matching or activation_matching); "
            f"got {type(permutation).__name__}."
        )
    permutation.spec.check(model)
    new = copy.deepcopy(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    new.load_state_dict(permute_state(state, permutation))
    return new


def permute_points(model: nn.Module, points: Any, permutation: Permutation) -> np.ndarray:
    """Flat parameter vectors of ``model`` (rows of ``points``, e.g. a Trajectory's checkpoints)
    with ``permutation`` applied, as :func:`apply_permutation` would to each model.

    Use it to draw a second run's whole trajectory after aligning its final model to a first
    run's: every checkpoint permuted alike.

    >>> from losstopo import ParameterSpace
    >>> from losstopo.models import MLP
    >>> m = MLP(3, (4,), 2)
    >>> p = Permutation.random(permutation_spec(m), seed=0)
    >>> flat = ParameterSpace.from_module(m).flatten(apply_permutation(m, p)).numpy()
    >>> row = ParameterSpace.from_module(m).flatten(m).numpy()
    >>> bool((permute_points(m, row[None], p)[0] == flat).all())
    True
    """
    from ..projectors.base import as_points
    from ..space import ParameterSpace

    rows = as_points(points, "points")
    space = ParameterSpace.from_module(model)
    if rows.shape[1] != space.n_params:
        raise InvalidParameterError(
            f"The points have {rows.shape[1]} parameters but the model has {space.n_params}; "
            "pass the model the points were recorded from."
        )
    permutation.spec.check(model)
    out = rows.copy()
    for name, shape, sl in zip(space.names, space.shapes, space.slices().values(), strict=True):
        block = rows[:, sl].reshape(len(rows), *shape)
        for axis, perm in enumerate(permutation.spec.axes.get(name, ())):
            if perm is not None:
                block = np.take(block, permutation.perms[perm], axis=axis + 1)
        out[:, sl] = block.reshape(len(rows), -1)
    return out


def _resolve_spec(model_a: nn.Module, model_b: nn.Module, spec: Any) -> PermutationSpec:
    from ..connectivity import check_same_architecture

    check_same_architecture(model_a, model_b)
    if spec is None:
        return permutation_spec(model_a)
    if not isinstance(spec, PermutationSpec):
        raise InvalidTypeError(
            "'spec' must be a PermutationSpec (permutation_spec(model) or "
            f"PermutationSpec.from_axes(...)); got {type(spec).__name__}."
        )
    spec.check(model_a)
    return spec


def weight_matching(
    model_a: nn.Module,
    model_b: nn.Module,
    spec: PermutationSpec | None = None,
    max_iter: int = 100,
    seed: int = 0,
) -> Permutation:
    """The permutation of ``model_b``'s units that best matches its weights to ``model_a``'s.

    Coordinate descent (Ainsworth et al. 2022, "weight matching"): in a random order (from
    ``seed``), each permutation is set to the linear assignment
    (:func:`scipy.optimize.linear_sum_assignment`) maximising the summed inner products of the
    weights it indexes, the other permutations held fixed; sweeps repeat until none improves or
    ``max_iter`` sweeps. Only trainable parameters enter the objective; buffers (BatchNorm
    statistics) are permuted alongside by :func:`apply_permutation`.

    Returns
    -------
    Permutation
        ``apply_permutation(model_b, result)`` is ``model_b`` aligned to ``model_a``;
        ``attrs["iterations"]`` and ``attrs["objective"]`` record the search.
    """
    spec = _resolve_spec(model_a, model_b, spec)
    max_iter = validate_int(max_iter, "max_iter", low=1)
    params = {n for n, p in model_a.named_parameters() if p.requires_grad}
    sa = {k: v.detach().cpu().double() for k, v in model_a.state_dict().items() if k in params}
    sb = {k: v.detach().cpu().double() for k, v in model_b.state_dict().items() if k in params}
    where = {p: [(n, ax) for n, ax in lst if n in params] for p, lst in spec.perm_axes().items()}
    perms = {p: np.arange(n) for p, n in spec.sizes.items()}
    rng = np.random.default_rng(seed)
    names = sorted(spec.sizes)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is recorded
        improved = False
        for p in rng.permutation(names):
            n = spec.sizes[p]
            gain = np.zeros((n, n))
            current = Permutation(perms, spec)
            for name, axis in where[p]:
                wa = sa[name].movedim(axis, 0).reshape(n, -1)
                wb = permute_state({name: sb[name]}, current, except_axis=(name, axis))[name]
                gain += (wa @ wb.movedim(axis, 0).reshape(n, -1).T).numpy()
            _, cols = linear_sum_assignment(gain, maximize=True)
            old = gain[np.arange(n), perms[p]].sum()
            new = gain[np.arange(n), cols].sum()
            if new > old + 1e-12 * max(1.0, abs(old)):
                perms[p] = cols
                improved = True
        if not improved:
            break
    result = Permutation(perms, spec)
    aligned = permute_state(sb, result)
    objective = float(sum((sa[k] * aligned[k]).sum() for k in sa))
    return Permutation(
        perms,
        spec,
        {"method": "weights", "iterations": iterations, "objective": objective, "seed": seed},
    )


def activation_matching(
    model_a: nn.Module,
    model_b: nn.Module,
    data: Any,
    spec: PermutationSpec | None = None,
    max_samples: int = 2048,
    batch_size: int = 256,
) -> Permutation:
    """The permutation of ``model_b``'s units whose activations best correlate with ``model_a``'s.

    For each permutation, the Pearson correlation of every unit of A with every unit of B over
    the first ``max_samples`` inputs of ``data`` (and all spatial positions), summed over the
    graph nodes the spec lists for it (the outputs of its activation functions), then one
    linear assignment maximising the total correlation. Both models run in eval mode.
    """
    spec = _resolve_spec(model_a, model_b, spec)
    max_samples = validate_int(max_samples, "max_samples", low=2)
    batch_size = validate_int(batch_size, "batch_size", low=1)
    lacking = [p for p in spec.sizes if not spec.activations.get(p)]
    if lacking:
        raise InvalidParameterError(
            f"The spec names no activations for permutation {lacking[0]!r}; pass a spec from "
            "permutation_spec(model), or give 'activations' to PermutationSpec.from_axes."
        )
    eval_data = EvalData.from_any(data, "none", "cpu")
    nodes = sorted({n for names in spec.activations.values() for n in names})
    stats_a = _node_stats(model_a, eval_data, nodes, max_samples, batch_size)
    stats_b = _node_stats(model_b, eval_data, nodes, max_samples, batch_size)
    perms = {}
    total = 0.0
    for p, listed in spec.activations.items():
        n = spec.sizes[p]
        corr = np.zeros((n, n))
        for node in listed:
            corr += _correlation(stats_a[node], stats_b[node])
        _, cols = linear_sum_assignment(corr, maximize=True)
        perms[p] = cols
        total += float(corr[np.arange(n), cols].sum())
    return Permutation(
        perms, spec, {"method": "activations", "objective": total, "max_samples": max_samples}
    )


def _node_stats(
    model: nn.Module, data: EvalData, nodes: list[str], max_samples: int, batch_size: int
) -> dict[str, Any]:
    """Per node: its outputs on the first ``max_samples`` inputs, as float64 rows
    ``(samples * positions, units)``."""
    from torch import fx

    try:
        gm = fx.symbolic_trace(copy.deepcopy(model).eval())
    except Exception as exc:  # noqa: BLE001
        raise InvalidParameterError(
            f"activation_matching traces the model with torch.fx, which failed ({exc}); use "
            "weight_matching instead."
        ) from exc
    wanted = set(nodes)
    known = {n.name for n in gm.graph.nodes}
    if wanted - known:
        raise InvalidParameterError(
            f"The spec names graph node {sorted(wanted - known)[0]!r}, which the model's graph "
            "does not have; use node names of torch.fx.symbolic_trace(model).graph."
        )
    captured: dict[str, list[torch.Tensor]] = {n: [] for n in nodes}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            if n.name in wanted:
                feats = out.detach().movedim(1, -1).reshape(-1, out.shape[1])
                captured[n.name].append(feats.double().cpu())
            return out

    seen = 0
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        for x, _ in data.batches(batch_size, device):
            x = x[: max_samples - seen].to(device)
            Recorder(gm).run(x)
            seen += len(x)
            if seen >= max_samples:
                break
    return {n: torch.cat(v) for n, v in captured.items()}


def _correlation(fa: torch.Tensor, fb: torch.Tensor) -> np.ndarray:
    """Pearson correlation of the columns of ``fa`` with those of ``fb`` (constant units: 0)."""
    ca = fa - fa.mean(0)
    cb = fb - fb.mean(0)
    cov = ca.T @ cb / max(len(fa) - 1, 1)
    sa = ca.std(0, correction=1) if len(fa) > 1 else torch.zeros(fa.shape[1])
    sb = cb.std(0, correction=1) if len(fb) > 1 else torch.zeros(fb.shape[1])
    denom = sa[:, None] * sb[None, :]
    corr = torch.where(denom > 0, cov / denom.clamp_min(1e-300), torch.zeros_like(cov))
    return corr.numpy()

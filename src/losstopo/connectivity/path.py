"""The straight path between two models: :func:`interpolate`, and the engine calls paths share.

Examples
--------
>>> import torch
>>> from losstopo.connectivity import interpolate
>>> from losstopo.datasets import synthetic_classification
>>> _ = torch.manual_seed(0)
>>> a, b = torch.nn.Linear(16, 3), torch.nn.Linear(16, 3)
>>> profile = interpolate(a, b, synthetic_classification(), "cross_entropy", n_points=5,
...                       device="cpu")
>>> profile.t.tolist(), profile.barrier >= 0
([0.0, 0.25, 0.5, 0.75, 1.0], True)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..data import EvalData, resolve_loss
from ..engine import Evaluator, PointFailure, metrics_by_name, resolve_device
from ..engine.fold import batchnorm_modules
from ..errors import (
    EvaluationError,
    InvalidTypeError,
    ShapeMismatchError,
    validate_choice,
)
from ..evaluate import evaluate_points
from ..projectors.base import LinearDecoder
from ..space import ParameterSpace
from .profile import PathProfile, validate_n_points

BN = Literal["recompute", "eval"]

__all__ = [
    "check_same_architecture",
    "has_running_stats",
    "interpolate",
    "path_values",
]


def check_same_architecture(model_a: Any, model_b: Any) -> None:
    """Raise unless both are modules with the same tensors (names, order, shapes).

    >>> check_same_architecture(torch.nn.Linear(2, 3), torch.nn.Linear(2, 4))
    Traceback (most recent call last):
    ...
    losstopo.errors.ShapeMismatchError: The two models differ first at tensor 'weight': shape (3, 2) in model_a but (4, 2) in model_b; pass two models of the same architecture.
    """
    for name, m in (("model_a", model_a), ("model_b", model_b)):
        if not isinstance(m, nn.Module):
            raise InvalidTypeError(f"'{name}' must be a torch.nn.Module; got {type(m).__name__}.")
    sa, sb = model_a.state_dict(), model_b.state_dict()
    for (na, ta), (nb, tb) in zip(sa.items(), sb.items(), strict=False):
        if na != nb:
            raise ShapeMismatchError(
                f"The two models differ first at tensor {na!r} of model_a, where model_b has "
                f"{nb!r}; pass two models of the same architecture."
            )
        if tuple(ta.shape) != tuple(tb.shape):
            raise ShapeMismatchError(
                f"The two models differ first at tensor {na!r}: shape {tuple(ta.shape)} in "
                f"model_a but {tuple(tb.shape)} in model_b; pass two models of the same "
                "architecture."
            )
    if len(sa) != len(sb):
        longer, which = (sa, "model_a") if len(sa) > len(sb) else (sb, "model_b")
        extra = list(longer)[min(len(sa), len(sb))]
        raise ShapeMismatchError(
            f"The two models differ first at tensor {extra!r}, which only {which} has; pass two "
            "models of the same architecture."
        )


def has_running_stats(model: nn.Module) -> bool:
    """Whether ``model`` has BatchNorm layers that keep running statistics."""
    return any(m.running_mean is not None for m in batchnorm_modules(model))


def path_values(
    model: nn.Module,
    data: Any,
    loss: Any,
    t: np.ndarray,
    decoder: Any,
    metrics: Sequence[str] = ("accuracy",),
    bn: BN = "recompute",
    device: str | torch.device | None = None,
    buffers: Callable[[float], dict[str, torch.Tensor]] | None = None,
    attrs: dict[str, Any] | None = None,
) -> PathProfile:
    """The loss and metrics at positions ``t`` of a path, on the evaluation engine.

    ``decoder`` maps ``t`` (as coordinates ``(m, 1)``) to flat parameter vectors ``(m,
    n_params)``: a :class:`~losstopo.projectors.LinearDecoder` (a straight path) or any callable.
    With ``bn="recompute"`` the BatchNorm statistics of ``model`` are re-estimated at every point
    from the data; with ``bn="eval"`` they are ``buffers(t)`` (default: the model's own).
    Metrics that do not apply to the loss are skipped and listed in ``attrs["metrics_skipped"]``.
    """
    validate_choice(bn, "bn", ("recompute", "eval"))
    loss_fn, loss_name = resolve_loss(loss)
    requested = metrics_by_name(metrics)
    names = tuple(m.name for m in requested if m.applies_to(loss_name))
    skipped = [m.name for m in requested if not m.applies_to(loss_name)]
    dev = resolve_device(device)
    eval_data = EvalData.from_any(data, loss_name, dev)
    space = ParameterSpace.from_module(model)
    coords = np.asarray(t, dtype=np.float64).reshape(-1, 1)
    with_bn = has_running_stats(model)
    info: dict[str, Any] = {
        "loss": loss_name,
        "data": eval_data.description,
        "model": type(model).__name__,
        "n_params": space.n_params,
        "bn": bn if with_bn else "none",
        "losstopo_version": __version__,
        **(attrs or {}),
    }
    if skipped:
        info["metrics_skipped"] = skipped
    if with_bn and bn == "eval" and buffers is not None:
        values = _per_point(model, eval_data, loss, coords, decoder, names, dev, buffers)
    else:
        ev = Evaluator(
            model,
            space,
            decoder,
            eval_data,
            loss_fn,
            loss_name,
            names,
            dev,
            n_components=1,
            bn="recompute" if with_bn and bn == "recompute" else "eval",
            bn_data=eval_data,
        )
        ev.prepare(len(coords))
        try:
            values = ev.evaluate(coords)
        except PointFailure as exc:
            raise EvaluationError(
                f"The model raised at t={coords[exc.position, 0]:.6g} along the path: "
                f"{type(exc.error).__name__}: {exc.error}. Fix the model (or the data)."
            ) from exc
    return PathProfile.from_values(
        coords[:, 0],
        values[:, 0],
        {n: values[:, j + 1] for j, n in enumerate(names)},
        info,
    )


def _per_point(
    model: nn.Module,
    eval_data: EvalData,
    loss: Any,
    coords: np.ndarray,
    decoder: Any,
    names: tuple[str, ...],
    dev: torch.device,
    buffers: Callable[[float], dict[str, torch.Tensor]],
) -> np.ndarray:
    """Eval-mode BatchNorm with statistics that change along the path: one copy per point."""
    data = (eval_data.inputs, eval_data.targets) if eval_data.resident else eval_data.source
    out = np.empty((len(coords), 1 + len(names)))
    net = copy.deepcopy(model)
    for i, row in enumerate(coords):
        net.load_state_dict(buffers(float(row[0])), strict=False)
        params = np.asarray(decoder(row[None]))
        v = evaluate_points(net, data, loss, params, metrics=names, device=dev)
        out[i, 0] = v.loss[0]
        for j, n in enumerate(names):
            out[i, j + 1] = v.metrics[n][0]
    return out


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module,
    data: Any,
    loss: Any,
    n_points: int = 41,
    metrics: Sequence[str] = ("accuracy",),
    bn: BN = "recompute",
    device: str | torch.device | None = None,
) -> PathProfile:
    """Loss and metrics along the straight path ``(1 - t) A + t B``, and its barrier.

    Parameters
    ----------
    model_a, model_b : two models of the same architecture (never modified)
    data, loss : as for :func:`losstopo.evaluate`
    n_points : positions ``t`` evenly spaced in ``[0, 1]`` (at least 2)
    metrics : extra metrics (``"accuracy"``; skipped for ``"mse"``)
    bn : for models with BatchNorm: ``"recompute"`` re-estimates the statistics at every ``t``
        from the data (the usual choice: interpolated weights with either endpoint's statistics
        give inflated barriers); ``"eval"`` interpolates the two models' statistics linearly.
    device : where to evaluate (default: CUDA when available)

    Returns
    -------
    PathProfile
        ``attrs["kind"] == "linear"``; ``barrier`` and ``barrier_t`` as in
        :func:`~losstopo.connectivity.barrier_of`.
    """
    n_points = validate_n_points(n_points)
    validate_choice(bn, "bn", ("recompute", "eval"))
    check_same_architecture(model_a, model_b)
    space = ParameterSpace.from_module(model_a)
    a = space.flatten(model_a).detach().cpu().double().numpy()
    b = space.flatten(model_b).detach().cpu().double().numpy()
    decoder = LinearDecoder(a, (b - a)[None, :])
    t = np.linspace(0.0, 1.0, n_points)
    return path_values(
        model_a,
        data,
        loss,
        t,
        decoder,
        metrics,
        bn,
        device,
        buffers=buffer_interpolation(model_a, model_b),
        attrs={"kind": "linear", "distance": float(np.linalg.norm(b - a))},
    )


def buffer_interpolation(
    model_a: nn.Module, model_b: nn.Module
) -> Callable[[float], dict[str, torch.Tensor]]:
    """``t -> buffers``: floating buffers interpolated linearly, the others taken from ``model_a``."""
    ba = dict(model_a.named_buffers())
    bb = dict(model_b.named_buffers())

    def at(t: float) -> dict[str, torch.Tensor]:
        out = {}
        for name, x in ba.items():
            y = bb[name]
            out[name] = (1 - t) * x + t * y if x.is_floating_point() else x.clone()
        return out

    return at

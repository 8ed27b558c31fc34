"""`evaluate` and `evaluate_points`: the loss (and metrics) of a model on a grid or at points.

:func:`evaluate` decodes every point of a grid through a projector; :func:`evaluate_points` takes
flat parameter vectors (e.g. checkpoints). Both run on the same engine (:mod:`losstopo.engine`),
on a private copy of the model, with the same default device.

Examples
--------
>>> import torch
>>> from losstopo import Grid, PlaneProjector, evaluate, random_directions
>>> from losstopo.datasets import synthetic_classification
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
>>> proj = PlaneProjector(model, random_directions(model, n_components=2, seed=0))
>>> field = evaluate(model, synthetic_classification(), "cross_entropy", proj,
...                  Grid.square(resolution=5), progress=False)
>>> field.values.shape, sorted(field.metrics)
((5, 5), ['accuracy'])
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from . import distributed
from ._version import __version__
from .data import EvalData, check_outputs, resolve_loss
from .engine import Evaluator, PointFailure, is_linear_decoder, metrics_by_name, resolve_device
from .engine.fold import batchnorm_policy
from .errors import (
    EvaluationError,
    InvalidParameterError,
    InvalidTypeError,
    ShapeMismatchError,
    validate_choice,
    validate_int,
)
from .field import LossField, ProjectedPath
from .grid import Grid
from .projectors.base import LinearDecoder, Projector, as_points
from .space import ParameterSpace, tensor_hash
from .store import PointStore

Mode = Literal["auto", "sequential", "vmap"]

__all__ = ["PointValues", "as_decoder", "evaluate", "evaluate_points", "resolve_loss"]


def evaluate(
    model: nn.Module,
    data: Any,
    loss: Any,
    projector: Any,
    grid: Grid,
    metrics: Sequence[str] = ("accuracy",),
    store: str | os.PathLike[str] | None = None,
    mode: Mode = "auto",
    device: str | torch.device | None = None,
    progress: bool = True,
    *,
    trajectory: Any = None,
    bn: Literal["eval", "recompute"] = "eval",
    bn_data: Any = None,
    bn_batches: int = 4,
    bn_batch_size: int = 256,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    vmap_size: int = 8,
    data_memory_cap: int = 2**30,
    attrs: Mapping[str, Any] | None = None,
) -> LossField:
    """Evaluate ``loss`` at every point of ``grid`` decoded through ``projector``.

    Parameters
    ----------
    model : nn.Module
        Architecture and (for buffers such as BatchNorm statistics) state. Never modified: the
        evaluation runs on a private copy.
    data : (inputs, targets) tensors, a map-style Dataset (read in batches of ``batch_size``),
        a DataLoader, or an iterable of such pairs
        Moved to the device once when it fits under ``data_memory_cap`` bytes.
    loss : "cross_entropy", "mse", or a callable ``(outputs, targets) -> mean loss``
        The mean is weighted correctly across unequal batches.
    projector : a fitted projector with ``inverse_transform`` (e.g. :class:`PlaneProjector`)
    grid : Grid
        Latent coordinates; ``grid.ndim`` must equal the projector's number of components.
    metrics : names of extra metrics, from :data:`losstopo.engine.metrics.METRICS`
        (``"accuracy"``; skipped, and recorded in ``attrs["metrics_skipped"]``, for ``"mse"``)
    store : path of an HDF5 file to write results to as they are computed. Rerunning the same call
        resumes, computing only the missing points; a store of another computation is refused.
    mode : "auto", "sequential" or "vmap" (``K=vmap_size`` points at once; for GPUs)
    device : where to evaluate (default: :func:`losstopo.engine.default_device`, CUDA when
        available)
    progress : show a progress bar (points/s, ETA)
    trajectory : optional Trajectory whose runs are projected and drawn in the field's ``paths``
    bn : "eval" (use the model's BatchNorm statistics) or "recompute" (re-estimate them at every
        point from the first ``bn_batches`` batches of ``bn_batch_size`` samples of ``bn_data``,
        default the evaluation data; fixed sizes, so the result never depends on the evaluation
        batch size)
    batch_size : evaluation batch size (default: measured for speed)
    chunk_size : points per store write (default: about 1/64 of the grid, at least 64)
    attrs : extra provenance to record (e.g. seeds, normalization)

    Returns
    -------
    LossField
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"'model' must be a torch.nn.Module; got {type(model).__name__}.")
    if not isinstance(grid, Grid):
        raise InvalidTypeError(
            f"'grid' must be a losstopo.Grid; got {type(grid).__name__}. Use Grid.square(...)."
        )
    validate_choice(mode, "mode", ("auto", "sequential", "vmap"))
    validate_choice(bn, "bn", ("eval", "recompute"))
    requested = metrics_by_name(metrics)
    vmap_size = validate_int(vmap_size, "vmap_size", low=1)
    bn_batches = validate_int(bn_batches, "bn_batches", low=1)
    bn_batch_size = validate_int(bn_batch_size, "bn_batch_size", low=2)
    if batch_size is not None:
        batch_size = validate_int(batch_size, "batch_size", low=1)
    loss_fn, loss_name = resolve_loss(loss)

    rank, size = distributed.world()
    dev = resolve_device(device)

    space = ParameterSpace.from_module(model)
    _check_projector(projector, space, grid)
    eval_data = EvalData.from_any(
        data, loss_name, dev, memory_cap=data_memory_cap, batch_size=batch_size or 256
    )
    metric_names = tuple(m.name for m in requested if m.applies_to(loss_name))
    skipped = [m.name for m in requested if not m.applies_to(loss_name)]
    bn_eval = (
        EvalData.from_any(
            bn_data, loss_name, dev, memory_cap=data_memory_cap, batch_size=bn_batch_size
        )
        if bn_data is not None
        else None
    )
    if mode == "vmap" and bn == "recompute":
        raise InvalidParameterError(
            "mode='vmap' cannot re-estimate BatchNorm statistics per point; use bn='eval', or "
            "mode='sequential' (or 'auto') with bn='recompute'."
        )
    if mode == "auto":
        moves = bool(getattr(projector, "buffer_names_", ()))  # dir_type="states" directions
        vmap_ok = dev.type == "cuda" and space.n_params <= 5_000_000 and bn == "eval" and not moves
        mode = "vmap" if vmap_ok else "sequential"

    center = space.flatten(model)
    fingerprint = {
        "projector": projector.fingerprint(),
        "grid": _grid_hash(grid),
        "model": space.fingerprint() + ":" + _buffers_hash(model),
        "data": eval_data.fingerprint,
        "loss": loss_name,
        "metrics": ",".join(metric_names),
        "bn": bn
        + (
            f":{bn_batches}x{bn_batch_size}:{(bn_eval or eval_data).fingerprint}"
            if bn == "recompute"
            else ""
        ),
    }
    provenance: dict[str, Any] = {
        "projector": projector.describe(),
        "projector_fingerprint": fingerprint["projector"],
        "loss": loss_name,
        "data": eval_data.description,
        "model": type(model).__name__,
        "model_parameter_hash": tensor_hash(center),
        "n_params": space.n_params,
        "bn": bn,
        "batchnorm": batchnorm_policy(
            model, bn, bn_batches, bn_batch_size, bool(getattr(projector, "buffer_names_", ()))
        ),
        "mode": mode,
        "device": str(dev),
        "world_size": size,
        "losstopo_version": __version__,
    }
    if skipped:
        provenance["metrics_skipped"] = skipped
    if attrs:
        provenance.update(dict(attrs))

    pstore = PointStore.open(
        Path(store) if store is not None and rank == 0 else None, grid, metric_names, fingerprint
    )
    if pstore.complete_field is not None:
        finished = pstore.complete_field
        return distributed.broadcast(finished, size)
    missing = distributed.broadcast(pstore.missing(), size)

    evaluator = Evaluator(
        model,
        space,
        as_decoder(projector),
        eval_data,
        loss_fn,
        loss_name,
        metric_names,
        dev,
        n_components=grid.ndim,
        bn=bn,
        bn_data=bn_eval,
        bn_batches=bn_batches,
        bn_batch_size=bn_batch_size,
        batch_size=batch_size,
        memory_cap=data_memory_cap,
    )
    _check_forward(evaluator)
    if len(missing):
        evaluator.prepare(len(missing))
    provenance["engine"] = "vmap" if mode == "vmap" else evaluator.engine_name
    provenance["batch_size"] = evaluator.batch_size

    points = grid.points()
    chunk = chunk_size or max(64, math.ceil(grid.size / 64))
    chunk = validate_int(chunk, "chunk_size", low=1)
    bar = _progress_bar(grid.size, grid.size - len(missing), progress and rank == 0)
    try:
        for start in range(0, len(missing), chunk * size):
            block = missing[start : start + chunk * size]
            mine = block[rank::size]
            failure: tuple[int, str] | None = None
            try:
                results = evaluator.evaluate(points[mine], mode=mode, vmap_size=vmap_size)
            except PointFailure as exc:
                results = exc.done
                failure = (int(mine[exc.position]), f"{type(exc.error).__name__}: {exc.error}")
                mine = mine[: len(results)]
            gathered = distributed.gather((mine, results, failure), size)
            for idx, res, _ in gathered:
                if len(idx):
                    pstore.put(np.asarray(idx), np.asarray(res))
            failures = [g[2] for g in gathered if g[2] is not None]
            if rank == 0:
                pstore.flush(provenance)
            if failures:
                flat, message = failures[0]
                coords = ", ".join(
                    f"{n}={c:.6g}" for n, c in zip(grid.names, points[flat], strict=True)
                )
                kept = (
                    f"; the {int(pstore.done.sum())} points computed so far are saved in {store}"
                    if store
                    else ""
                )
                raise EvaluationError(
                    f"The model raised at grid point {flat} ({coords}): {message}{kept}. Fix the "
                    "model (or the data) and rerun to resume."
                )
            if bar is not None:
                bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()

    values = pstore.values
    n_nonfinite = int(np.count_nonzero(~np.isfinite(values)))
    provenance["n_nonfinite"] = n_nonfinite
    if n_nonfinite and rank == 0:
        warnings.warn(
            f"{n_nonfinite} of {grid.size} grid points gave a non-finite loss (NaN or inf); they "
            "are recorded as they are and counted in attrs['n_nonfinite'].",
            RuntimeWarning,
            stacklevel=2,
        )
    field = pstore.field(provenance)
    if trajectory is not None:
        field = field.with_paths(project_paths(trajectory, projector, evaluator))
    if rank == 0:
        pstore.finalize(field)
    return distributed.broadcast(field, size)


@dataclass(frozen=True)
class PointValues:
    """The loss and metrics at each of ``n`` points of parameter space.

    ``loss``: the mean loss over the data at each point, ``(n,)``; ``metrics``: one ``(n,)``
    array per requested metric, by name.

    Examples
    --------
    >>> import numpy as np
    >>> v = PointValues(np.array([0.5, 0.25]), {"accuracy": np.array([0.5, 1.0])})
    >>> float(v.loss[1]), float(v.metrics["accuracy"][0])
    (0.25, 0.5)
    """

    loss: np.ndarray
    metrics: dict[str, np.ndarray] = field(default_factory=dict)


def evaluate_points(
    model: nn.Module,
    data: Any,
    loss: Any,
    points: Any,
    metrics: Sequence[str] = (),
    device: str | torch.device | None = None,
    batch_size: int | None = None,
) -> PointValues:
    """The loss (and ``metrics``) of ``model``'s architecture at each row of ``points``.

    The engine of :func:`evaluate` (eval-mode BatchNorm, the same reductions and batch-size
    choice) on a private copy of the model: the caller's model is not touched, and the values
    equal :func:`evaluate`'s at the same parameters. ``points``: an ``(n, n_params)`` array or
    tensor of flat parameter vectors, or a Trajectory; ``model``, ``data``, ``loss``,
    ``metrics``, ``device`` (default :func:`losstopo.engine.default_device`) and ``batch_size``
    (default: measured for speed) as for :func:`evaluate`.

    Examples
    --------
    >>> import torch
    >>> from losstopo import ParameterSpace, evaluate_points
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    >>> x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    >>> center = ParameterSpace.from_module(model).flatten(model)
    >>> values = evaluate_points(model, (x, y), "cross_entropy", torch.stack([center, 0 * center]),
    ...                          metrics=["accuracy"], device="cpu")
    >>> direct = torch.nn.functional.cross_entropy(model(x), y).item()
    >>> bool(abs(values.loss[0] - direct) < 1e-6), float(values.loss[1])  # zero weights: log(3)
    (True, 1.0986...)
    >>> values.metrics["accuracy"].shape
    (2,)
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"'model' must be a torch.nn.Module; got {type(model).__name__}.")
    rows = as_points(points, "points")
    space = ParameterSpace.from_module(model)
    if rows.shape[1] != space.n_params:
        raise ShapeMismatchError(
            f"The points have {rows.shape[1]} parameters but the model has {space.n_params}; "
            "pass the model the points (e.g. the trajectory) were recorded from."
        )
    if batch_size is not None:
        batch_size = validate_int(batch_size, "batch_size", low=1)
    loss_fn, loss_name = resolve_loss(loss)
    requested = metrics_by_name(metrics)
    for m in requested:
        if not m.applies_to(loss_name):
            raise InvalidParameterError(
                f"The metric {m.name!r} does not apply to the loss {loss_name!r}; drop it from "
                "'metrics'."
            )
    dev = resolve_device(device)
    eval_data = EvalData.from_any(data, loss_name, dev, batch_size=batch_size or 256)
    names = tuple(m.name for m in requested)
    ev = Evaluator(
        model, space, None, eval_data, loss_fn, loss_name, names, dev, batch_size=batch_size
    )
    _check_forward(ev)
    ev.prepare(len(rows), probe=rows[0])
    try:
        values = ev.evaluate_params(rows)
    except PointFailure as exc:
        raise EvaluationError(
            f"The model raised at point {exc.position} (row {exc.position} of 'points'): "
            f"{type(exc.error).__name__}: {exc.error}. Fix the model (or the data)."
        ) from exc
    return PointValues(
        loss=values[:, 0].copy(),
        metrics={name: values[:, j + 1].copy() for j, name in enumerate(names)},
    )


def as_decoder(projector_or_decoder: Any) -> Any:
    """What the engine decodes grid points with: a projector's ``decoder()``, or a decoder as is.

    A decoder is a :class:`~losstopo.projectors.LinearDecoder` (``center + coords @ components``:
    the engine's fast paths apply) or any callable ``coords (m, d) -> params (m, n_params)``.

    Examples
    --------
    >>> import torch
    >>> from losstopo import PCAProjector
    >>> pca = PCAProjector(1).fit(torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.1]]))
    >>> decoder = as_decoder(pca)
    >>> type(decoder).__name__, bool(((decoder([[0.5]]) - pca.inverse_transform([[0.5]])) ** 2).sum() < 1e-20)
    ('LinearDecoder', True)
    """
    obj = projector_or_decoder
    make = getattr(obj, "decoder", None)
    if callable(make):
        return make()
    if getattr(obj, "linear", False):  # a projector of the user's own, linear
        return LinearDecoder(np.asarray(obj.center_), np.asarray(obj.components_))
    inverse = getattr(obj, "inverse_transform", None)
    if callable(inverse):  # a projector of the user's own, decoding
        return inverse
    if is_linear_decoder(obj) or callable(obj):
        return obj
    raise InvalidTypeError(
        f"Expected a losstopo projector, a LinearDecoder (center, components) or a callable "
        f"coords -> params; got {type(obj).__name__}."
    )


def project_paths(
    trajectory: Any, projector: Any, evaluator: Evaluator | None = None
) -> dict[str, ProjectedPath]:
    """Each run of ``trajectory`` in the projector's coordinates, with the loss there if known."""
    paths = {}
    for run in trajectory.run_ids:
        part = trajectory.select(run)
        coords = np.asarray(projector.transform(part))
        loss = None
        if evaluator is not None and getattr(projector, "decodes", True):
            try:
                loss = evaluator.evaluate(coords)[:, 0]
            except (PointFailure, NotImplementedError):
                loss = None
        paths[run] = ProjectedPath(coords=coords, step=part.steps, loss=loss, run=run)
    return paths


def _check_projector(projector: Any, space: ParameterSpace, grid: Grid) -> None:
    # losstopo's projectors, or a user's own object with the same methods
    if not all(hasattr(projector, m) for m in ("transform", "inverse_transform", "fingerprint")):
        raise InvalidTypeError(
            "'projector' must be a losstopo projector (e.g. PlaneProjector) or an object with "
            f"transform, inverse_transform and fingerprint; got {type(projector).__name__}."
        )
    if isinstance(projector, Projector):
        projector.check_fitted()
        projector.decoder()  # a projector that only embeds (PHATE) says so here, naming others
    n_comp = int(projector.n_components_)
    if n_comp != grid.ndim:
        raise ShapeMismatchError(
            f"The projector has {n_comp} components but the grid has {grid.ndim} axes; use "
            f"Grid.square(n_components={n_comp}) or a projector with {grid.ndim} components."
        )
    n_params = int(getattr(projector, "n_params_", space.n_params))
    if n_params != space.n_params:
        raise ShapeMismatchError(
            f"The projector maps to {n_params} parameters but the model has {space.n_params}; "
            "build the projector from the same model."
        )


def _check_forward(evaluator: Evaluator) -> None:
    """One forward pass at the centre so data/model mismatches get a clear message first."""
    data = evaluator.data
    x, y = next(iter(data.batches(min(data.n_samples, 8), evaluator.device)))
    try:
        with torch.inference_mode():
            out = evaluator.net(x)
            evaluator.loss_fn(out, y)
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        raise EvaluationError(
            f"The model or the loss fails on the data before any grid point ({type(exc).__name__}: "
            f"{exc}); check that the inputs fit the model and the targets fit the loss."
        ) from exc
    check_outputs(out, y, evaluator.loss_name)


def _grid_hash(grid: Grid) -> str:
    h = hashlib.sha256(json.dumps(list(grid.names)).encode())
    for axis in grid.axes.values():
        h.update(np.ascontiguousarray(axis).tobytes())
    return h.hexdigest()[:16]


def _buffers_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, b in model.named_buffers():
        h.update(name.encode())
        h.update(tensor_hash(b).encode())
    return h.hexdigest()[:16]


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="pt", desc="landscape", smoothing=0.1)

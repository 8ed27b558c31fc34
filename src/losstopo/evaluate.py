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

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from . import distributed
from ._version import __version__
from .data import EvalData, resolve_loss
from .engine import Evaluator, PointFailure, metrics_by_name, resolve_device
from .engine.decoding import as_decoder
from .engine.device import tf32_policy
from .engine.fold import batchnorm_policy
from .engine.vmap import vmap_suits
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
from .projectors.base import Projector, as_points
from .projectors.state import projector_state
from .space import ParameterSpace, tensor_hash
from .store import PointStore, buffers_hash, check_memory, grid_hash

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
    deterministic: bool = False,
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
    mode : "auto", "sequential" or "vmap" (``K=vmap_size`` points at once; for GPUs).
        ``"auto"`` runs vmap on CUDA for models without convolution layers, else sequential.
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
    deterministic : skip the speed measurement and use a fixed strategy (batch size
        ``min(n_samples, 1024)``, the first-layer split whenever it applies, convolutions in
        their default layout; ``mode="auto"``
        means sequential): two runs on one machine give the same values bit for bit. Whatever
        this flag, a resumed store reuses the strategy its first segment recorded in
        ``attrs["strategy"]``, and every rank uses rank 0's.

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
    requested = metrics_by_name(_metric_names(metrics))
    vmap_size = validate_int(vmap_size, "vmap_size", low=1)
    bn_batches = validate_int(bn_batches, "bn_batches", low=1)
    bn_batch_size = validate_int(bn_batch_size, "bn_batch_size", low=2)
    if batch_size is not None:
        batch_size = validate_int(batch_size, "batch_size", low=1)
    if chunk_size is not None:
        chunk_size = validate_int(chunk_size, "chunk_size", low=1)
    loss_fn, loss_name = resolve_loss(loss)

    check_memory(grid, len(requested))
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
        vmap_ok = vmap_ok and not deterministic and vmap_suits(model)
        mode = "vmap" if vmap_ok else "sequential"

    center = space.flatten(model)
    fingerprint = {
        "projector": projector.fingerprint(),
        "grid": grid_hash(grid),
        "model": space.fingerprint() + ":" + buffers_hash(model),
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
        **tf32_policy(dev),
        "world_size": size,
        "losstopo_version": __version__,
    }
    if skipped:
        provenance["metrics_skipped"] = skipped
    if attrs:
        provenance.update(dict(attrs))

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
    opened: list[PointStore] = [PointStore(grid, metric_names, fingerprint)]  # ranks > 0

    def open_store() -> None:  # rank 0 opens (and locks) the store; every rank hears how it went
        opened[0] = PointStore.open(
            Path(store) if store is not None else None, grid, metric_names, fingerprint
        )

    distributed.run_on_rank0(open_store, rank, size)
    source = (attrs or {}).get("trajectory")  # where the checkpoints are, when known
    opened[0].projector_state = projector_state(
        projector, source=None if source is None else str(source)
    )
    opts = dict(store=store, mode=mode, vmap_size=vmap_size, chunk_size=chunk_size)
    opts.update(progress=progress, trajectory=trajectory, deterministic=deterministic)
    try:
        return _run_store(opened[0], evaluator, projector, grid, provenance, rank, size, **opts)
    finally:
        opened[0].close()


def _run_store(
    pstore: PointStore,
    evaluator: Evaluator,
    projector: Any,
    grid: Grid,
    provenance: dict[str, Any],
    rank: int,
    size: int,
    **opts: Any,
) -> LossField:
    """The part of :func:`evaluate` after the store is open: every rank runs it in step."""
    store, mode = opts["store"], opts["mode"]
    finished = distributed.run_on_rank0(lambda: pstore.complete_field, rank, size)
    if finished is not None:  # decodes with the projector given (the fingerprints matched)
        return replace(finished, projector_state=pstore.projector_state)
    missing = distributed.broadcast(pstore.missing(), size)
    evaluator.check_forward()

    def choose() -> dict[str, Any]:  # rank 0 chooses; every rank uses its choice
        if pstore.strategy is not None:  # a resume: the strategy of the first segment
            evaluator.prepare(len(missing), strategy=pstore.strategy)
        elif opts["deterministic"]:
            evaluator.prepare(len(missing), strategy=evaluator.fixed_strategy())
        elif len(missing):
            evaluator.prepare(len(missing))
        return evaluator.strategy

    strategy = distributed.run_on_rank0(choose, rank, size)
    if rank != 0:
        evaluator.prepare(len(missing), strategy=strategy)
    provenance["engine"] = "vmap" if mode == "vmap" else evaluator.engine_name
    provenance["batch_size"] = evaluator.batch_size
    provenance["fast_paths"] = evaluator.fast_paths  # {"path": "fx" | "generic", "detail": ...}
    provenance["strategy"] = {**evaluator.strategy, "mode": mode}
    provenance["deterministic"] = bool(opts["deterministic"])

    points = grid.points()
    chunk = opts["chunk_size"] or max(64, math.ceil(grid.size / 64))
    bar = _progress_bar(grid.size, grid.size - len(missing), opts["progress"] and rank == 0)
    try:
        distributed.evaluate_chunks(
            evaluator,
            pstore,
            points,
            missing,
            grid.names,
            rank=rank,
            size=size,
            chunk=chunk,
            mode=mode,
            vmap_size=opts["vmap_size"],
            attrs=provenance,
            store=store,
            bar=bar,
        )
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
            stacklevel=3,
        )
    field = pstore.field(provenance)
    trajectory = opts["trajectory"]
    if trajectory is not None:
        field = field.with_paths(project_paths(trajectory, projector, evaluator))

    def finish() -> LossField:
        pstore.finalize(field)
        return field

    return distributed.run_on_rank0(finish, rank, size)


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
    requested = metrics_by_name(_metric_names(metrics))
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
    ev.check_forward()
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


def _metric_names(metrics: Any) -> Sequence[str]:
    if isinstance(metrics, str):
        raise InvalidTypeError(
            f"'metrics' must be a list of metric names; got the string {metrics!r}. Write "
            f"metrics=[{metrics!r}]."
        )
    iterable = hasattr(metrics, "__iter__") and not isinstance(metrics, (bytes, os.PathLike))
    names = tuple(metrics) if iterable else None
    if names is None or not all(isinstance(m, str) for m in names):
        raise InvalidTypeError(
            f"'metrics' must be a list of metric names; got {metrics!r}. Pass names such as "
            "metrics=['accuracy'] (the sixth positional argument; give a store as store=...)."
        )
    return names


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="pt", desc="landscape", smoothing=0.1)

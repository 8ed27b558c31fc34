"""`hessian_map`: Li et al.'s curvature map, ``|lambda_min / lambda_max|`` at every grid point.

At each point of a landscape's grid the parameters are decoded through the projector and a few
Lanczos steps on the full-space Hessian there give its extreme eigenvalues. Li et al. (2018,
Fig. 7) map the ratio ``|lambda_min / lambda_max|``: near 0 the loss is locally convex in the
full space, large values mean strong negative curvature that a 2D picture may not show.

The map runs like :func:`losstopo.evaluate`: in chunks, resumable from ``store`` (a field file
with a ``done`` mask; a ``kill -9`` loses at most the chunk in flight), sharded across
``torchrun`` / ``--workers`` ranks. Every point's Lanczos start vector comes from ``seed`` and the
point's flat index, so a resumed or sharded map equals an uninterrupted one.

Examples
--------
>>> import torch
>>> from losstopo import Grid, PlaneProjector, hessian_map, random_directions
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
>>> data = (torch.randn(32, 3), torch.randint(0, 2, (32,)))
>>> proj = PlaneProjector(model, random_directions(model, n_components=2, seed=0))
>>> cmap = hessian_map(model, data, "cross_entropy", proj, Grid.square(resolution=3), k=8,
...                    progress=False, device="cpu")
>>> sorted(cmap.metrics), cmap.attrs["quantity"]
(['lambda_max', 'lambda_min'], 'abs(lambda_min / lambda_max)')
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .. import distributed
from .._version import __version__
from ..errors import InvalidParameterError, InvalidTypeError, validate_int
from ..evaluate import as_decoder
from ..field import LossField
from ..grid import Grid
from ..store import PointStore
from .lanczos import lanczos
from .operator import hvp

METRICS = ("lambda_max", "lambda_min")


def _fingerprint(model: nn.Module, op: Any, projector: Any, grid: Grid, k: int, seed: int) -> dict:
    h = hashlib.sha256(json.dumps(list(grid.names)).encode())
    for axis in grid.axes.values():
        h.update(np.ascontiguousarray(axis).tobytes())
    m = hashlib.sha256(op.center.detach().cpu().double().numpy().tobytes())
    for name, b in model.named_buffers():
        m.update(name.encode() + b.detach().cpu().double().numpy().tobytes())
    return {
        "kind": "hessian_map",
        "grid": h.hexdigest()[:16],
        "model": m.hexdigest()[:16],
        "architecture": op.space.fingerprint(),
        "data": op.data.fingerprint,
        "loss": op.reduction.loss_name,
        "projector": str(projector.fingerprint()),
        "lanczos": f"{k}:{seed}:{op.batch_size}:{op.param_dtype}",
    }


def _extremes(op: Any, k: int, seed: int) -> tuple[float, float]:
    ritz = lanczos(op.matvec, op.shape[0], k, seed=seed).ritz_values()
    return float(ritz[-1]), float(ritz[0])


def hessian_map(
    model: nn.Module,
    data: Any,
    loss: Any,
    projector: Any,
    grid: Grid,
    store: str | Path | None = None,
    k: int = 20,
    seed: int = 0,
    progress: bool = True,
    device: Any = None,
    batch_size: int | None = None,
    chunk_size: int | None = None,
) -> LossField:
    """The curvature map of ``projector``'s landscape on ``grid``.

    Returns a :class:`~losstopo.LossField` whose ``values`` are ``|lambda_min / lambda_max|`` and
    whose ``metrics`` hold ``lambda_max`` and ``lambda_min``: the extreme Ritz values of ``k``
    Lanczos steps (``k`` Hessian-vector products) per point. A few steps find ``lambda_max`` to a
    few digits; ``lambda_min`` converges more slowly (it bounds the true value from above), so
    raise ``k`` where the sign of small negative curvature matters.
    """
    if not isinstance(grid, Grid):
        raise InvalidTypeError(f"'grid' must be a losstopo.Grid; got {type(grid).__name__}.")
    k = validate_int(k, "k", low=2)
    n_comp = int(getattr(projector, "n_components_", grid.ndim))
    if n_comp != grid.ndim:
        raise InvalidParameterError(
            f"The projector has {n_comp} components but the grid has {grid.ndim} axes; use a "
            f"grid with {n_comp} axes."
        )
    decoder = as_decoder(projector)
    op = hvp(model, data, loss, device=device, batch_size=batch_size)
    n_params = int(getattr(projector, "n_params_", op.shape[0]))
    if n_params != op.shape[0]:
        raise InvalidParameterError(
            f"The projector maps to {n_params} parameters but the model has {op.shape[0]}; "
            "build the projector from the same model."
        )
    rank, size = distributed.world()
    fingerprint = _fingerprint(model, op, projector, grid, k, seed)
    attrs: dict[str, Any] = {
        "quantity": "abs(lambda_min / lambda_max)",
        "lanczos_steps": k,
        "seed": seed,
        "loss": op.reduction.loss_name,
        "bn": "eval",
        "data": dict(op.data.description),
        "projector": projector.describe() if hasattr(projector, "describe") else {},
        "losstopo_version": __version__,
    }
    opened: list[PointStore] = [PointStore(grid, METRICS, fingerprint)]  # ranks > 0

    def open_store() -> None:  # rank 0 opens (and locks) the store; every rank hears how it went
        opened[0] = PointStore.open(
            Path(store) if store is not None else None, grid, METRICS, fingerprint
        )

    distributed.run_on_rank0(open_store, rank, size)
    try:
        return _run(opened[0], op, decoder, grid, attrs, k, seed, chunk_size, progress)
    finally:
        opened[0].close()


def _run(
    pstore: PointStore,
    op: Any,
    decoder: Any,
    grid: Grid,
    attrs: dict[str, Any],
    k: int,
    seed: int,
    chunk_size: int | None,
    progress: bool,
) -> LossField:
    rank, size = distributed.world()
    finished = distributed.run_on_rank0(lambda: pstore.complete_field, rank, size)
    if finished is not None:
        return finished
    missing = distributed.broadcast(pstore.missing(), size)
    points = grid.points()
    chunk = validate_int(chunk_size or max(8, math.ceil(grid.size / 32)), "chunk_size", low=1)
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=grid.size, initial=grid.size - len(missing), unit="pt", desc="hessian")
    try:
        for start in range(0, len(missing), chunk * size):
            block = missing[start : start + chunk * size]
            mine = block[rank::size]
            rows = []
            error: BaseException | None = None
            try:
                if len(mine):
                    params = np.asarray(decoder(points[mine]), dtype=np.float64)
                    for idx, p in zip(mine, params, strict=True):
                        lam_max, lam_min = _extremes(op.at(p), k, seed + int(idx))
                        ratio = abs(lam_min / lam_max) if lam_max != 0 else math.inf
                        rows.append((ratio, lam_max, lam_min))
            except Exception as exc:  # noqa: BLE001 - shared with every rank below
                error = exc
            gathered = distributed.gather(
                (
                    mine[: len(rows)],
                    rows,
                    None if error is None else distributed.portable(error, rank),
                ),
                size,
            )
            for idx, res, _ in gathered:
                if len(idx):
                    pstore.put(np.asarray(idx), np.asarray(res, dtype=np.float64))
            distributed.run_on_rank0(lambda: pstore.flush(attrs), rank, size)
            distributed.raise_first([g[2] for g in gathered], error, rank)
            if bar is not None:
                bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    field = pstore.field(attrs)
    distributed.run_on_rank0(lambda: pstore.finalize(field), rank, size)
    return field


__all__ = ["hessian_map"]

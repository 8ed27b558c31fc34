"""The resumable store behind ``evaluate(..., store="run.h5")``.

The store is a losstopo field file (``docs/format.md``) with ``complete=False``, a ``done`` mask
and a ``fingerprint`` of everything that determines the values. After every chunk the whole file
is rewritten into a temporary file and renamed over the old one, so a ``kill -9`` at any moment
leaves the previous complete state: at most the chunk in flight is lost, and nothing written is
ever damaged. When every point is done the same file becomes the finished field.

A store is opened for writing by one process at a time: :meth:`PointStore.open` takes the file's
writer lock (:mod:`losstopo.io.lock`) and holds it until :meth:`PointStore.close`, so a second
run on the same path is refused at once with a sentence naming the first.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InvalidParameterError, StoreMismatchError, validate_output_path
from .field import LossField
from .grid import Grid
from .io.hdf5 import read_field, read_fingerprint, read_partial, read_progress, write_store
from .io.lock import writer_lock
from .space import tensor_hash

__all__ = [
    "PointStore",
    "buffers_hash",
    "check_memory",
    "check_store_path",
    "grid_hash",
    "read_progress",
    "store_progress",
]

#: The former name of :func:`losstopo.io.read_progress`.
store_progress = read_progress


def check_store_path(path: str | Path) -> Path:
    """Refuse, before any work, an output a run could not use as its store.

    ``path`` must be writable (its directory, and the file itself if it exists), an existing file
    must be an evaluation store (a run to resume, or a finished one), and no other process may be
    writing it (:mod:`losstopo.io.lock`). The fingerprint is checked when the run opens the store.
    """
    path = validate_output_path(path, Path(path).name)
    if path.exists():
        if not os.access(path, os.W_OK):
            raise StoreMismatchError(
                f"{path} is read-only; make it writable (chmod u+w) or choose another output path."
            )
        if read_fingerprint(path) is None:
            raise StoreMismatchError(
                f"{path} holds a losstopo field that was not written by evaluate's store; "
                "choose another --out/store path (it is never overwritten)."
            )
    with writer_lock(path):
        pass  # refused now if another run holds it
    return path


def memory_estimate(n_points: int, n_metrics: int, ndim: int) -> int:
    """Bytes a run of ``n_points`` needs beyond the model: values, metrics, the done mask and the
    coordinates, and the file image written at each flush."""
    per_point = 2 * (8 * (1 + n_metrics) + 1) + 8 * ndim
    return int(n_points) * per_point


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable``, else the physical total), if known."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(grid: Grid | tuple[int, int], n_metrics: int = 1) -> None:
    """Refuse a grid whose run would not fit in memory, saying how much it needs.

    ``grid``: a :class:`~losstopo.Grid`, or ``(resolution, n_dims)`` before one is built.

    >>> check_memory((10**6, 3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    losstopo.errors.InvalidParameterError: A grid of 10^6 points per axis in 3 dimensions ...
    """
    if isinstance(grid, Grid):
        n_points, ndim, what = grid.size, grid.ndim, f"The grid of {grid.size} points"
    else:
        resolution, ndim = grid
        n_points = int(resolution) ** int(ndim)
        exp = len(str(int(resolution))) - 1
        res = f"10^{exp}" if int(resolution) == 10**exp and exp > 2 else str(resolution)
        what = f"A grid of {res} points per axis in {ndim} dimensions ({n_points:.3g} points)"
    need = memory_estimate(n_points, n_metrics, ndim)
    have = available_memory()
    if have is not None and need > have:
        raise InvalidParameterError(
            f"{what} needs about {_bytes(need)} of memory but {_bytes(have)} is available; "
            "lower the resolution (or the number of dimensions)."
        )


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


class PointStore:
    """Values of the points computed so far, optionally mirrored to an HDF5 file."""

    def __init__(
        self,
        grid: Grid,
        metric_names: tuple[str, ...],
        fingerprint: dict[str, str],
        path: Path | None = None,
    ):
        self.grid = grid
        self.metric_names = metric_names
        self.fingerprint = fingerprint
        self.path = path
        self.values = np.full(grid.size, np.nan)
        self.metrics = {m: np.full(grid.size, np.nan) for m in metric_names}
        self.done = np.zeros(grid.size, dtype=bool)
        self.complete_field: LossField | None = None
        #: The engine strategy a partial run recorded (``attrs["strategy"]``), reused on resume.
        self.strategy: dict[str, Any] | None = None
        #: What decodes the field (written into the file's ``/projector`` group).
        self.projector_state: Any = None
        self._lock = ExitStack()

    @classmethod
    def open(
        cls,
        path: str | Path | None,
        grid: Grid,
        metric_names: tuple[str, ...],
        fingerprint: dict[str, str],
    ) -> PointStore:
        """A new store, or the matching partial (or finished) run found at ``path``."""
        if path is None:
            return cls(grid, metric_names, fingerprint)
        path = validate_output_path(path, Path(path).name)
        store = cls(grid, metric_names, fingerprint, path)
        store._lock.enter_context(writer_lock(path))
        try:
            store._load(path)
        except BaseException:
            store.close()
            raise
        return store

    def _load(self, path: Path) -> None:
        store, fingerprint, metric_names = self, self.fingerprint, self.metric_names
        if not path.exists():
            return
        stored = read_fingerprint(path)
        if stored is None:
            raise StoreMismatchError(
                f"{path} holds a losstopo field that was not written by evaluate's store; "
                "choose another --out/store path (it is never overwritten)."
            )
        differing = [k for k in fingerprint if stored.get(k) != fingerprint[k]]
        differing += [k for k in stored if k not in fingerprint]
        if differing:
            raise StoreMismatchError(
                f"{path} holds a run with other {', '.join(differing)} than this call; it is "
                "never mixed or overwritten. Use the same arguments to resume, or another path "
                "for a new run."
            )
        if read_progress(path)[2]:
            store.complete_field = read_field(path)
            store.done[:] = True
            return
        partial = read_partial(path, metric_names, self.grid.size)
        store.done, store.values, store.metrics = partial.done, partial.values, partial.metrics
        strategy = partial.attrs.get("strategy")
        store.strategy = dict(strategy) if isinstance(strategy, dict) else None

    def close(self) -> None:
        """Let the writer lock go (the file stays as last written)."""
        self._lock.close()

    def missing(self) -> np.ndarray:
        """Flat indices of the points not computed yet."""
        return np.flatnonzero(~self.done)

    def put(self, indices: np.ndarray, results: np.ndarray) -> None:
        """Record ``results`` (loss, then one column per metric) at the flat ``indices``."""
        self.values[indices] = results[:, 0]
        for j, m in enumerate(self.metric_names):
            self.metrics[m][indices] = results[:, 1 + j]
        self.done[indices] = True

    def field(self, attrs: dict[str, Any]) -> LossField:
        """The values so far as a field (NaN where not computed)."""
        return LossField(
            values=self.values.reshape(self.grid.shape),
            grid=self.grid,
            metrics={m: v.reshape(self.grid.shape) for m, v in self.metrics.items()},
            attrs=attrs,
            projector_state=self.projector_state,
        )

    def flush(self, attrs: dict[str, Any]) -> None:
        """Write the partial state (atomic)."""
        if self.path is not None:
            write_store(
                self.path,
                self.field({**attrs, "partial": True}),
                self.done,
                self.fingerprint,
                complete=False,
            )

    def finalize(self, field: LossField) -> None:
        """Write the finished field (atomic)."""
        if self.path is not None:
            write_store(self.path, field, self.done, self.fingerprint, complete=True)


def grid_hash(grid: Grid) -> str:
    """A short hash of the grid's axis names and coordinates (part of a store's fingerprint)."""
    h = hashlib.sha256(json.dumps(list(grid.names)).encode())
    for axis in grid.axes.values():
        h.update(np.ascontiguousarray(axis).tobytes())
    return h.hexdigest()[:16]


def buffers_hash(model: torch.nn.Module) -> str:
    """A short hash of the model's buffers (e.g. BatchNorm statistics), by name."""
    h = hashlib.sha256()
    for name, b in model.named_buffers():
        h.update(name.encode())
        h.update(tensor_hash(b).encode())
    return h.hexdigest()[:16]

"""The resumable store behind ``evaluate(..., store="run.h5")``.

The store is a losstopo field file (``docs/format.md``) with ``complete=False``, a ``done`` mask
and a ``fingerprint`` of everything that determines the values. After every chunk the whole file
is rewritten into a temporary file and renamed over the old one, so a ``kill -9`` at any moment
leaves the previous complete state: at most the chunk in flight is lost, and nothing written is
ever damaged. When every point is done the same file becomes the finished field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import StoreMismatchError, validate_output_path
from .field import LossField
from .grid import Grid
from .io.hdf5 import read_field, read_fingerprint, read_partial, read_progress, write_store

__all__ = ["PointStore", "read_progress", "store_progress"]

#: The former name of :func:`losstopo.io.read_progress`.
store_progress = read_progress


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
        if not path.exists():
            return store
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
            return store
        partial = read_partial(path, metric_names)
        store.done, store.values, store.metrics = partial.done, partial.values, partial.metrics
        return store

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

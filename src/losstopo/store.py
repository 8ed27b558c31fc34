"""The resumable store behind ``evaluate(..., store="run.h5")``.

The store is a losstopo field file (``docs/format.md``) with ``complete=False``, a ``done`` mask
and a ``fingerprint`` of everything that determines the values. After every chunk the whole file
is rewritten into a temporary file and renamed over the old one, so a ``kill -9`` at any moment
leaves the previous complete state: at most the chunk in flight is lost, and nothing written is
ever damaged. When every point is done the same file becomes the finished field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import FieldFormatError, StoreMismatchError
from .field import LossField, _check_parent, open_field_file, write_atomically
from .grid import Grid


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
        path = Path(path)
        _check_parent(path)
        store = cls(grid, metric_names, fingerprint, path)
        if not path.exists():
            return store
        with open_field_file(path) as f:
            stored = json.loads(f.attrs.get("fingerprint_json", "null") or "null")
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
            complete = bool(f.attrs.get("complete", False))
            if complete:
                store.complete_field = LossField._read(f)
                store.done[:] = True
                return store
            try:
                store.done = f["done"][()].astype(bool).ravel()
                store.values = f["values"][()].astype(np.float64).ravel()
                for m in metric_names:
                    store.metrics[m] = f["metrics"][m][()].astype(np.float64).ravel()
            except KeyError as exc:
                raise FieldFormatError(
                    f"{path} is a damaged partial run ({exc}); delete it to start over."
                ) from exc
        return store

    def missing(self) -> np.ndarray:
        return np.flatnonzero(~self.done)

    def put(self, indices: np.ndarray, results: np.ndarray) -> None:
        self.values[indices] = results[:, 0]
        for j, m in enumerate(self.metric_names):
            self.metrics[m][indices] = results[:, 1 + j]
        self.done[indices] = True

    def field(self, attrs: dict[str, Any]) -> LossField:
        return LossField(
            values=self.values.reshape(self.grid.shape),
            grid=self.grid,
            metrics={m: v.reshape(self.grid.shape) for m, v in self.metrics.items()},
            attrs=attrs,
        )

    def flush(self, attrs: dict[str, Any]) -> None:
        """Write the partial state (atomic)."""
        if self.path is not None:
            self._write(self.field({**attrs, "partial": True}), complete=False)

    def finalize(self, field: LossField) -> None:
        """Write the finished field (atomic)."""
        if self.path is not None:
            self._write(field, complete=True)

    def _write(self, field: LossField, complete: bool) -> None:
        assert self.path is not None

        def write(f: h5py.File) -> None:
            field._write(f, complete=complete)
            f.create_dataset("done", data=self.done.reshape(self.grid.shape))
            f.attrs["fingerprint_json"] = json.dumps(self.fingerprint)

        write_atomically(self.path, write)


def store_progress(path: str | Path) -> tuple[int, int, bool]:
    """``(done, total, complete)`` of a store or field file."""
    with open_field_file(path) as f:
        if "values" not in f:
            raise FieldFormatError(
                f"{path} is marked as a losstopo field but has no 'values' dataset; it is damaged "
                "or was not written by losstopo. Recompute it."
            )
        total = int(np.prod(f["values"].shape))
        complete = bool(f.attrs.get("complete", True))
        done = int(np.count_nonzero(f["done"][()])) if "done" in f else (total if complete else 0)
        return done, total, complete

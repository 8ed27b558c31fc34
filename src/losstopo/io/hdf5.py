"""HDF5 reading and writing of loss fields, evaluation stores and their topology.

The layout is documented in ``docs/format.md``. Every write goes to a temporary file in the
target's directory that is then renamed over the target (:func:`write_atomically`), so a crash or
``kill -9`` leaves either the previous file or the new one, never a mix.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from losstopo import Grid, LossField
>>> from losstopo.io import read_field, read_progress, write_field
>>> field = LossField(np.arange(9.0).reshape(3, 3), Grid.square(3))
>>> path = os.path.join(tempfile.mkdtemp(), "f.h5")
>>> write_field(path, field)
>>> read_field(path).equals(field), read_progress(path)
(True, (9, 9, True))
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from .._version import __version__
from ..errors import FieldFormatError, InvalidTypeError, validate_output_path
from ..field import LossField, ProjectedPath
from ..grid import Grid
from ..jsonable import to_jsonable
from .lock import writer_lock
from .projector import read_projector_group, write_projector_group
from .replace import write_replacing

if TYPE_CHECKING:
    from ..topology import TopologySummary

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PartialRun",
    "open_field_file",
    "read_field",
    "read_fingerprint",
    "read_partial",
    "read_progress",
    "store_topology",
    "write_atomically",
    "write_field",
    "write_field_contents",
    "write_store",
]

FORMAT_NAME = "losstopo-field"
#: 1: topology as a ``topology_json`` attribute; 2: topology as a ``/topology`` group.
FORMAT_VERSION = 2

PathLike = str | os.PathLike[str]


class open_field_file:
    """Open a losstopo HDF5 file for reading, turning foreign or corrupt files into one clear error.

    >>> import tempfile, os
    >>> with open_field_file(os.path.join(tempfile.mkdtemp(), "x.h5")) as f:  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    ...
    losstopo.errors.FieldFormatError: .../x.h5 does not exist; check the path.
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self.file: h5py.File | None = None

    def __enter__(self) -> h5py.File:
        if not self.path.exists():
            raise FieldFormatError(f"{self.path} does not exist; check the path.")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as exc:
            raise FieldFormatError(
                f"{self.path} is not a readable HDF5 file ({exc.__class__.__name__}); it may be "
                "corrupt or of another format. Recompute it or pass a file written by losstopo."
            ) from exc
        if self.file.attrs.get("format") != FORMAT_NAME:
            self.file.close()
            raise FieldFormatError(
                f"{self.path} is an HDF5 file but not a losstopo field (no format={FORMAT_NAME!r} "
                "attribute); pass a file written by LossField.save or losstopo landscape."
            )
        raw = self.file.attrs.get("format_version", 1)
        if isinstance(raw, (bool, np.bool_)) or not isinstance(raw, (int, np.integer)):
            self.file.close()
            raise FieldFormatError(
                f"{self.path} is a damaged losstopo file (its format_version is {raw!r}, not an "
                "integer); recompute it or restore a copy."
            )
        version = int(raw)
        if version > FORMAT_VERSION:
            self.file.close()
            raise FieldFormatError(
                f"{self.path} has format version {version}, newer than this losstopo reads "
                f"({FORMAT_VERSION}); upgrade losstopo to read it."
            )
        return self.file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def write_atomically(
    path: PathLike, write: Callable[[h5py.File], None], *, start_from_existing: bool = False
) -> None:
    """Write an HDF5 file through ``write(h5file)`` into a temporary file, then rename it over ``path``.

    With ``start_from_existing`` the temporary file starts as a copy of ``path`` (opened for
    update) instead of empty. A crash or ``kill -9`` at any moment leaves either the old file or
    the new one, never a mix. The writer lock of ``path`` (:mod:`losstopo.io.lock`) is held
    meanwhile, so another process writing the same file is refused, not interleaved. A new file
    gets the permissions the umask allows, a rewritten one keeps its own. A failed write (a full
    disk) raises :class:`~losstopo.errors.OutputWriteError` and leaves no temporary file.
    """
    path = Path(path)
    with writer_lock(path):
        write_replacing(path, lambda tmp: _write_hdf5(tmp, path, write, start_from_existing))


def _write_hdf5(
    tmp: Path, path: Path, write: Callable[[h5py.File], None], start_from_existing: bool
) -> None:
    # The HDF5 library writes into memory only; the bytes reach the disk through Python, so a
    # full disk is one clean OSError here, never an HDF5 error at close (or a crash) later.
    image = io.BytesIO(path.read_bytes() if start_from_existing else b"")
    with h5py.File(image, "r+" if start_from_existing else "w") as f:
        write(f)
    with open(tmp, "wb") as fh:
        fh.write(image.getbuffer())


# ---------------------------------------------------------------------------------- topology
def _check_summary(summary: Any) -> None:
    from ..topology import TopologySummary

    if not isinstance(summary, TopologySummary):
        raise InvalidTypeError(
            f"A field file stores a losstopo.TopologySummary as its topology; got "
            f"{type(summary).__name__}. Compute one with losstopo.analyze(field)."
        )


def _write_topology_group(f: h5py.File, summary: TopologySummary) -> None:
    from .topology import write_topology

    if "topology" in f:
        del f["topology"]
    if "topology_json" in f.attrs:  # a stale format-1 summary
        del f.attrs["topology_json"]
    write_topology(f.require_group("topology"), summary)


def _read_topology(f: h5py.File) -> TopologySummary | None:
    if "topology" in f:
        from .topology import read_topology

        return read_topology(f["topology"])
    if "topology_json" in f.attrs:  # format version 1
        from ..topology import TopologySummary

        return TopologySummary.from_dict(json.loads(f.attrs["topology_json"]))
    return None


def store_topology(path: PathLike, summary: TopologySummary) -> None:
    """Attach a topology summary to an existing field file, keeping everything else in it.

    Unlike re-saving the field, this keeps a resumable store's bookkeeping (``done`` and the
    fingerprint), so the run can still be resumed. Atomic, as :func:`write_atomically`.
    """
    _check_summary(summary)
    with open_field_file(path):
        pass  # a clear error for a missing, foreign or corrupt file
    write_atomically(path, lambda f: _write_topology_group(f, summary), start_from_existing=True)


# ---------------------------------------------------------------------------------- fields
def write_field_contents(f: h5py.File, field: LossField, *, complete: bool = True) -> None:
    """Write ``field`` into the open, empty HDF5 file ``f`` (the layout of ``docs/format.md``)."""
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["losstopo_version"] = __version__
    f.attrs["complete"] = complete
    f.attrs["axis_names"] = json.dumps(list(field.grid.names))
    f.attrs["attrs_json"] = json.dumps(to_jsonable(field.attrs))
    g = f.create_group("grid")
    for name, axis in field.grid.axes.items():
        g.create_dataset(name, data=axis)
    f.create_dataset("values", data=field.values)
    m = f.create_group("metrics")
    for name, arr in field.metrics.items():
        m.create_dataset(name, data=arr)
    p = f.create_group("paths")
    for name, path in field.paths.items():
        pg = p.create_group(name)
        pg.attrs["run"] = path.run
        pg.create_dataset("coords", data=path.coords)
        pg.create_dataset("step", data=path.step)
        if path.loss is not None:
            pg.create_dataset("loss", data=path.loss)
    if field.topology is not None:
        _write_topology_group(f, field.topology)
    if field.projector_state is not None:
        write_projector_group(f.create_group("projector"), field.projector_state)


def write_field(path: PathLike, field: LossField) -> None:
    """Write ``field`` to ``path`` (HDF5), atomically: a failure never leaves half a file."""
    path = validate_output_path(path, Path(path).name)
    if field.topology is not None:
        _check_summary(field.topology)
    write_atomically(path, lambda f: write_field_contents(f, field, complete=True))


def _read_contents(f: h5py.File) -> LossField:
    try:
        names = json.loads(f.attrs["axis_names"])
        grid = Grid({n: f["grid"][n][()] for n in names})
        values = f["values"][()]
        metrics = {k: v[()] for k, v in f["metrics"].items()}
        attrs = json.loads(f.attrs.get("attrs_json", "{}"))
        if not isinstance(attrs, dict):
            raise ValueError(f"its attrs are a JSON {type(attrs).__name__}, not an object")
        paths = {}
        for name, pg in f["paths"].items():
            paths[name] = ProjectedPath(
                coords=pg["coords"][()],
                step=pg["step"][()],
                loss=pg["loss"][()] if "loss" in pg else None,
                run=str(pg.attrs.get("run", name)),
            )
        topology = _read_topology(f)
        projector = read_projector_group(f["projector"]) if "projector" in f else None
        _check_shapes(grid, values, metrics)
    except (KeyError, ValueError, TypeError, AttributeError, OSError, RuntimeError) as exc:
        raise FieldFormatError(
            f"{f.filename} is a damaged losstopo file ({exc}); recompute it or restore a copy."
        ) from exc
    return LossField(
        values=values,
        grid=grid,
        metrics=metrics,
        attrs=attrs,
        paths=paths,
        topology=topology,
        projector_state=projector,
    )


def _check_shapes(grid: Grid, values: Any, metrics: Mapping[str, Any]) -> None:
    for name, arr in {"values": values, **{f"metrics/{k}": v for k, v in metrics.items()}}.items():
        if not isinstance(arr, np.ndarray) or arr.shape != grid.shape:
            raise ValueError(f"'{name}' has shape {np.shape(arr)}, the grid {grid.shape}")
        if arr.dtype.kind not in "fiub":
            raise ValueError(f"'{name}' holds {arr.dtype}, not numbers")


def _complete(f: h5py.File) -> bool:
    raw = f.attrs.get("complete", True)
    if not isinstance(raw, (bool, np.bool_, int, np.integer)):
        raise FieldFormatError(
            f"{f.filename} is a damaged losstopo file (its 'complete' attribute is {raw!r}, not "
            "a boolean); recompute it or restore a copy."
        )
    return bool(raw)


def read_field(path: PathLike) -> LossField:
    """Read a field written by :func:`write_field` or by a finished :func:`losstopo.evaluate` store."""
    with open_field_file(path) as f:
        if not _complete(f):
            done = int(np.count_nonzero(f["done"][()])) if "done" in f else 0
            total = int(np.prod(f["values"].shape))
            raise FieldFormatError(
                f"{path} holds a partial run ({done} of {total} points); rerun the same "
                "command (or evaluate(..., store=...)) to resume and finish it."
            )
        return _read_contents(f)


# ---------------------------------------------------------------------------------- stores
def write_store(
    path: PathLike,
    field: LossField,
    done: np.ndarray,
    fingerprint: Mapping[str, str],
    *,
    complete: bool,
) -> None:
    """Write an evaluation store: ``field`` plus its ``done`` mask and ``fingerprint`` (atomic)."""
    done = np.asarray(done, dtype=bool).reshape(field.grid.shape)
    payload = json.dumps(dict(fingerprint))

    def write(f: h5py.File) -> None:
        write_field_contents(f, field, complete=complete)
        f.create_dataset("done", data=done)
        f.attrs["fingerprint_json"] = payload

    write_atomically(path, write)


def read_fingerprint(path: PathLike) -> dict[str, str] | None:
    """The fingerprint of the store at ``path``; ``None`` for a field not written by a store."""
    with open_field_file(path) as f:
        raw = f.attrs.get("fingerprint_json", "null") or "null"
    try:
        stored = json.loads(raw)
        if stored is not None and not isinstance(stored, dict):
            raise TypeError(f"a JSON {type(stored).__name__}, not an object")
    except (TypeError, ValueError) as exc:
        raise FieldFormatError(
            f"{path} is a damaged losstopo store (its fingerprint: {exc}); delete it to start over."
        ) from exc
    return None if stored is None else dict(stored)


@dataclass(frozen=True)
class PartialRun:
    """The flat ``done`` mask, loss ``values`` and ``metrics`` of a partial store, and its attrs."""

    done: np.ndarray
    values: np.ndarray
    metrics: dict[str, np.ndarray]
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)


def read_partial(
    path: PathLike, metric_names: tuple[str, ...] = (), size: int | None = None
) -> PartialRun:
    """The computed part of a store, as flat (C-order) arrays; refuses a damaged store.

    ``size``: the number of grid points expected (checked against every array when given).
    """
    with open_field_file(path) as f:
        try:
            done = f["done"][()]
            values = f["values"][()]
            metrics = {m: f["metrics"][m][()] for m in metric_names}
            attrs = json.loads(f.attrs.get("attrs_json", "{}"))
        except (KeyError, ValueError, TypeError, OSError) as exc:
            raise FieldFormatError(
                f"{path} is a damaged partial run ({exc}); delete it to start over."
            ) from exc
    expected = int(values.size) if size is None else int(size)
    arrays = {"done": done, "values": values, **{f"metrics/{m}": a for m, a in metrics.items()}}
    for name, arr in arrays.items():
        ok = isinstance(arr, np.ndarray) and arr.size == expected
        ok = ok and (arr.dtype == bool if name == "done" else arr.dtype.kind in "fiu")
        if not ok:
            got = f"{getattr(arr, 'dtype', type(arr).__name__)} of shape {np.shape(arr)}"
            raise FieldFormatError(
                f"{path} is a damaged partial run ('{name}' holds {got}, expected {expected} "
                f"{'booleans' if name == 'done' else 'numbers'}); delete it to start over."
            )
    if not isinstance(attrs, dict):
        raise FieldFormatError(
            f"{path} is a damaged partial run (its attrs are {type(attrs).__name__}, not a "
            "mapping); delete it to start over."
        )
    return PartialRun(
        done=done.astype(bool).ravel(),
        values=values.astype(np.float64).ravel(),
        metrics={m: a.astype(np.float64).ravel() for m, a in metrics.items()},
        attrs=attrs,
    )


def read_progress(path: PathLike) -> tuple[int, int, bool]:
    """``(done, total, complete)`` of a store or field file.

    >>> import numpy as np, tempfile, os
    >>> from losstopo import Grid, LossField
    >>> p = os.path.join(tempfile.mkdtemp(), "f.h5")
    >>> LossField(np.zeros((2, 3)), Grid({"x": [0.0, 1.0], "y": [0.0, 1.0, 2.0]})).save(p)
    >>> read_progress(p)
    (6, 6, True)
    """
    with open_field_file(path) as f:
        if "values" not in f or not isinstance(f["values"], h5py.Dataset):
            raise FieldFormatError(
                f"{path} is marked as a losstopo field but has no 'values' dataset; it is damaged "
                "or was not written by losstopo. Recompute it."
            )
        total = int(np.prod(f["values"].shape))
        complete = _complete(f)
        done = total if complete else 0
        if "done" in f:
            mask = f["done"]
            if not isinstance(mask, h5py.Dataset) or mask.shape != f["values"].shape:
                raise FieldFormatError(
                    f"{path} is a damaged losstopo store (its 'done' mask does not match its "
                    "'values'); delete it to start over."
                )
            done = int(np.count_nonzero(mask[()]))
        return done, total, complete

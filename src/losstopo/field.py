"""`LossField`: loss values on a grid, with their axes, metrics, paths and provenance.

A field never travels without the grid that produced it. It saves to a self-describing HDF5
file (schema in ``docs/format.md``) and converts to :mod:`xarray` with :meth:`LossField.to_xarray`.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from losstopo import Grid, LossField
>>> g = Grid.square(resolution=5, dims=2)
>>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
>>> field = LossField(values=x**2 + y**2, grid=g, attrs={"note": "bowl"})
>>> path = os.path.join(tempfile.mkdtemp(), "bowl.h5")
>>> field.save(path)
>>> LossField.load(path).values.shape
(5, 5)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import FieldFormatError, InvalidParameterError, ShapeMismatchError
from .grid import Grid

FORMAT_NAME = "losstopo-field"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ProjectedPath:
    """A trajectory drawn in a landscape: its coordinates in the grid's axes, steps and losses.

    >>> import numpy as np
    >>> p = ProjectedPath(coords=np.zeros((3, 2)), step=np.arange(3))
    >>> len(p)
    3
    """

    coords: np.ndarray
    step: np.ndarray
    loss: np.ndarray | None = None
    run: str = "run0"

    def __post_init__(self) -> None:
        coords = np.atleast_2d(np.asarray(self.coords, dtype=np.float64))
        step = np.asarray(self.step, dtype=np.int64).ravel()
        if coords.shape[0] != step.size:
            raise ShapeMismatchError(
                f"Path {self.run!r} has {coords.shape[0]} coordinates but {step.size} step numbers; "
                "give one step per point."
            )
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "step", step)
        if self.loss is not None:
            object.__setattr__(self, "loss", np.asarray(self.loss, dtype=np.float64).ravel())

    def __len__(self) -> int:
        return int(self.coords.shape[0])


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@dataclass(frozen=True)
class LossField:
    """Loss (and metrics) evaluated on a :class:`~losstopo.Grid`.

    Attributes
    ----------
    values : ndarray
        Loss at every grid point, shape ``grid.shape``.
    grid : Grid
        The coordinates of the values.
    metrics : dict of str to ndarray
        Other per-point quantities (accuracy, ...), each of shape ``grid.shape``.
    attrs : dict
        Provenance: projector, seeds, normalization, data, model hash, losstopo version, counts.
    paths : dict of str to ProjectedPath
        Trajectories projected into the grid's coordinates, keyed by run name.
    topology : object or None
        A topology summary attached by :func:`losstopo.analyze` (kept by :meth:`save`).
    """

    values: np.ndarray
    grid: Grid
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, ProjectedPath] = field(default_factory=dict)
    topology: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.grid, Grid):
            raise InvalidParameterError(
                f"LossField needs a losstopo.Grid for 'grid'; got {type(self.grid).__name__}."
            )
        values = np.asarray(self.values, dtype=np.float64)
        if values.shape != self.grid.shape:
            if values.size == self.grid.size:
                values = values.reshape(self.grid.shape)
            else:
                raise ShapeMismatchError(
                    f"LossField values have shape {values.shape} but the grid has shape "
                    f"{self.grid.shape}; evaluate on the same grid or reshape the values."
                )
        object.__setattr__(self, "values", values)
        metrics = {}
        for name, arr in dict(self.metrics).items():
            arr = np.asarray(arr, dtype=np.float64)
            if arr.size != self.grid.size:
                raise ShapeMismatchError(
                    f"Metric {name!r} has {arr.size} values for a grid of {self.grid.size} points."
                )
            metrics[name] = arr.reshape(self.grid.shape)
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "attrs", dict(self.attrs))
        object.__setattr__(self, "paths", dict(self.paths))

    # ------------------------------------------------------------------ conveniences
    @property
    def ndim(self) -> int:
        return self.grid.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return self.grid.shape

    def with_topology(self, topology: Any) -> LossField:
        """A copy of this field with ``topology`` attached (kept by :meth:`save`)."""
        return replace(self, topology=topology)

    def with_paths(self, paths: Mapping[str, ProjectedPath]) -> LossField:
        """A copy of this field with more projected paths."""
        merged = dict(self.paths)
        merged.update(paths)
        return replace(self, paths=merged)

    def argmin(self) -> np.ndarray:
        """Coordinates of the lowest finite value."""
        v = np.where(np.isfinite(self.values), self.values, np.inf)
        return self.grid.coords_of(int(np.argmin(v)))[0]

    # ------------------------------------------------------------------ HDF5
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the field to ``path`` (HDF5), atomically: a failure never leaves half a file.

        The schema is documented in ``docs/format.md``.
        """
        path = Path(path)
        _check_parent(path)
        write_atomically(path, lambda f: self._write(f, complete=True))

    def _write(self, f: h5py.File, *, complete: bool) -> None:
        from . import __version__

        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["losstopo_version"] = __version__
        f.attrs["complete"] = complete
        f.attrs["axis_names"] = json.dumps(list(self.grid.names))
        f.attrs["attrs_json"] = json.dumps(_jsonable(self.attrs))
        g = f.create_group("grid")
        for name, axis in self.grid.axes.items():
            g.create_dataset(name, data=axis)
        f.create_dataset("values", data=self.values)
        m = f.create_group("metrics")
        for name, arr in self.metrics.items():
            m.create_dataset(name, data=arr)
        p = f.create_group("paths")
        for name, path in self.paths.items():
            pg = p.create_group(name)
            pg.attrs["run"] = path.run
            pg.create_dataset("coords", data=path.coords)
            pg.create_dataset("step", data=path.step)
            if path.loss is not None:
                pg.create_dataset("loss", data=path.loss)
        if self.topology is not None:
            to_dict = getattr(self.topology, "to_dict", None)
            payload = to_dict() if callable(to_dict) else self.topology
            f.attrs["topology_json"] = json.dumps(_jsonable(payload))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LossField:
        """Read a field written by :meth:`save` or by a finished :func:`losstopo.evaluate` store."""
        with open_field_file(path) as f:
            if not bool(f.attrs.get("complete", True)):
                done = int(np.count_nonzero(f["done"][()])) if "done" in f else 0
                total = int(np.prod(f["values"].shape))
                raise FieldFormatError(
                    f"{path} holds a partial run ({done} of {total} points); rerun the same "
                    "command (or evaluate(..., store=...)) to resume and finish it."
                )
            return cls._read(f)

    @classmethod
    def _read(cls, f: h5py.File) -> LossField:
        try:
            names = json.loads(f.attrs["axis_names"])
            grid = Grid({n: f["grid"][n][()] for n in names})
            values = f["values"][()]
            metrics = {k: v[()] for k, v in f["metrics"].items()}
            attrs = json.loads(f.attrs.get("attrs_json", "{}"))
            paths = {}
            for name, pg in f["paths"].items():
                loss = pg["loss"][()] if "loss" in pg else None
                paths[name] = ProjectedPath(
                    coords=pg["coords"][()],
                    step=pg["step"][()],
                    loss=loss,
                    run=str(pg.attrs.get("run", name)),
                )
            topology = None
            if "topology_json" in f.attrs:
                topology = _load_topology(json.loads(f.attrs["topology_json"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise FieldFormatError(
                f"{f.filename} is a damaged losstopo file ({exc}); recompute it or restore a copy."
            ) from exc
        return cls(
            values=values, grid=grid, metrics=metrics, attrs=attrs, paths=paths, topology=topology
        )

    # ------------------------------------------------------------------ xarray
    def to_xarray(self) -> Any:
        """The field as an ``xarray.Dataset`` (needs the ``xarray`` extra).

        >>> import numpy as np
        >>> from losstopo import Grid, LossField
        >>> ds = LossField(np.zeros((3, 3)), Grid.square(3)).to_xarray()
        >>> list(ds.data_vars)
        ['loss']
        """
        try:
            import xarray as xr
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "LossField.to_xarray needs xarray; install it with pip install 'losstopo[xarray]'."
            ) from exc
        dims = self.grid.names
        data_vars = {"loss": (dims, self.values)}
        for name, arr in self.metrics.items():
            data_vars[name] = (dims, arr)
        attrs = {
            k: json.dumps(_jsonable(v)) if isinstance(v, (dict, list)) else v
            for k, v in self.attrs.items()
        }
        return xr.Dataset(data_vars, coords=dict(self.grid.axes), attrs=attrs)

    def __repr__(self) -> str:
        finite = self.values[np.isfinite(self.values)]
        rng = f"{finite.min():.4g}..{finite.max():.4g}" if finite.size else "no finite values"
        return f"LossField({self.grid!r}, loss {rng}, metrics={list(self.metrics)})"


def _load_topology(payload: Any) -> Any:
    try:
        from .topology import TopologySummary
    except ImportError:  # the topology layer is optional at this level
        return payload
    from_dict = getattr(TopologySummary, "from_dict", None)
    return from_dict(payload) if callable(from_dict) else payload


def _check_parent(path: Path) -> None:
    parent = path.resolve().parent
    if not parent.is_dir():
        raise InvalidParameterError(
            f"The directory {parent} for {path.name} does not exist; create it first "
            f"(mkdir -p {parent})."
        )


def write_atomically(path: Path, write: Any, *, start_from_existing: bool = False) -> None:
    """Write an HDF5 file through ``write(h5file)`` into a temporary file, then rename it over ``path``.

    With ``start_from_existing`` the temporary file starts as a copy of ``path`` (opened for
    update) instead of empty. A crash or ``kill -9`` at any moment leaves either the old file or
    the new one, never a mix.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.resolve().parent)
    os.close(fd)
    try:
        if start_from_existing:
            shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+" if start_from_existing else "w") as f:
            write(f)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def store_topology(path: str | os.PathLike[str], topology: Any) -> None:
    """Attach a topology summary to an existing field file, keeping everything else in it.

    Unlike re-saving the field, this keeps a resumable store's bookkeeping (``done`` and the
    fingerprint), so the run can still be resumed. Atomic, as :func:`write_atomically`.
    """
    path = Path(path)
    with open_field_file(path):
        pass  # a clear error for a missing, foreign or corrupt file
    to_dict = getattr(topology, "to_dict", None)
    payload = json.dumps(_jsonable(to_dict() if callable(to_dict) else topology))

    def write(f: h5py.File) -> None:
        f.attrs["topology_json"] = payload

    write_atomically(path, write, start_from_existing=True)


class open_field_file:
    """Open a losstopo HDF5 file for reading, turning foreign or corrupt files into one clear error."""

    def __init__(self, path: str | os.PathLike[str]):
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
        return self.file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()

"""`LossField`: loss values on a grid, with their axes, metrics, paths and provenance.

A field never travels without the grid that produced it. It saves to a self-describing HDF5
file (schema in ``docs/format.md``) and converts to :mod:`xarray` with :meth:`LossField.to_xarray`.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from losstopo import Grid, LossField
>>> g = Grid.square(resolution=5, n_components=2)
>>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
>>> field = LossField(values=x**2 + y**2, grid=g, attrs={"note": "bowl"})
>>> path = os.path.join(tempfile.mkdtemp(), "bowl.h5")
>>> field.save(path)
>>> LossField.load(path).equals(field)
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidParameterError, InvalidTypeError, ShapeMismatchError
from .grid import Grid
from .jsonable import to_jsonable

if TYPE_CHECKING:
    from .projectors.state import ProjectorState
    from .topology import TopologySummary

#: attribute of each data variable of :meth:`LossField.to_xarray` saying what it holds
ROLE = "losstopo_role"
#: Dataset attribute listing the ``attrs`` keys that :meth:`LossField.to_xarray` wrote as JSON
JSON_ATTRS = "losstopo_json_attrs"


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


@dataclass(frozen=True, eq=False)
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
    topology : TopologySummary or None
        A summary attached with :meth:`with_topology` (kept by :meth:`save`).
    projector_state : ProjectorState or None
        What decodes the grid's coordinates to parameters (set by :func:`losstopo.evaluate`,
        kept by :meth:`save` in the ``/projector`` group); see :attr:`projector`.

    Fields compare with :meth:`equals`; ``==`` is identity (arrays have no single truth value).
    """

    values: np.ndarray
    grid: Grid
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, ProjectedPath] = field(default_factory=dict)
    topology: TopologySummary | None = None
    projector_state: ProjectorState | None = None

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
        if self.topology is not None:
            _check_topology(self.topology)

    # ------------------------------------------------------------------ conveniences
    @property
    def ndim(self) -> int:
        return self.grid.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return self.grid.shape

    def with_topology(self, topology: TopologySummary | None) -> LossField:
        """A copy of this field with ``topology`` (from :func:`losstopo.analyze`) attached.

        ``None`` gives a copy without topology; anything else but a ``TopologySummary`` is refused.

        >>> from losstopo import analyze
        >>> from losstopo.testing import analytic_field
        >>> f = analytic_field("double_well", resolution=21)
        >>> f.with_topology(analyze(f, min_persistence=0.1)).topology.n_minima
        2
        """
        if topology is not None:
            _check_topology(topology)
        return replace(self, topology=topology)

    def with_paths(self, paths: Mapping[str, ProjectedPath]) -> LossField:
        """A copy of this field with more projected paths."""
        merged = dict(self.paths)
        merged.update(paths)
        return replace(self, paths=merged)

    @property
    def projector(self) -> Any:
        """The fitted projector that decodes this field's coordinates to parameters.

        The very projector for a field returned by :func:`losstopo.evaluate`; rebuilt from the
        file's ``/projector`` group (no pickle) for a loaded one. A clear error when the field
        carries none or one that is not stored (UMAP, Kernel-PCA, PHATE), and when a span
        auto-encoder needs checkpoints the file does not hold (:meth:`restore_projector`).

        >>> import torch
        >>> from losstopo import Grid, PlaneProjector, evaluate
        >>> model = torch.nn.Linear(2, 1)
        >>> proj = PlaneProjector(model, torch.eye(3)[:2])
        >>> data = (torch.zeros(4, 2), torch.zeros(4, 1))
        >>> f = evaluate(model, data, "mse", proj, Grid.square(3), progress=False, device="cpu")
        >>> f.projector is proj
        True
        """
        return self.restore_projector()

    def restore_projector(self, checkpoints: Any = None) -> Any:
        """:attr:`projector`, given the fitted ``checkpoints`` a span auto-encoder needs.

        Only needed for an auto-encoder whose checkpoints were too large to store in the file;
        they are checked against the hash the file records.
        """
        if self.projector_state is None:
            raise InvalidParameterError(
                "This field carries no projector (it was built by hand, or written before "
                "losstopo stored projectors in field files); pass the projector it was evaluated "
                "with explicitly (projector=...)."
            )
        from .projectors.state import restore_projector

        cache = self.__dict__.get("_restored")
        if cache is None:
            cache = restore_projector(self.projector_state, checkpoints)
            object.__setattr__(self, "_restored", cache)
        return cache

    def argmin(self) -> np.ndarray:
        """Coordinates of the lowest finite value."""
        v = np.where(np.isfinite(self.values), self.values, np.inf)
        return self.grid.coords_of(int(np.argmin(v)))[0]

    # ------------------------------------------------------------------ comparison
    def equals(self, other: object, *, rtol: float = 0.0, atol: float = 0.0) -> bool:
        """True when ``other`` is a field with the same grid, values, metrics, paths and attrs.

        Arrays are compared within ``rtol``/``atol`` (exactly by default), NaN equal to NaN;
        ``attrs`` in the JSON form they are saved in (:func:`to_jsonable`: a tuple equals a list,
        ``inf`` equals ``"inf"``); of the topology only its presence. ``==`` compares identity.

        >>> import numpy as np
        >>> from losstopo import Grid
        >>> a = LossField(np.array([[0.0, np.nan], [1.0, 2.0]]), Grid.square(2))
        >>> a.equals(LossField(a.values.copy(), a.grid)), a.equals(LossField(a.values + 1e-9, a.grid))
        (True, False)
        >>> a.equals(LossField(a.values + 1e-9, a.grid), atol=1e-6)
        True
        """
        if not isinstance(other, LossField):
            return False

        def close(a: np.ndarray | None, b: np.ndarray | None) -> bool:
            if a is None or b is None:
                return a is None and b is None
            return a.shape == b.shape and bool(
                np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
            )

        if self.grid.names != other.grid.names or not all(
            close(a, b)
            for a, b in zip(self.grid.axes.values(), other.grid.axes.values(), strict=True)
        ):
            return False
        if not close(self.values, other.values) or set(self.metrics) != set(other.metrics):
            return False
        if not all(close(v, other.metrics[k]) for k, v in self.metrics.items()):
            return False
        if set(self.paths) != set(other.paths):
            return False
        for key, p in self.paths.items():
            q = other.paths[key]
            if p.run != q.run or not np.array_equal(p.step, q.step):
                return False
            if not (close(p.coords, q.coords) and close(p.loss, q.loss)):
                return False
        if to_jsonable(self.attrs) != to_jsonable(other.attrs):
            return False
        return (self.topology is None) == (other.topology is None)

    # ------------------------------------------------------------------ HDF5
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the field to ``path`` (HDF5), atomically: a failure never leaves half a file.

        The schema is documented in ``docs/format.md``; see :func:`losstopo.io.write_field`.
        """
        from .io.hdf5 import write_field

        write_field(path, self)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LossField:
        """Read a field written by :meth:`save` or by a finished :func:`losstopo.evaluate` store."""
        from .io.hdf5 import read_field

        return read_field(path)

    # ------------------------------------------------------------------ xarray
    def to_xarray(self) -> Any:
        """The field as an ``xarray.Dataset`` (needs the ``xarray`` extra); see :meth:`from_xarray`.

        The loss is the data variable ``loss`` and each metric one more, all over the grid's
        axes as coordinates. Each path ``i`` is stored as ``path{i}_coords`` (over ``path{i}_point``
        and ``path{i}_dim``), ``path{i}_step`` and ``path{i}_loss``; numbers and strings of
        ``attrs`` are kept as they are, other values as JSON strings (their keys listed in the
        attribute ``losstopo_json_attrs``).

        >>> import numpy as np
        >>> from losstopo import Grid, LossField
        >>> ds = LossField(np.zeros((3, 3)), Grid.square(3)).to_xarray()
        >>> list(ds.data_vars), ds["x"].values.tolist()
        (['loss'], [-1.0, 0.0, 1.0])
        """
        xr = _xarray("to_xarray")
        dims = self.grid.names
        data_vars: dict[str, Any] = {"loss": (dims, self.values, {ROLE: "loss"})}
        for name, arr in self.metrics.items():
            data_vars[name] = (dims, arr, {ROLE: "metric"})
        for i, (key, path) in enumerate(self.paths.items()):
            point, dim = f"path{i}_point", f"path{i}_dim"
            data_vars[f"path{i}_coords"] = (
                (point, dim),
                path.coords,
                {ROLE: "path", "path": key, "run": path.run},
            )
            data_vars[f"path{i}_step"] = ((point,), path.step, {ROLE: "path_step", "path": key})
            if path.loss is not None:
                data_vars[f"path{i}_loss"] = ((point,), path.loss, {ROLE: "path_loss", "path": key})
        attrs: dict[str, Any] = {}
        encoded = []
        for k, v in to_jsonable(self.attrs).items():
            if isinstance(v, (str, int, float)) and not isinstance(v, bool):
                attrs[k] = v
            else:
                attrs[k] = json.dumps(v)
                encoded.append(k)
        attrs[JSON_ATTRS] = json.dumps(encoded)
        return xr.Dataset(data_vars, coords=dict(self.grid.axes), attrs=attrs)

    @classmethod
    def from_xarray(cls, ds: Any) -> LossField:
        """Rebuild a field from a Dataset written by :meth:`to_xarray`.

        A Dataset from elsewhere works too: its ``loss`` variable gives the grid (its dimensions'
        coordinates) and values; every other variable over the same dimensions is a metric.

        >>> import numpy as np
        >>> from losstopo import Grid
        >>> f = LossField(np.arange(4.0).reshape(2, 2), Grid.square(2), attrs={"seed": [1, 2]})
        >>> LossField.from_xarray(f.to_xarray()).equals(f)
        True
        """
        xr = _xarray("from_xarray")
        if not isinstance(ds, xr.Dataset) or "loss" not in ds.data_vars:
            raise InvalidTypeError(
                "LossField.from_xarray needs an xarray.Dataset with a 'loss' variable, as written "
                f"by LossField.to_xarray; got {type(ds).__name__}."
            )
        loss = ds["loss"]
        missing = [d for d in loss.dims if d not in ds.coords]
        if missing:
            raise InvalidParameterError(
                f"The 'loss' variable's dimensions {missing} have no coordinates; assign them "
                "(ds.assign_coords(...)) so the grid is known."
            )
        grid = Grid({str(d): np.asarray(ds[d].values, dtype=np.float64) for d in loss.dims})
        metrics: dict[str, np.ndarray] = {}
        paths: dict[str, ProjectedPath] = {}
        for name, var in ds.data_vars.items():
            role = var.attrs.get(ROLE, "metric" if var.dims == loss.dims else None)
            if role == "metric" and name != "loss":
                metrics[str(name)] = np.asarray(var.transpose(*loss.dims).values)
            elif role == "path":
                stem = str(name).removesuffix("_coords")
                path_loss = ds.get(f"{stem}_loss")
                paths[str(var.attrs["path"])] = ProjectedPath(
                    coords=np.asarray(var.values),
                    step=np.asarray(ds[f"{stem}_step"].values),
                    loss=None if path_loss is None else np.asarray(path_loss.values),
                    run=str(var.attrs.get("run", var.attrs["path"])),
                )
        encoded = set(json.loads(ds.attrs.get(JSON_ATTRS, "[]")))
        attrs = {
            str(k): json.loads(v) if k in encoded else _plain(v)
            for k, v in ds.attrs.items()
            if k != JSON_ATTRS
        }
        return cls(np.asarray(loss.values), grid, metrics=metrics, attrs=attrs, paths=paths)

    def __repr__(self) -> str:
        finite = self.values[np.isfinite(self.values)]
        rng = f"{finite.min():.4g}..{finite.max():.4g}" if finite.size else "no finite values"
        return f"LossField({self.grid!r}, loss {rng}, metrics={list(self.metrics)})"


def _check_topology(topology: object) -> None:
    from .topology import TopologySummary

    if not isinstance(topology, TopologySummary):
        raise InvalidTypeError(
            "A LossField's topology must be a losstopo.TopologySummary (from "
            f"losstopo.analyze(field)); got {type(topology).__name__}."
        )


def _xarray(method: str) -> Any:
    try:
        import xarray as xr
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"LossField.{method} needs xarray; install it with pip install 'losstopo[xarray]'."
        ) from exc
    return xr


def _plain(value: Any) -> Any:
    """A numpy scalar attribute (as netCDF gives back) as the Python number it was written as."""
    return value.item() if isinstance(value, np.generic) else value


#: Names that moved to :mod:`losstopo.io.hdf5`; ``from losstopo.field import ...`` still finds them.
_MOVED_TO_IO = (
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "open_field_file",
    "store_topology",
    "write_atomically",
)


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_IO:
        from .io import hdf5

        return getattr(hdf5, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

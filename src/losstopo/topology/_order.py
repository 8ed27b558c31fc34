"""Input coercion, the vertex order (simulation of simplicity) and the grid neighbourhoods.

Everything in :mod:`losstopo.topology` goes through :func:`prepare`, so every result uses the same
total order on the vertices and the same neighbour relation:

* **order**: by value, ties broken by the flat C-order index; NaN and ``+inf`` come after every
  finite value, ordered among themselves by flat index; ``-inf`` is refused.
* **connectivity**: ``"freudenthal"`` (the Kuhn/Freudenthal triangulation of the grid: an edge
  joins two vertices whose index difference is non-zero with all entries in {0, 1} or all in
  {0, -1}; 2 neighbours in 1D, 6 in 2D, 14 in 3D) or ``"cubical"`` (face neighbours, 2d of them,
  cells valued by the max of their vertices, as gudhi's ``CubicalComplex(vertices=...)``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ..errors import InvalidParameterError, InvalidTypeError, ShapeMismatchError, validate_choice
from ..grid import validate_axis

CONNECTIVITIES = ("freudenthal", "cubical")


@dataclass(frozen=True, eq=False)
class Prepared:
    """A validated field: values, coordinates and the vertex order."""

    values: np.ndarray  # float64, grid-shaped, as given (NaN / +inf kept)
    key: np.ndarray  # float64, flat: values with NaN replaced by +inf (used for pair values)
    axes: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    order: np.ndarray  # int64 (n,): vertices from lowest to highest
    rank: np.ndarray  # int64 (n,): position of each vertex in `order`
    n_nonfinite: int
    connectivity: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    @property
    def ndim(self) -> int:
        return self.values.ndim

    @property
    def size(self) -> int:
        return int(self.values.size)

    def coords_of(self, flat: np.ndarray) -> np.ndarray:
        """Coordinates in axis units of flat indices, shape (n, d)."""
        flat = np.asarray(flat, dtype=np.int64).ravel()
        idx = np.unravel_index(flat, self.shape)
        if flat.size == 0:
            return np.zeros((0, self.ndim))
        return np.stack([a[i] for a, i in zip(self.axes, idx, strict=True)], axis=1)

    def cell_measure(self) -> np.ndarray:
        """Dual-cell measure (length/area/volume) of every vertex, grid-shaped; sums to the box."""
        out = np.ones(self.shape)
        for k, a in enumerate(self.axes):
            w = np.empty_like(a)
            d = np.diff(a)
            w[0] = d[0] / 2
            w[-1] = d[-1] / 2
            w[1:-1] = (d[:-1] + d[1:]) / 2
            shp = [1] * self.ndim
            shp[k] = a.size
            out = out * w.reshape(shp)
        return out


def _unwrap(field: Any, axes: Any) -> tuple[np.ndarray, Any, tuple[str, ...] | None]:
    from ..field import LossField

    if isinstance(field, LossField):
        if axes is not None:
            raise InvalidParameterError(
                "Got a LossField and an 'axes' argument; a LossField carries its own grid. "
                "Drop 'axes=' or pass field.values."
            )
        return np.asarray(field.values, dtype=np.float64), field.grid.axes, field.grid.names
    if isinstance(field, (str, bytes)) or field is None:
        raise InvalidTypeError(
            f"Expected a LossField or a numeric numpy array for 'field'; got {type(field).__name__}."
        )
    try:
        arr = np.asarray(field, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(
            f"Expected a LossField or a numeric numpy array for 'field'; got "
            f"{type(field).__name__} that cannot be converted to float ({exc})."
        ) from exc
    return arr, axes, None


def coerce(
    field: Any,
    axes: Any = None,
    *,
    func: str,
    max_ndim: int | None = 3,
) -> tuple[np.ndarray, tuple[np.ndarray, ...], tuple[str, ...]]:
    """Validate ``field`` (+ ``axes``) and return (values, axes, names)."""
    values, axes, names = _unwrap(field, axes)
    if values.ndim == 0 or (max_ndim is not None and values.ndim > max_ndim):
        want = "1-D, 2-D or 3-D" if max_ndim == 3 else "at least 1-D"
        extra = " (merge_tree accepts any number of dimensions)" if max_ndim is not None else ""
        raise InvalidParameterError(
            f"{func} needs a {want} field; got a {values.ndim}-D array of shape {values.shape}"
            f"{extra}. Pass the grid-shaped loss values."
        )
    if any(s < 2 for s in values.shape):
        raise InvalidParameterError(
            f"{func} needs at least 2 grid points along every axis; got shape {values.shape}. "
            "Drop the axes of size 1 (numpy.squeeze) or evaluate on a finer grid."
        )
    if axes is None:
        ax = tuple(np.arange(s, dtype=np.float64) for s in values.shape)
    else:
        if isinstance(axes, Mapping):
            names = tuple(str(k) for k in axes)
            seq: Sequence[Any] = list(axes.values())
        elif isinstance(axes, Sequence) or isinstance(axes, np.ndarray):
            seq = list(axes)
        else:
            raise InvalidTypeError(
                f"'axes' must be a sequence of 1-D arrays or a dict name -> array; got "
                f"{type(axes).__name__}."
            )
        if len(seq) != values.ndim:
            raise ShapeMismatchError(
                f"Got {len(seq)} axes for a {values.ndim}-D field of shape {values.shape}; "
                "give one coordinate array per dimension."
            )
        checked = []
        for k, a in enumerate(seq):
            label = names[k] if names is not None else f"axes[{k}]"
            arr = validate_axis(a, label)
            if arr.size != values.shape[k]:
                raise ShapeMismatchError(
                    f"Axis {label!r} has {arr.size} coordinates but the field has "
                    f"{values.shape[k]} points along dimension {k}; give one coordinate per point."
                )
            checked.append(arr)
        ax = tuple(checked)
    if names is None:
        names = (
            ("x", "y", "z")[: values.ndim]
            if values.ndim <= 3
            else tuple(f"x{i}" for i in range(values.ndim))
        )
    return values, ax, tuple(names)


def prepare(
    field: Any,
    axes: Any = None,
    *,
    connectivity: str = "freudenthal",
    func: str,
    max_ndim: int | None = 3,
) -> Prepared:
    """Validate the input and compute the simulation-of-simplicity order."""
    validate_choice(connectivity, "connectivity", CONNECTIVITIES)
    values, ax, names = coerce(field, axes, func=func, max_ndim=max_ndim)
    flat = values.ravel()
    if np.any(np.isneginf(flat)):
        n = int(np.count_nonzero(np.isneginf(flat)))
        raise InvalidParameterError(
            f"{func}: the field has {n} value(s) equal to -inf; a loss below every finite value "
            "has no place in the vertex order. Replace them (e.g. numpy.nan_to_num(values, "
            "neginf=values[numpy.isfinite(values)].min())) before the analysis."
        )
    nonfinite = ~np.isfinite(flat)
    n_nonfinite = int(np.count_nonzero(nonfinite))
    if n_nonfinite == flat.size:
        raise InvalidParameterError(
            f"{func}: the field holds no finite value (all {flat.size} are NaN or inf); "
            "check the evaluation (a diverged model?) before computing its topology."
        )
    key = np.where(np.isnan(flat), np.inf, flat)
    order = np.argsort(key, kind="stable").astype(np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size, dtype=np.int64)
    return Prepared(
        values=values,
        key=key,
        axes=ax,
        names=names,
        order=order,
        rank=rank,
        n_nonfinite=n_nonfinite,
        connectivity=connectivity,
    )


# ---------------------------------------------------------------------------------- offsets
def edge_offsets(ndim: int, connectivity: str) -> np.ndarray:
    """Index offsets (k, d) of the neighbours joined to a vertex by an edge."""
    if connectivity == "cubical":
        out = []
        for k in range(ndim):
            for s in (-1, 1):
                o = [0] * ndim
                o[k] = s
                out.append(o)
        return np.array(out, dtype=np.int64)
    pos = [o for o in itertools.product((0, 1), repeat=ndim) if any(o)]
    out = [list(o) for o in pos] + [[-x for x in o] for o in pos]
    return np.array(out, dtype=np.int64)


@dataclass(frozen=True)
class LinkTables:
    """The link of a vertex as tables over a star of offsets.

    ``star`` lists every other vertex of the cells around a vertex. ``link_vertices`` are star
    indices of the link's vertices. ``edge_ends`` (E, 2) gives the two link vertices (as positions
    in ``link_vertices``) an edge of the link joins; ``edge_req`` and ``tri_req`` are bitmasks over
    ``star`` of the vertices a link edge / triangle needs (present and lower).
    """

    star: np.ndarray
    link_vertices: np.ndarray
    edge_ends: np.ndarray
    edge_req: np.ndarray
    tri_req: np.ndarray


def link_tables(ndim: int, connectivity: str) -> LinkTables:
    """Tables describing the link of a vertex for :mod:`critical`."""
    if connectivity == "freudenthal":
        star = edge_offsets(ndim, connectivity)
        idx = {tuple(o): i for i, o in enumerate(star.tolist())}

        def adjacent(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
            diff = tuple(x - y for x, y in zip(a, b, strict=True))
            return diff in idx

        m = len(star)
        keys = [tuple(o) for o in star.tolist()]
        edges = [(i, j) for i in range(m) for j in range(i + 1, m) if adjacent(keys[i], keys[j])]
        tris = [
            (i, j, k)
            for (i, j) in edges
            for k in range(j + 1, m)
            if adjacent(keys[i], keys[k]) and adjacent(keys[j], keys[k])
        ]
        link_vertices = np.arange(m, dtype=np.int64)
        edge_ends = np.array(edges, dtype=np.int64).reshape(-1, 2)
        edge_req = np.array([(1 << i) | (1 << j) for i, j in edges], dtype=np.int64)
        tri_req = np.array([(1 << i) | (1 << j) | (1 << k) for i, j, k in tris], dtype=np.int64)
        return LinkTables(star, link_vertices, edge_ends, edge_req, tri_req)
    # cubical: star = the 3^d - 1 vertices of the cubes around v
    star_list = [o for o in itertools.product((-1, 0, 1), repeat=ndim) if any(o)]
    star = np.array(star_list, dtype=np.int64)
    sidx = {o: i for i, o in enumerate(star_list)}
    faces = [o for o in star_list if sum(abs(x) for x in o) == 1]
    link_vertices = np.array([sidx[o] for o in faces], dtype=np.int64)
    fpos = {o: i for i, o in enumerate(faces)}

    def cell_mask(support: tuple[int, ...]) -> int:
        # the cube spanned from v along `support` (a vector of -1/0/1): all its vertices but v
        dims = [k for k, s in enumerate(support) if s != 0]
        mask = 0
        for sub in itertools.product((0, 1), repeat=len(dims)):
            if not any(sub):
                continue
            o = [0] * ndim
            for k, b in zip(dims, sub, strict=True):
                o[k] = support[k] * b
            mask |= 1 << sidx[tuple(o)]
        return mask

    e_ends, e_req, t_req = [], [], []
    for o in star_list:
        nz = sum(abs(x) for x in o)
        if nz == 2:  # a square around v: a link edge between its two face neighbours
            ends = []
            for k, s in enumerate(o):
                if s != 0:
                    f = [0] * ndim
                    f[k] = s
                    ends.append(fpos[tuple(f)])
            e_ends.append(ends)
            e_req.append(cell_mask(o))
        elif nz == 3:  # a cube around v: a link triangle
            t_req.append(cell_mask(o))
    return LinkTables(
        star,
        link_vertices,
        np.array(e_ends, dtype=np.int64).reshape(-1, 2),
        np.array(e_req, dtype=np.int64),
        np.array(t_req, dtype=np.int64),
    )


def morse_code(index: int, ndim: int) -> int:
    """TTK critical type of a Morse index in ``ndim`` dimensions (0 min, 3 max, else index)."""
    if index == 0:
        return 0
    if index == ndim:
        return 3
    return index


TYPE_NAMES = {0: "minimum", 1: "1-saddle", 2: "2-saddle", 3: "maximum"}


@numba.njit(cache=True, nogil=True)
def grid_strides(shape, offsets):  # type: ignore[no-untyped-def]
    """C-order strides of ``shape`` and the flat offset of each row of ``offsets`` (numba)."""
    d = shape.size
    strides = np.empty(d, dtype=np.int64)
    s = 1
    for a in range(d - 1, -1, -1):
        strides[a] = s
        s *= shape[a]
    flat_off = np.zeros(offsets.shape[0], dtype=np.int64)
    for j in range(offsets.shape[0]):
        for a in range(d):
            flat_off[j] += offsets[j, a] * strides[a]
    return strides, flat_off

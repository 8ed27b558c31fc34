"""VTK export of loss fields and their topology, for ParaView (and TTK) users.

:func:`write_paraview` writes one directory:

============================  ==============================================================
``field.vti``                 image data (1D/2D/3D, true origin and spacing); ``field.vtr``
                              (rectilinear grid) when an axis is not uniformly spaced
``surface.vtp``, ``.ply``     2D fields: the height surface (z = loss scaled to the domain)
``paths.vtp``                 one polyline per run (``step``, ``loss``, ``run_id``)
``critical_points.vtp``       vertices with TTK's ``CriticalType``, ``Persistence``,
                              ``PairIdentifier`` and the ``loss`` value
``merge_tree.vtp``            merge-tree arcs: steepest-descent polylines saddle -> minimum
``persistence_diagram.vtp``   TTK diagram layout (``Birth``, ``Death``, ``Persistence``,
                              ``PairIdentifier``, ``PairType``)
``landscape.vtm``             a multiblock referencing all of the above, one block per file
``open_in_paraview.py``       a pvpython script opening the bundle with a default view
============================  ==============================================================

The topology files appear when a topology is given (or attached to the field). Everything drawn
in the domain of a 2D field (surface, paths, critical points, arcs) sits at the surface's height
so they line up in one 3D view; the ``.vti`` itself stays flat at ``z = 0``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, InvalidTypeError
from ..plot import critical_persistence, topology_trees
from ._common import (
    HeightMap,
    add_field_data,
    check_directory,
    get,
    log_loss,
    pyvista,
    write_xml,
)

SUPPORTED_DIMS = (1, 2, 3)
BUNDLE = "landscape.vtm"


def _check_field(field: Any) -> None:
    if not hasattr(field, "grid") or not hasattr(field, "values"):
        raise InvalidTypeError(
            f"write_paraview needs a losstopo.LossField. Got {type(field).__name__} instead."
        )
    if field.grid.ndim not in SUPPORTED_DIMS:
        raise InvalidParameterError(
            f"VTK image data (.vti) holds 1D, 2D and 3D fields; this field is {field.grid.ndim}D. "
            "Slice it (e.g. fix the last axes) or project it to 3 dimensions or fewer first."
        )


def _pad3(coords: np.ndarray) -> np.ndarray:
    c = np.atleast_2d(np.asarray(coords, dtype=np.float64))
    out = np.zeros((c.shape[0], 3))
    out[:, : min(3, c.shape[1])] = c[:, :3]
    return out


def segmentation_of(topology: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """Grid-shaped basin labels of a topology summary or merge tree, if it has them.

    The join tree's ``branch_segmentation`` (one label per branch: the basin of each persistent
    minimum) is preferred over its arc ``segmentation``.
    """
    trees = topology_trees(topology)
    for tree in trees[:1]:
        for name in ("branch_segmentation", "segmentation"):
            seg = get(tree, name)
            if seg is not None and int(np.size(seg)) == int(np.prod(shape)):
                return np.asarray(seg).reshape(shape)
    seg = get(get(topology, "basins"), "segmentation", "labels")
    if seg is None or int(np.size(seg)) != int(np.prod(shape)):
        return None
    return np.asarray(seg).reshape(shape)


# ---------------------------------------------------------------------------------------- field
def field_dataset(field: Any, topology: Any = None) -> Any:
    """The field as ``pyvista.ImageData`` (uniform axes) or ``pyvista.RectilinearGrid``.

    Point arrays: ``loss`` (NaN/inf kept), ``log_loss``, ``valid`` (1 where the loss is finite,
    0 where it is NaN/inf), every metric under its own name, and ``basin`` (int) when the
    topology has a segmentation. Axes map to VTK's x, y, z in order; VTK's point order is
    x fastest, i.e. the transpose of the field's C order.
    """
    _check_field(field)
    pv = pyvista()
    grid = field.grid
    axes = list(grid.axes.values())
    dims = [a.size for a in axes] + [1] * (3 - grid.ndim)
    if grid.is_uniform():
        origin = list(grid.origin) + [0.0] * (3 - grid.ndim)
        spacing = list(grid.spacing) + [1.0] * (3 - grid.ndim)
        ds = pv.ImageData(dimensions=dims, origin=origin, spacing=spacing)
    else:
        coords = axes + [np.zeros(1)] * (3 - grid.ndim)
        ds = pv.RectilinearGrid(*coords)

    def vtk_order(arr: np.ndarray) -> np.ndarray:
        return np.asarray(arr).reshape(grid.shape).ravel(order="F")

    values = np.asarray(field.values, dtype=np.float64)
    ds.point_data["loss"] = vtk_order(values)
    ds.point_data["log_loss"] = vtk_order(log_loss(values))
    ds.point_data["valid"] = vtk_order(np.isfinite(values).astype(np.uint8))
    for name, arr in field.metrics.items():
        if name in ("loss", "log_loss", "valid", "basin"):
            name = f"metric_{name}"
        ds.point_data[name] = vtk_order(np.asarray(arr, dtype=np.float64))
    seg = segmentation_of(topology, grid.shape)
    if seg is not None:
        ds.point_data["basin"] = vtk_order(seg.astype(np.int32))
    ds.set_active_scalars("loss")
    add_field_data(ds, field)
    return ds


# ---------------------------------------------------------------------------------------- paths
def _interpolate(field: Any, coords: np.ndarray) -> np.ndarray:
    from scipy.interpolate import RegularGridInterpolator

    axes = tuple(field.grid.axes.values())
    f = RegularGridInterpolator(axes, field.values, bounds_error=False, fill_value=np.nan)
    return np.asarray(f(coords[:, : field.grid.ndim]))


def paths_polydata(field: Any, height: HeightMap | None = None) -> Any:
    """One polyline per ``field.paths`` entry; point arrays ``step``, ``loss``, ``run_id``.

    Points are at the projected coordinates; for 2D fields ``z`` is the surface height of the
    path's recorded loss (or of the field interpolated at the point when the path has none).
    Cell data ``run_id``; field data ``run_names`` lists the runs in ``run_id`` order.
    """
    pv = pyvista()
    from vtk import vtkStringArray

    pts, steps, losses, ids, lines = [], [], [], [], []
    offset = 0
    names = list(field.paths)
    for rid, name in enumerate(names):
        path = field.paths[name]
        c = np.atleast_2d(np.asarray(path.coords, dtype=np.float64))
        n = c.shape[0]
        loss = (
            np.asarray(path.loss, dtype=np.float64) if path.loss is not None else np.full(n, np.nan)
        )
        p = _pad3(c)
        if height is not None and field.grid.ndim == 2:
            on_field = np.where(np.isfinite(loss), loss, _interpolate(field, c))
            p[:, 2] = height(on_field)
        pts.append(p)
        steps.append(path.step)
        losses.append(loss)
        ids.append(np.full(n, rid, dtype=np.int32))
        lines.append(np.concatenate([[n], offset + np.arange(n)]))
        offset += n
    if not pts:
        return pv.PolyData()
    mesh = pv.PolyData(np.concatenate(pts), lines=np.concatenate(lines))
    mesh.point_data["step"] = np.concatenate(steps).astype(np.int64)
    mesh.point_data["loss"] = np.concatenate(losses)
    mesh.point_data["run_id"] = np.concatenate(ids)
    mesh.cell_data["run_id"] = np.arange(len(names), dtype=np.int32)
    runs = vtkStringArray()
    runs.SetName("run_names")
    for name in names:
        runs.InsertNextValue(str(getattr(field.paths[name], "run", name)))
    mesh.GetFieldData().AddArray(runs)
    return mesh


# ---------------------------------------------------------------------------------------- topology
def critical_points_polydata(
    points: np.ndarray,
    types: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    persistence: np.ndarray | None = None,
    pair_ids: np.ndarray | None = None,
    multiplicity: np.ndarray | None = None,
    index: np.ndarray | None = None,
    boundary: np.ndarray | None = None,
    value_name: str = "loss",
) -> Any:
    """Critical points as vertices with TTK's array names.

    Point arrays: ``CriticalType`` (0 min, 1 1-saddle, 2 2-saddle, 3 max), ``Persistence``
    (NaN where the point is not in a pair), ``PairIdentifier`` (-1 where unpaired), the value
    under ``value_name``, and when given ``Multiplicity``, ``VertexIdentifier`` (flat C-order
    grid index) and ``IsOnBoundary``. ``points`` is ``(n, 1..3)``, padded with zeros.

    >>> import numpy as np
    >>> pd = critical_points_polydata(np.zeros((2, 2)), [0, 3], [0.0, 1.0])
    >>> pd.n_points, sorted(pd.point_data.keys())
    (2, ['CriticalType', 'PairIdentifier', 'Persistence', 'loss'])
    """
    pv = pyvista()
    p = _pad3(points) if len(points) else np.zeros((0, 3))
    n = p.shape[0]
    mesh = pv.PolyData(p)
    if n:
        mesh.verts = np.column_stack([np.ones(n, dtype=np.int64), np.arange(n)]).ravel()

    def col(arr: Any, dtype: Any, fill: Any) -> np.ndarray:
        if arr is None:
            return np.full(n, fill, dtype=dtype)
        out = np.asarray(arr).astype(dtype).ravel()
        if out.size != n:
            raise InvalidParameterError(
                f"critical_points_polydata got {out.size} entries for {n} points; give one each."
            )
        return out

    mesh.point_data["CriticalType"] = col(types, np.int32, 0)
    mesh.point_data["Persistence"] = col(persistence, np.float64, np.nan)
    mesh.point_data["PairIdentifier"] = col(pair_ids, np.int32, -1)
    mesh.point_data[value_name] = col(values, np.float64, np.nan)
    if multiplicity is not None:
        mesh.point_data["Multiplicity"] = col(multiplicity, np.int32, 1)
    if index is not None:
        mesh.point_data["VertexIdentifier"] = col(index, np.int64, -1)
    if boundary is not None:
        mesh.point_data["IsOnBoundary"] = col(boundary, np.uint8, 0)
    return mesh


def _pair_ids(index: np.ndarray, trees: Sequence[Any]) -> np.ndarray:
    """Row of the pair each vertex belongs to; rows of later trees are offset by earlier sizes."""
    out = np.full(index.shape, -1, dtype=np.int32)
    where: dict[int, int] = {}
    offset = 0
    for tree in trees:
        pair_index = get(tree, "pair_index")
        if pair_index is None:
            continue
        pi = np.asarray(pair_index).reshape(-1, 2)
        for row, (b, d) in enumerate(pi):
            where.setdefault(int(b), offset + row)
            if d >= 0:
                where.setdefault(int(d), offset + row)
        offset += len(pi)
    for i, v in enumerate(index):
        out[i] = where.get(int(v), -1)
    return out


def _critical_from_topology(field: Any, topology: Any, height: HeightMap | None) -> Any | None:
    """The persistent critical points of a summary (all of them for a bare CriticalPoints)."""
    cp = topology if hasattr(topology, "coords") else get(topology, "persistent", "critical_points")
    if cp is None:
        return None
    index = get(cp, "index")
    index = None if index is None else np.asarray(index, dtype=np.int64).ravel()
    coords = np.atleast_2d(np.asarray(get(cp, "coords"), dtype=np.float64))
    values = np.asarray(get(cp, "value"), dtype=np.float64).ravel()
    if coords.size == 0:
        coords = np.zeros((0, field.grid.ndim))
    trees = topology_trees(topology) if cp is not topology else []
    pers = critical_persistence(index, *trees) if index is not None else None
    if pers is not None and np.isinf(pers).any():  # TTK pairs the global min with the maximum
        finite = field.values[np.isfinite(field.values)]
        span = float(finite.max() - finite.min()) if finite.size else np.nan
        pers = np.where(np.isinf(pers), span, pers)
    pids = _pair_ids(index, trees) if index is not None else None
    p = _pad3(coords)
    if height is not None and field.grid.ndim == 2:
        p[:, 2] = height(values)
    return critical_points_polydata(
        p, np.asarray(get(cp, "type")), values, persistence=pers, pair_ids=pids,
        multiplicity=get(cp, "multiplicity"), index=index, boundary=get(cp, "boundary"),
    )  # fmt: skip


def freudenthal_offsets(ndim: int) -> np.ndarray:
    """Neighbour offsets of the Freudenthal triangulation: nonzero {0,1}^d vectors and negatives."""
    pos = [np.array(v) for v in itertools.product((0, 1), repeat=ndim) if any(v)]
    return np.array(pos + [-v for v in pos], dtype=np.int64)


def steepest_descent(
    values: np.ndarray,
    start: int,
    axes: Sequence[np.ndarray] | None = None,
    *,
    offsets: np.ndarray | None = None,
) -> np.ndarray:
    """Flat indices of the steepest-descent path on the grid from ``start`` to a local minimum.

    Each step goes to the neighbour (Freudenthal by default) with the largest drop per unit of
    distance, among the neighbours lower in losstopo's vertex order (value, then flat index;
    NaN/inf above everything), so the walk always ends.

    >>> import numpy as np
    >>> steepest_descent(np.array([3.0, 2.0, 1.0, 0.0, 5.0]), 0).tolist()
    [0, 1, 2, 3]
    """
    v = np.asarray(values, dtype=np.float64)
    shape = v.shape
    key = np.where(np.isfinite(v), v, np.inf).ravel()
    offs = freudenthal_offsets(v.ndim) if offsets is None else np.asarray(offsets)
    ax = [np.arange(s, dtype=np.float64) for s in shape] if axes is None else list(axes)
    path = [int(start)]
    cur = int(start)
    for _ in range(v.size):
        idx = np.array(np.unravel_index(cur, shape))
        nb = idx + offs
        ok = np.all((nb >= 0) & (nb < np.array(shape)), axis=1)
        nb = nb[ok]
        flat = np.ravel_multi_index(tuple(nb.T), shape)
        lower = (key[flat] < key[cur]) | ((key[flat] == key[cur]) & (flat < cur))
        if not lower.any():
            break
        nb, flat = nb[lower], flat[lower]
        dist = np.sqrt(sum((ax[k][nb[:, k]] - ax[k][idx[k]]) ** 2 for k in range(len(shape))))
        drop = key[cur] - key[flat]
        drop = np.where(np.isfinite(drop), drop, np.finfo(float).max)
        cur = int(flat[np.lexsort((key[flat], -drop / dist))[0]])
        path.append(cur)
    return np.array(path, dtype=np.int64)


def merge_tree_arcs(
    values: np.ndarray,
    pair_index: np.ndarray,
    axes: Sequence[np.ndarray],
    pairs: np.ndarray | None = None,
) -> list[tuple[int, np.ndarray]]:
    """``[(pair id, flat path), ...]``: for each finite (minimum, saddle) pair, a grid path
    from the saddle down to its minimum.

    The path starts at the saddle with the lower neighbour whose steepest descent reaches the
    paired minimum (the steepest such one); when no descent reaches it (the minimum's basin
    holds simplified-away minima), the steepest descent is taken and the minimum appended.
    """
    v = np.asarray(values, dtype=np.float64)
    shape = v.shape
    key = np.where(np.isfinite(v), v, np.inf).ravel()
    offs = freudenthal_offsets(v.ndim)
    arcs = []
    pi = np.asarray(pair_index, dtype=np.int64).reshape(-1, 2)
    for row, (m, s) in enumerate(pi):
        if s < 0 or m < 0 or s >= v.size or m >= v.size:
            continue
        if pairs is not None and not np.isfinite(np.asarray(pairs).reshape(-1, 2)[row, 1]):
            continue
        idx = np.array(np.unravel_index(int(s), shape))
        nb = idx + offs
        nb = nb[np.all((nb >= 0) & (nb < np.array(shape)), axis=1)]
        flat = np.ravel_multi_index(tuple(nb.T), shape)
        lower = flat[(key[flat] < key[s]) | ((key[flat] == key[s]) & (flat < s))]
        best = None
        for start in lower[np.argsort(key[lower])]:
            down = steepest_descent(v, int(start), axes, offsets=offs)
            if down[-1] == m:
                best = down
                break
        if best is None:
            first = int(lower[np.argmin(key[lower])]) if lower.size else int(m)
            best = steepest_descent(v, first, axes, offsets=offs)
            if best[-1] != m:
                best = np.append(best, m)
        arcs.append((row, np.concatenate([[int(s)], best])))
    return arcs


def merge_tree_polydata(field: Any, tree: Any, height: HeightMap | None = None) -> Any:
    """Merge-tree arcs as polylines in the domain (see :func:`merge_tree_arcs`).

    Point arrays ``loss`` and ``VertexIdentifier``; cell arrays ``PairIdentifier``,
    ``Persistence``, ``Birth`` (the minimum's value) and ``Death`` (the saddle's).
    """
    pv = pyvista()
    pair_index = get(tree, "pair_index")
    if pair_index is None:
        return pv.PolyData()
    pairs = get(tree, "pairs")
    pairs_arr = None if pairs is None else np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    axes = list(field.grid.axes.values())
    arcs = merge_tree_arcs(field.values, pair_index, axes, pairs_arr)
    if not arcs:
        return pv.PolyData()
    flat_all = np.concatenate([a for _, a in arcs])
    coords = _pad3(field.grid.coords_of(flat_all))
    vals = np.asarray(field.values, dtype=np.float64).ravel()[flat_all]
    if height is not None and field.grid.ndim == 2:
        coords[:, 2] = height(vals)
    lines, off = [], 0
    for _, a in arcs:
        lines.append(np.concatenate([[a.size], off + np.arange(a.size)]))
        off += a.size
    mesh = pv.PolyData(coords, lines=np.concatenate(lines))
    mesh.point_data["loss"] = vals
    mesh.point_data["VertexIdentifier"] = flat_all
    rows = np.array([r for r, _ in arcs])
    mesh.cell_data["PairIdentifier"] = rows.astype(np.int32)
    starts = np.cumsum([0] + [a.size for _, a in arcs[:-1]])
    ends = starts + np.array([a.size for _, a in arcs]) - 1
    death, birth = vals[starts], vals[ends]  # arcs run saddle -> minimum
    if pairs_arr is not None:
        birth, death = pairs_arr[rows, 0], pairs_arr[rows, 1]
    mesh.cell_data["Birth"] = birth
    mesh.cell_data["Death"] = death
    mesh.cell_data["Persistence"] = death - birth
    return mesh


def diagram_polydata(
    diagrams: Iterable[tuple[int, np.ndarray]], ndim: int, value_range: tuple[float, float]
) -> Any:
    """Persistence diagrams in TTK's layout (``ttkPersistenceDiagram``, embedded mode).

    Each pair ``(b, d)`` is a line cell between the points ``(b, b, 0)`` and ``(b, d, 0)``.
    Point arrays ``Birth``, ``Death``, ``CriticalType`` (the birth/death critical types of the
    pair); cell arrays ``PairIdentifier``, ``PairType`` (homology dimension), ``Persistence``
    and ``IsFinite``. Essential classes (infinite death) are drawn, as TTK does, dying at the
    field's maximum with ``IsFinite`` 0. A last cell, the diagonal, has ``PairIdentifier`` and
    ``PairType`` -1.
    """
    pv = pyvista()
    lo, hi = value_range
    pts, births, deaths, ctype, lines = [], [], [], [], []
    pid, ptype, pers, fin = [], [], [], []
    n = 0
    for k, dgm in diagrams:
        d = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
        btype = 0 if k == 0 else k
        dtype = 3 if k + 1 >= ndim else k + 1
        for b, dd in d:
            finite = bool(np.isfinite(dd))
            death = dd if finite else hi
            pts += [[b, b, 0.0], [b, death, 0.0]]
            births += [b, b]
            deaths += [death, death]
            ctype += [btype, dtype]
            lines.append([2, 2 * n, 2 * n + 1])
            pid.append(n)
            ptype.append(k)
            pers.append(death - b)
            fin.append(int(finite))
            n += 1
    pts += [[lo, lo, 0.0], [hi, hi, 0.0]]
    births += [lo, hi]
    deaths += [lo, hi]
    ctype += [0, 3]
    lines.append([2, 2 * n, 2 * n + 1])
    pid.append(-1)
    ptype.append(-1)
    pers.append(0.0)
    fin.append(1)
    mesh = pv.PolyData(np.array(pts, dtype=np.float64), lines=np.array(lines).ravel())
    mesh.point_data["Birth"] = np.array(births)
    mesh.point_data["Death"] = np.array(deaths)
    mesh.point_data["CriticalType"] = np.array(ctype, dtype=np.int32)
    mesh.cell_data["PairIdentifier"] = np.array(pid, dtype=np.int32)
    mesh.cell_data["PairType"] = np.array(ptype, dtype=np.int32)
    mesh.cell_data["Persistence"] = np.array(pers)
    mesh.cell_data["IsFinite"] = np.array(fin, dtype=np.uint8)
    return mesh


# ---------------------------------------------------------------------------------------- bundle
def write_multiblock(blocks: Sequence[tuple[str, Path]], path: Path) -> Path:
    """A ``.vtm`` index referencing already written files, one named block each.

    Written with VTK's multiblock writer would duplicate every dataset into a sub-directory;
    the index is instead built with ElementTree (version 1.0 of the format, as VTK writes it)
    and points at the files next to it by relative path.
    """
    import xml.etree.ElementTree as ET

    root = ET.Element(
        "VTKFile", type="vtkMultiBlockDataSet", version="1.0", byte_order="LittleEndian",
        header_type="UInt64",
    )  # fmt: skip
    mb = ET.SubElement(root, "vtkMultiBlockDataSet")
    for i, (name, file) in enumerate(blocks):
        ET.SubElement(
            mb, "DataSet", index=str(i), name=name, file=os.path.relpath(file, path.parent)
        )
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_paraview(
    field: Any, directory: str | os.PathLike[str], topology: Any = None
) -> list[Path]:
    """Write a field, its paths and its topology as VTK files ParaView 5.11+ opens directly.

    Parameters
    ----------
    field : LossField
        A 1D, 2D or 3D field. NaN/inf values are written as they are and flagged by the
        ``valid`` array; the 2D surface leaves them out.
    directory : path-like
        An existing, writable directory. Files in it with the same names are overwritten.
    topology : TopologySummary, optional
        From :func:`losstopo.topology.analyze`; defaults to ``field.topology``. Adds the basin
        segmentation array and the critical points, merge-tree and diagram files.

    Returns
    -------
    list of Path
        Every file written; the bundle ``landscape.vtm`` and ``open_in_paraview.py`` last.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from losstopo import Grid, LossField
    >>> g = Grid.square(resolution=9, dims=2)
    >>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    >>> [p.name for p in write_paraview(LossField(x**2 + y**2, g), tempfile.mkdtemp())]
    ['field.vti', 'surface.vtp', 'surface.ply', 'landscape.vtm', 'open_in_paraview.py']
    """
    from .paraview_script import write_script
    from .ply import height_surface

    _check_field(field)
    out = check_directory(directory)
    if topology is None and field.topology is not None and not isinstance(field.topology, dict):
        topology = field.topology
    written: list[Path] = []
    blocks: list[tuple[str, Path]] = []

    def emit(name: str, dataset: Any, filename: str) -> None:
        path = write_xml(dataset, out / filename)
        written.append(path)
        blocks.append((name, path))

    image = field_dataset(field, topology)
    emit("field", image, "field.vti" if image.IsA("vtkImageData") else "field.vtr")
    height = None
    seg = segmentation_of(topology, field.grid.shape)
    if field.grid.ndim == 2:
        axes = list(field.grid.axes.values())
        height = HeightMap(field.values, axes, log=False, scale=True)
        finite = np.isfinite(field.values)
        if (finite[:-1, :-1] & finite[1:, :-1] & finite[:-1, 1:] & finite[1:, 1:]).any():
            surface = height_surface(field, segmentation=seg, colormap="viridis")
            emit("surface", surface, "surface.vtp")
            from .ply import write_ply

            written.append(write_ply(field, out / "surface.ply"))
    if field.paths:
        emit("paths", paths_polydata(field, height), "paths.vtp")
    if topology is not None:
        crit = _critical_from_topology(field, topology, height)
        if crit is not None:
            emit("critical_points", crit, "critical_points.vtp")
        trees = topology_trees(topology)
        tree = trees[0] if trees and get(trees[0], "kind") != "split" else None
        if tree is not None:
            arcs = merge_tree_polydata(field, tree, height)
            if arcs.n_points:
                emit("merge_tree", arcs, "merge_tree.vtp")
        dgm = get(topology, "diagram", "persistence_diagram", "persistence", "diagrams")
        if dgm is not None:
            from ..plot import _diagram_arrays

            finite = field.values[np.isfinite(field.values)]
            rng = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            emit("persistence_diagram", diagram_polydata(_diagram_arrays(dgm), field.grid.ndim, rng),
                 "persistence_diagram.vtp")  # fmt: skip
    written.append(write_multiblock(blocks, out / BUNDLE))
    written.append(write_script(out, [name for name, _ in blocks], field.grid.ndim))
    return written

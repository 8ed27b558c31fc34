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

The topology files appear when a topology is given (or attached to the field); the datasets of
topology results are built in :mod:`losstopo.export.topology_vtk`. Everything drawn
in the domain of a 2D field (surface, paths, critical points, arcs) sits at the surface's height
so they line up in one 3D view; the ``.vti`` itself stays flat at ``z = 0``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, InvalidTypeError, validate_output_path
from ..field import LossField
from ..io.replace import write_replacing
from ..topology import TopologySummary
from ..topology.values import finite_range, log_loss_values
from ._common import HeightMap, add_field_data, pad3, pyvista, write_xml
from .topology_vtk import diagram_polydata, merge_tree_polydata, summary_critical_polydata

SUPPORTED_DIMS = (1, 2, 3)
BUNDLE = "landscape.vtm"


def _check_field(field: Any) -> LossField:
    if not isinstance(field, LossField):
        raise InvalidTypeError(
            f"write_paraview needs a losstopo.LossField. Got {type(field).__name__} instead."
        )
    if field.grid.ndim not in SUPPORTED_DIMS:
        raise InvalidParameterError(
            f"VTK image data (.vti) holds 1D, 2D and 3D fields; this field is {field.grid.ndim}D. "
            "Slice it (e.g. fix the last axes) or project it to 3 dimensions or fewer first."
        )
    return field


def _check_topology(topology: Any) -> TopologySummary | None:
    if topology is not None and not isinstance(topology, TopologySummary):
        raise InvalidTypeError(
            "topology must be a losstopo TopologySummary (from losstopo.topology.analyze) or "
            f"None; got {type(topology).__name__}."
        )
    return topology


# ---------------------------------------------------------------------------------------- field
def field_dataset(field: LossField, topology: TopologySummary | None = None) -> Any:
    """The field as ``pyvista.ImageData`` (uniform axes) or ``pyvista.RectilinearGrid``.

    Point arrays: ``loss`` (NaN/inf kept), ``log_loss``, ``valid`` (1 where the loss is finite,
    0 where it is NaN/inf), every metric under its own name, and ``basin`` (int, the topology's
    :meth:`~losstopo.topology.TopologySummary.basin_segmentation`) when a topology is given. Axes map to VTK's x, y, z in order; VTK's point order is
    x fastest, i.e. the transpose of the field's C order.
    """
    _check_field(field)
    topology = _check_topology(topology)
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
    ds.point_data["log_loss"] = vtk_order(log_loss_values(values))
    ds.point_data["valid"] = vtk_order(np.isfinite(values).astype(np.uint8))
    for name, arr in field.metrics.items():
        if name in ("loss", "log_loss", "valid", "basin"):
            name = f"metric_{name}"
        ds.point_data[name] = vtk_order(np.asarray(arr, dtype=np.float64))
    seg = None if topology is None else topology.basin_segmentation()
    if seg is not None:
        ds.point_data["basin"] = vtk_order(seg.astype(np.int32))
    ds.set_active_scalars("loss")
    add_field_data(ds, field)
    return ds


# ---------------------------------------------------------------------------------------- paths
def _interpolate(field: LossField, coords: np.ndarray) -> np.ndarray:
    from scipy.interpolate import RegularGridInterpolator

    axes = tuple(field.grid.axes.values())
    f = RegularGridInterpolator(axes, field.values, bounds_error=False, fill_value=np.nan)
    return np.asarray(f(coords[:, : field.grid.ndim]))


def paths_polydata(field: LossField, height: HeightMap | None = None) -> Any:
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
        p = pad3(c)
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
        runs.InsertNextValue(str(field.paths[name].run))
    mesh.GetFieldData().AddArray(runs)
    return mesh


# ---------------------------------------------------------------------------------------- topology
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
    tree = ET.ElementTree(root)
    write_replacing(path, lambda tmp: tree.write(tmp, encoding="utf-8", xml_declaration=True))
    return path


def write_paraview(
    field: LossField,
    directory: str | os.PathLike[str],
    topology: TopologySummary | None = None,
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
    >>> g = Grid.square(resolution=9, n_components=2)
    >>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    >>> [p.name for p in write_paraview(LossField(x**2 + y**2, g), tempfile.mkdtemp())]
    ['field.vti', 'surface.vtp', 'surface.ply', 'landscape.vtm', 'open_in_paraview.py']
    """
    from .paraview_script import write_script
    from .ply import height_surface, write_ply

    _check_field(field)
    topology = _check_topology(field.topology if topology is None else topology)
    out = validate_output_path(directory, "write_paraview", directory=True)
    written: list[Path] = []
    blocks: list[tuple[str, Path]] = []

    def emit(name: str, dataset: Any, filename: str) -> None:
        path = write_xml(dataset, out / filename)
        written.append(path)
        blocks.append((name, path))

    image = field_dataset(field, topology)
    emit("field", image, "field.vti" if image.IsA("vtkImageData") else "field.vtr")
    height = None
    if field.grid.ndim == 2:
        axes = list(field.grid.axes.values())
        height = HeightMap(field.values, axes, log=False, scale=True)
        finite = np.isfinite(field.values)
        if (finite[:-1, :-1] & finite[1:, :-1] & finite[:-1, 1:] & finite[1:, 1:]).any():
            seg = None if topology is None else topology.basin_segmentation()
            surface = height_surface(field, segmentation=seg, colormap="viridis")
            emit("surface", surface, "surface.vtp")
            written.append(write_ply(field, out / "surface.ply"))
    if field.paths:
        emit("paths", paths_polydata(field, height), "paths.vtp")
    if topology is not None:
        emit("critical_points", summary_critical_polydata(field, topology, height),
             "critical_points.vtp")  # fmt: skip
        arcs = merge_tree_polydata(field, topology, height)
        if arcs.n_points:
            emit("merge_tree", arcs, "merge_tree.vtp")
        rng = finite_range(field.values) or (0.0, 1.0)
        emit("persistence_diagram", diagram_polydata(topology.diagram.items(), field.grid.ndim, rng),
             "persistence_diagram.vtp")  # fmt: skip
    written.append(write_multiblock(blocks, out / BUNDLE))
    written.append(write_script(out, [name for name, _ in blocks], field.grid.ndim))
    return written

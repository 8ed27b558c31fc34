"""Height-field surfaces of 2D fields: a triangle mesh as ``.vtp`` and as binary ``.ply``.

The surface has one vertex per finite grid point at ``(x, y, z)``, ``z`` the loss (optionally
``log10``, optionally scaled so the heights span half the largest axis extent). Each grid cell is
split into two triangles along the (0, 0)-(1, 1) diagonal, the Freudenthal triangulation the
topology layer and ParaView/TTK use. Triangles touching a NaN/inf value are left out and unused
vertices removed, so the mesh stays valid (a hole where the loss diverged); ``grid_index``
maps each vertex back to its flat C-order grid index.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from losstopo import Grid, LossField
>>> from losstopo.export import write_ply
>>> g = Grid.square(resolution=11, n_components=2)
>>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
>>> out = write_ply(LossField(x**2 + y**2, g), os.path.join(tempfile.mkdtemp(), "bowl.ply"))
>>> out.read_bytes()[:3]
b'ply'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, InvalidTypeError, validate_output_path
from ..field import LossField
from ..io.replace import write_replacing
from ..topology.values import log_loss_values
from ._common import HeightMap, pyvista


def _check_2d(field: Any, what: str) -> None:
    if not isinstance(field, LossField):
        raise InvalidTypeError(f"{what} needs a losstopo.LossField. Got {type(field).__name__}.")
    if field.grid.ndim != 2:
        raise InvalidParameterError(
            f"{what} builds height surfaces of 2D fields only; this field is {field.grid.ndim}D. "
            "Export it as image data (.vti) with losstopo.export.write_paraview instead."
        )


def colors_for(values: np.ndarray, colormap: str) -> np.ndarray:
    """``(n, 3)`` uint8 RGB colours of ``values`` through a named matplotlib colormap.

    The finite range maps to the full colormap; non-finite values get the colormap's "bad"
    colour.
    """
    from matplotlib import colormaps

    if not isinstance(colormap, str) or colormap not in colormaps:
        raise InvalidParameterError(
            f"Unknown colormap {colormap!r}; pass a matplotlib colormap name such as 'viridis', "
            "'magma' or 'coolwarm' (see matplotlib.colormaps)."
        )
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    lo = float(v[finite].min()) if finite.any() else 0.0
    hi = float(v[finite].max()) if finite.any() else 1.0
    t = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    rgba = colormaps[colormap](np.ma.masked_invalid(t))
    return np.round(np.asarray(rgba)[:, :3] * 255).astype(np.uint8)


def height_surface(
    field: LossField,
    *,
    log: bool = False,
    scale: bool = True,
    colormap: str | None = None,
    segmentation: np.ndarray | None = None,
) -> Any:
    """The height surface of a 2D field as a ``pyvista.PolyData`` of triangles.

    Point arrays: ``loss``, ``log_loss``, every metric, ``grid_index``, ``basin`` when a
    grid-shaped ``segmentation`` is given and ``RGB`` (uint8) when a ``colormap`` is given.
    Field data records the height transform (``z_scale``, ``z_offset``, ``z_log``,
    ``z_log_shift``): ``z = (h(loss) - z_offset) * z_scale``.
    """
    _check_2d(field, "A height surface")
    pv = pyvista()
    (_, xa), (_, ya) = field.grid.axes.items()
    nx, ny = xa.size, ya.size
    values = np.asarray(field.values, dtype=np.float64)
    hm = HeightMap(values, [xa, ya], log=log, scale=scale)
    X, Y = np.meshgrid(xa, ya, indexing="ij")
    pts = np.column_stack([X.ravel(), Y.ravel(), hm(values).ravel()])
    i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1), indexing="ij")
    v00 = (i * ny + j).ravel()
    v10, v01, v11 = v00 + ny, v00 + 1, v00 + ny + 1
    tris = np.concatenate([np.column_stack([v00, v10, v11]), np.column_stack([v00, v11, v01])])
    valid = np.isfinite(values).ravel()
    tris = tris[valid[tris].all(axis=1)]
    if len(tris) == 0:
        raise InvalidParameterError(
            "The field has no grid cell whose corners are all finite, so it has no surface; "
            "export it as .vti with write_paraview (its 'valid' array flags the NaN points)."
        )
    used = np.unique(tris)
    remap = np.full(values.size, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    faces = np.column_stack([np.full(len(tris), 3), remap[tris]]).ravel()
    mesh = pv.PolyData(pts[used], faces=faces)
    mesh.point_data["loss"] = values.ravel()[used]
    mesh.point_data["log_loss"] = log_loss_values(values).ravel()[used]
    for name, arr in field.metrics.items():
        mesh.point_data[name] = np.asarray(arr, dtype=np.float64).ravel()[used]
    mesh.point_data["grid_index"] = used.astype(np.int64)
    if segmentation is not None and np.shape(segmentation) == values.shape:
        mesh.point_data["basin"] = np.asarray(segmentation).astype(np.int32).ravel()[used]
    if colormap is not None:
        mesh.point_data["RGB"] = colors_for(
            mesh.point_data["log_loss" if log else "loss"], colormap
        )
    for key, value in hm.describe().items():
        mesh.field_data[key] = np.array([value])
    mesh.set_active_scalars("loss")
    return mesh


def write_ply(
    field: LossField,
    path: str | os.PathLike[str],
    *,
    log: bool = False,
    scale: bool = True,
    colormap: str = "viridis",
) -> Path:
    """Write the height surface of a 2D field as a binary PLY with per-vertex colours.

    Parameters
    ----------
    field : LossField
        A 2D field (a 1D or 3D field is refused: export those as ``.vti``).
    path : path-like
        Output file, normally ending in ``.ply``; its directory must exist.
    log : bool
        Height and colour by ``log10`` of the loss.
    scale : bool
        Scale heights to half the largest axis extent (a printable, viewable aspect ratio);
        ``False`` keeps loss units.
    colormap : str
        A matplotlib colormap name for the vertex colours (``red``/``green``/``blue`` uchar).

    Returns
    -------
    Path
        ``path``.
    """
    _check_2d(field, "write_ply")
    path = validate_output_path(path, "write_ply")
    if path.suffix.lower() != ".ply":
        raise InvalidParameterError(
            f"write_ply writes PLY files; {path.name!r} should end in '.ply'. Rename the output."
        )
    mesh = height_surface(field, log=log, scale=scale, colormap=colormap)
    write_replacing(
        path,
        lambda tmp: mesh.save(str(tmp), binary=True, texture="RGB", recompute_normals=False),
        suffix=".tmp.ply",
    )
    return path

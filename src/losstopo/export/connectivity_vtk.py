"""ParaView files of mode connectivity: the connecting plane with its paths, and path profiles.

:func:`write_connectivity` writes the plane's landscape as :func:`~losstopo.export.write_paraview`
does (``paths.vtp`` holds the straight path and the curve as polylines in the plane, with the
``loss`` point array) and adds ``profiles.vtp``: each :class:`~losstopo.connectivity.PathProfile`
as a polyline ``(t, loss, 0)`` with point arrays ``t``, ``loss`` and its metrics, listed in the
``landscape.vtm`` bundle.

Examples
--------
>>> import numpy as np, tempfile
>>> from losstopo.connectivity import PathProfile
>>> p = PathProfile.from_values(np.linspace(0, 1, 5), [1.0, 2.0, 2.5, 2.0, 1.0])
>>> mesh = profiles_polydata({"linear": p})
>>> mesh.n_points, mesh.n_cells, float(mesh.point_data["loss"].max())
(5, 1, 2.5)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..connectivity import PathProfile
from ..errors import InvalidTypeError, validate_output_path
from ..field import LossField
from ._common import pyvista, write_xml
from .vtk import BUNDLE, write_multiblock, write_paraview

__all__ = ["profiles_polydata", "write_connectivity"]


def profiles_polydata(profiles: Mapping[str, PathProfile]) -> Any:
    """One polyline per profile at ``(t, loss, 0)``; point arrays ``t``, ``loss``, ``path_id``
    and every metric the profiles share; field data ``path_names`` and ``barrier``."""
    pv = pyvista()
    from vtk import vtkDoubleArray, vtkStringArray

    items = list(profiles.items())
    for name, p in items:
        if not isinstance(p, PathProfile):
            raise InvalidTypeError(
                f"Profile {name!r} must be a PathProfile (from interpolate or Curve.evaluate); "
                f"got {type(p).__name__}."
            )
    if not items:
        return pv.PolyData()
    pts = np.concatenate([np.column_stack([p.t, p.loss, np.zeros(len(p))]) for _, p in items])
    lines, offset = [], 0
    for _, p in items:
        lines.append(np.concatenate([[len(p)], offset + np.arange(len(p))]))
        offset += len(p)
    mesh = pv.PolyData(pts, lines=np.concatenate(lines))
    mesh.point_data["t"] = np.concatenate([p.t for _, p in items])
    mesh.point_data["loss"] = np.concatenate([p.loss for _, p in items])
    mesh.point_data["path_id"] = np.concatenate(
        [np.full(len(p), i, dtype=np.int32) for i, (_, p) in enumerate(items)]
    )
    shared = set.intersection(*(set(p.metrics) for _, p in items))
    for metric in sorted(shared):
        mesh.point_data[metric] = np.concatenate([p.metrics[metric] for _, p in items])
    names, barriers = vtkStringArray(), vtkDoubleArray()
    names.SetName("path_names")
    barriers.SetName("barrier")
    for name, p in items:
        names.InsertNextValue(str(name))
        barriers.InsertNextValue(float(p.barrier))
    mesh.GetFieldData().AddArray(names)
    mesh.GetFieldData().AddArray(barriers)
    return mesh


def write_connectivity(
    field: LossField,
    directory: str | os.PathLike[str],
    profiles: Mapping[str, PathProfile] | None = None,
) -> list[Path]:
    """Write the plane's landscape (with its paths) and the profiles into ``directory``.

    Returns every file written, the bundle ``landscape.vtm`` listing ``profiles.vtp`` too.
    """
    out = validate_output_path(directory, "write_connectivity", directory=True)
    written = write_paraview(field, out)
    if not profiles:
        return written
    path = write_xml(profiles_polydata(profiles), out / "profiles.vtp")
    blocks = [
        (p.stem, p) for p in written if p.suffix in (".vti", ".vtr", ".vtp") and p.parent == out
    ]
    blocks.append(("profiles", path))
    write_multiblock(blocks, out / BUNDLE)
    return [*written[:-2], path, *written[-2:]]

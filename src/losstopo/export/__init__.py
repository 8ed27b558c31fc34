"""Export loss fields and their topology to ParaView (VTK XML) and mesh viewers (PLY).

Needs the ``export`` extra (``pip install 'losstopo[export]'``: pyvista and vtk). The files open
in ParaView 5.11 and later; see ``docs/export.md`` for the files, their arrays and how to open
them. Fields are :class:`~losstopo.LossField` objects and topologies
:class:`~losstopo.topology.TopologySummary` objects. Modules: :mod:`.vtk` (the field, paths and
the bundle), :mod:`.topology_vtk` (critical points, merge-tree arcs, diagrams), :mod:`.ply`
(height surfaces), :mod:`.paraview_script`.

Examples
--------
>>> import numpy as np, tempfile
>>> from losstopo import Grid, LossField
>>> from losstopo.export import write_paraview
>>> g = Grid.square(resolution=9, n_components=3)
>>> x, y, z = np.meshgrid(*g.axes.values(), indexing="ij")
>>> [p.name for p in write_paraview(LossField(x**2 + y**2 + z**2, g), tempfile.mkdtemp())]
['field.vti', 'landscape.vtm', 'open_in_paraview.py']
"""

from __future__ import annotations

from .connectivity_vtk import profiles_polydata, write_connectivity
from .ply import colors_for, height_surface, write_ply
from .topology_vtk import (
    critical_points_polydata,
    diagram_polydata,
    merge_tree_arcs,
    merge_tree_polydata,
    steepest_descent,
    summary_critical_polydata,
)
from .vtk import field_dataset, paths_polydata, write_paraview

__all__ = [
    "colors_for",
    "critical_points_polydata",
    "diagram_polydata",
    "field_dataset",
    "height_surface",
    "merge_tree_arcs",
    "merge_tree_polydata",
    "paths_polydata",
    "profiles_polydata",
    "steepest_descent",
    "summary_critical_polydata",
    "write_connectivity",
    "write_paraview",
    "write_ply",
]

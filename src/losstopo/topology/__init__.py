"""Topology of grid fields: critical points, merge trees, persistence diagrams and basins.

Conventions (vertex order, connectivities, non-finite values, boundary classification) are in
``docs/topology.md``. Every function takes a :class:`~losstopo.LossField` or a plain array with
optional ``axes=``. ``merge_tree`` takes any number of dimensions; the others take 1-D to 3-D.
"""

from __future__ import annotations

from .basins import Basin, BasinTable, basins
from .critical import CriticalPoints, critical_points
from .merge_tree import MergeTree, merge_tree
from .persistence import (
    PersistenceDiagram,
    bottleneck_distance,
    persistence_diagram,
    wasserstein_distance,
)
from .summary import TopologySummary, analyze, format_summary

__all__ = [
    "Basin",
    "BasinTable",
    "CriticalPoints",
    "MergeTree",
    "PersistenceDiagram",
    "TopologySummary",
    "analyze",
    "basins",
    "bottleneck_distance",
    "critical_points",
    "format_summary",
    "merge_tree",
    "persistence_diagram",
    "wasserstein_distance",
]

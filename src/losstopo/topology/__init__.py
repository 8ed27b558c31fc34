"""Topology of grid fields: critical points, merge trees, persistence diagrams and basins.

Conventions (vertex order, connectivities, non-finite values, boundary classification) are in
``docs/topology.md``. Every function takes a :class:`~losstopo.LossField` or a plain array with
optional ``axes=``. ``merge_tree`` takes any number of dimensions; the others take 1-D to 3-D.

The result classes (:class:`TopologySummary`, :class:`CriticalPoints`, :class:`MergeTree`,
:class:`PersistenceDiagram`, :class:`BasinTable`) are what plots and exports read; each has
``as_tree()``, ``to_dict()``, ``from_dict()`` and ``equals()``. :func:`to_jsonable` is the one JSON
encoder of non-finite numbers; :func:`log_loss_values` the value scale plots and exports share.
"""

from __future__ import annotations

from ..jsonable import to_jsonable
from .basins import Basin, BasinTable, basins
from .critical import CriticalPoints, critical_points
from .merge_tree import MergeTree, merge_tree
from .persistence import (
    PersistenceDiagram,
    bottleneck_distance,
    persistence_diagram,
    wasserstein_distance,
)
from .smad import mean_elder_persistence, smad
from .summary import TopologySummary, analyze, format_summary
from .values import log_loss_values

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
    "log_loss_values",
    "mean_elder_persistence",
    "merge_tree",
    "persistence_diagram",
    "smad",
    "to_jsonable",
    "wasserstein_distance",
]

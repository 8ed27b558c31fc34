"""Basin metrics of one topological summary: the columns of a :class:`Comparison`.

The two saddle-minimum averages (Landscaper's SMAD and losstopo's mean elder-rule persistence)
are defined in :mod:`losstopo.topology.smad`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..topology import TopologySummary
from ..topology.smad import mean_elder_persistence, require_join_tree, smad

__all__ = ["basin_metrics", "centre_index", "mean_elder_persistence", "smad"]


def centre_index(summary: TopologySummary, axes: Any = None) -> int:
    """Flat index of the grid's centre: the point at the origin of the axes (the model, for a
    plane around it), or the middle point when an axis does not span 0.

    >>> import numpy as np
    >>> from losstopo import analyze
    >>> centre_index(analyze(np.zeros((3, 5)), hessian=False))
    7
    """
    shape = tuple(summary.shape)
    idx = []
    for k, n in enumerate(shape):
        ax = None if axes is None else np.asarray(axes[k], dtype=np.float64)
        if ax is not None and ax.size == n and ax.min() <= 0.0 <= ax.max():
            idx.append(int(np.argmin(np.abs(ax))))
        else:
            idx.append(n // 2)
    return int(np.ravel_multi_index(tuple(idx), shape))


def basin_metrics(
    summary: TopologySummary, values: np.ndarray, axes: Any = None
) -> dict[str, float]:
    """The topology columns of :class:`~losstopo.compare.Comparison` for one summary.

    ``n_minima`` persistent minima; ``centre_depth``, ``centre_size``, ``centre_flatness`` of the
    basin that holds the grid's centre (:func:`centre_index`): its persistence (for the global
    minimum's basin, which never dies, the height of the field's highest finite value above
    it), its share of the domain's volume and its flatness; ``total_persistence``; ``smad`` and
    ``smad_normalized`` (Landscaper's, :func:`smad`); ``mean_elder_persistence``;
    ``nonfinite_fraction``; ``min_loss`` and ``centre_loss`` (``values``: the field's values).

    >>> import numpy as np
    >>> from losstopo import analyze
    >>> x = np.linspace(-1, 1, 21)
    >>> f = np.add.outer(x**2, x**2)
    >>> m = basin_metrics(analyze(f, hessian=False), f, axes=(x, x))
    >>> m["n_minima"], m["centre_depth"], m["centre_size"]
    (1.0, 2.0, 1.0)
    """
    tree = require_join_tree(summary, "basin_metrics")
    centre = centre_index(summary, axes)
    label = int(np.asarray(tree.branch_segmentation).ravel()[centre])
    minimum = int(tree.pair_index[label, 0])
    rows = {r.index: r for r in summary.basins.rows}
    basin = rows.get(minimum)
    if basin is None:  # a region of no persistent minimum (only without simplification)
        depth = size = flat = float("nan")
    else:
        depth = basin.persistence
        if not np.isfinite(depth):
            depth = summary.value_max - basin.value
        size, flat = basin.fraction, basin.flatness
    centre_value = np.asarray(values, dtype=np.float64).ravel()[centre]
    return {
        "n_minima": float(summary.basins.n_minima),
        "centre_depth": float(depth),
        "centre_size": float(size),
        "centre_flatness": float(flat),
        "total_persistence": float(summary.basins.total_persistence),
        "smad": smad(summary),
        "smad_normalized": smad(summary, normalize=True),
        "mean_elder_persistence": mean_elder_persistence(summary),
        "nonfinite_fraction": summary.n_nonfinite / summary.n_vertices,
        "min_loss": float(summary.value_min),
        "centre_loss": float(centre_value),
    }

"""Basin metrics of one topological summary, with definitions users can cite.

Two "saddle-minimum" averages are in use and they are not the same number:

* :func:`smad` is Landscaper's **Saddle-Minimum Average Distance** (Geniesse et al.): every minimum
  of the sublevel-set merge tree (the join tree), the global one included, is paired with the
  next branching node of the tree above it (the saddle where its component first meets another
  one), and the gaps ``f(saddle) - f(minimum)`` are averaged. ``normalize=True`` divides each gap
  by the field's value range; ``weighted=True`` multiplies each gap by the fraction of the
  grid's points in that minimum's basin before averaging. A tree without a branching node (one
  minimum) gives 0.
* :func:`mean_elder_persistence` is what :attr:`losstopo.topology.BasinTable.smad` holds: the mean
  elder-rule persistence of the non-global minima (each minimum paired with the saddle where it
  *dies*, the global minimum left out).

They differ whenever a deep minimum absorbs a shallower one: the deep minimum's gap counts in
:func:`smad` (to the first saddle above it) but is not a persistence pair.

Examples
--------
>>> import numpy as np
>>> from losstopo.topology import analyze
>>> f = np.array([0.0, 3.0, 1.0, 4.0])          # minima at 0 and 1, merge saddle at 3
>>> s = analyze(f, hessian=False)
>>> smad(s), mean_elder_persistence(s)          # (3 + 2) / 2 and 2 / 1
(2.5, 2.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from .summary import TopologySummary

__all__ = ["mean_elder_persistence", "require_join_tree", "smad"]


def require_join_tree(summary: TopologySummary, func: str) -> Any:
    """The summary's join tree; one sentence naming ``func`` when there is none."""
    if not isinstance(summary, TopologySummary):
        raise InvalidParameterError(
            f"{func} needs a TopologySummary (from losstopo.analyze); got {type(summary).__name__}."
        )
    if summary.join_tree is None:
        raise InvalidParameterError(
            f"{func} needs the summary's join tree, which a summary written by losstopo 0.1 does "
            "not store; analyse the field again with losstopo.analyze."
        )
    return summary.join_tree


def _minimum_gaps(summary: TopologySummary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per leaf of the join tree: its flat index, its gap to the node above, whether that node
    branches (a saddle rather than the root)."""
    tree = require_join_tree(summary, "smad")
    values = _values(summary)
    leaves = np.asarray(tree.extrema, dtype=np.int64)
    arcs = np.asarray(tree.arcs, dtype=np.int64).reshape(-1, 2)
    upper = {int(a): int(b) for a, b in arcs}
    saddles = set(int(s) for s in np.asarray(tree.saddles).ravel())
    above = np.array([upper.get(int(m), int(tree.root)) for m in leaves], dtype=np.int64)
    branching = np.array([int(u) in saddles for u in above], dtype=bool)
    gaps = np.abs(values[above] - values[leaves]) if leaves.size else np.zeros(0)
    return leaves, gaps, branching


def _values(summary: TopologySummary) -> np.ndarray:
    """The field's values at every vertex, as the summary's critical points and tree know them."""
    tree = require_join_tree(summary, "smad")
    values = np.full(int(np.prod(summary.shape)), np.nan)
    values[tree.pair_index[:, 0]] = tree.pairs[:, 0]
    sad = tree.pair_index[:, 1] >= 0
    values[tree.pair_index[sad, 1]] = tree.pairs[sad, 1]
    return values


def smad(summary: TopologySummary, normalize: bool = False, weighted: bool = False) -> float:
    """Landscaper's Saddle-Minimum Average Distance of the summary's (simplified) join tree.

    Parameters
    ----------
    summary : TopologySummary
        Its join tree, simplified at the summary's ``min_persistence`` (0 gives the raw tree,
        Landscaper's setting).
    normalize : divide each gap by the finite value range of the field.
    weighted : multiply each gap by its basin's share of the grid's vertices (the basin is the
        minimum's branch of the join tree; Landscaper uses the minimum's steepest-descent region,
        which is the same region on a field whose merge saddles are the only critical points).

    Returns
    -------
    float
        ``mean_i gap_i`` (times ``share_i`` when weighted) over every minimum of the tree whose
        upper node branches; 0 when the tree has a single minimum. Saddles in the non-finite
        region (NaN or inf losses) give no finite gap and are left out.

    Examples
    --------
    >>> import numpy as np
    >>> from losstopo.topology import analyze
    >>> s = analyze(np.array([0.0, 3.0, 1.0, 4.0]), hessian=False)
    >>> smad(s, normalize=True)                  # gaps 3 and 2 over the range 4
    0.625
    """
    leaves, gaps, branching = _minimum_gaps(summary)
    branching &= np.isfinite(gaps)  # a saddle in the non-finite region has no finite gap
    if not branching.any():
        return 0.0
    gaps = gaps[branching]
    if normalize:
        span = summary.value_max - summary.value_min
        gaps = gaps / span if span > 0 else np.zeros_like(gaps)
    if weighted:
        tree = summary.join_tree
        assert tree is not None
        seg = np.asarray(tree.branch_segmentation).ravel()
        counts = np.bincount(seg, minlength=tree.pair_index.shape[0])
        row = {int(m): i for i, m in enumerate(tree.pair_index[:, 0])}
        share = np.array([counts[row[int(m)]] for m in leaves[branching]]) / seg.size
        gaps = gaps * share
    return float(np.mean(gaps))


def mean_elder_persistence(summary: TopologySummary) -> float:
    """Mean elder-rule persistence of the persistent non-global minima (``basins.smad``).

    Each minimum is paired with the saddle where its sublevel-set component dies (merges into an
    older one); the global minimum never dies and is left out. 0 with a single basin.

    Examples
    --------
    >>> import numpy as np
    >>> from losstopo.topology import analyze
    >>> mean_elder_persistence(analyze(np.array([0.0, 3.0, 1.0, 4.0]), hessian=False))
    2.0
    """
    pers = summary.basins.column("persistence") if len(summary.basins) else np.zeros(0)
    finite = pers[np.isfinite(pers)]
    return float(finite.mean()) if finite.size else 0.0

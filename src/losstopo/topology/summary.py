"""`analyze`: every topological summary of a field in one call, and its JSON form."""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import validate_float
from ..jsonable import to_jsonable
from ._codec import array, same
from ._order import TYPE_NAMES, Prepared, prepare
from .basins import BasinTable, basins_from_tree
from .critical import CriticalPoints, critical_points_from_prepared
from .merge_tree import MergeTree, absolute_threshold, merge_tree_from_prepared, pair_lookup
from .persistence import MAX_SIMPLICES, PersistenceDiagram, diagram_from_prepared

#: Layout of :meth:`TopologySummary.to_dict`; version 1 (losstopo 0.1) stored neither the full
#: critical points nor the trees, and only the diagram's pairs above the threshold.
SCHEMA = "losstopo-topology/2"


@dataclass(frozen=True, eq=False)
class TopologySummary:
    """Everything :func:`analyze` computes about one field.

    >>> import numpy as np
    >>> x, y = np.meshgrid(np.linspace(-2, 2, 41), np.linspace(-1, 1, 21), indexing="ij")
    >>> topo = analyze((x**2 - 1) ** 2 + y**2, min_persistence=0.1)
    >>> topo.n_minima, topo.n_saddles, topo.morse_sum
    (2, 1, 1)
    >>> TopologySummary.from_dict(topo.to_dict()).equals(topo)
    True

    Attributes
    ----------
    connectivity, shape, axis_names : the analysis settings and the grid.
    min_persistence : absolute simplification threshold used (``relative`` says how it was given).
    n_vertices, n_nonfinite, value_min, value_max : the field (finite range).
    critical_counts : type -> count over the raw field's critical points.
    morse_sum : ``sum((-1)**index * multiplicity)`` over the raw critical points (1 for a box).
    persistent : :class:`CriticalPoints` that survive simplification (nodes of the simplified
        join and split trees, roots excluded).
    join_pairs, join_pair_index, split_pairs, split_pair_index : pairs of the simplified trees.
    diagram : :class:`PersistenceDiagram` (all pairs of positive persistence).
    basins : :class:`BasinTable` of the persistent minima.
    critical_points, join_tree, split_tree : the raw critical points and the simplified trees
        (with their segmentations). Always present, except in a summary read from a file that
        losstopo 0.1 wrote (schema ``losstopo-topology/1``), which stored none of them.
    attrs : provenance: ``losstopo_version``, and under ``"field"`` a copy of the analysed
        :class:`~losstopo.LossField`'s ``attrs`` (projector, seeds, data, ...).
    """

    connectivity: str
    shape: tuple[int, ...]
    axis_names: tuple[str, ...]
    min_persistence: float
    relative: bool
    n_vertices: int
    n_nonfinite: int
    value_min: float
    value_max: float
    critical_counts: dict[int, int]
    morse_sum: int
    persistent: CriticalPoints
    join_pairs: np.ndarray
    join_pair_index: np.ndarray
    split_pairs: np.ndarray
    split_pair_index: np.ndarray
    diagram: PersistenceDiagram
    basins: BasinTable
    critical_points: CriticalPoints | None = None
    join_tree: MergeTree | None = None
    split_tree: MergeTree | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_minima(self) -> int:
        return int(np.count_nonzero(self.persistent.type == 0))

    @property
    def n_maxima(self) -> int:
        return int(np.count_nonzero(self.persistent.type == 3))

    @property
    def n_saddles(self) -> int:
        return int(np.count_nonzero((self.persistent.type == 1) | (self.persistent.type == 2)))

    # ------------------------------------------------------------------ views for plots/exports
    def trees(self) -> tuple[MergeTree, ...]:
        """The simplified merge trees, join tree first (empty for a losstopo 0.1 summary)."""
        return tuple(t for t in (self.join_tree, self.split_tree) if t is not None)

    def pair_tables(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """``((join_pairs, join_pair_index), (split_pairs, split_pair_index))``."""
        return (self.join_pairs, self.join_pair_index), (self.split_pairs, self.split_pair_index)

    def critical_persistence(self) -> np.ndarray:
        """Persistence of each row of :attr:`persistent` from the join, then the split pairs
        (``inf`` for the essential minimum and maximum)."""
        pers, _ = pair_lookup(self.persistent.index, self.pair_tables())
        return pers

    def critical_pair_ids(self) -> np.ndarray:
        """Pair row of each row of :attr:`persistent`: join pairs first, then split pairs
        numbered after them (TTK's ``PairIdentifier``); -1 if unpaired."""
        _, ids = pair_lookup(self.persistent.index, self.pair_tables())
        return ids

    def basin_segmentation(self) -> np.ndarray | None:
        """Grid-shaped basin label of every vertex (the join tree's ``branch_segmentation``:
        label ``i`` is row ``i`` of ``join_pairs``); None for a losstopo 0.1 summary."""
        return None if self.join_tree is None else self.join_tree.branch_segmentation

    # ------------------------------------------------------------------ storage
    def as_tree(self) -> dict[str, Any]:
        """Every field as a nested dict of scalars, strings, arrays and lists of arrays.

        :meth:`to_dict` is its JSON form and :func:`losstopo.io.topology.write_topology` its
        HDF5 form (arrays as datasets).
        """
        tree: dict[str, Any] = {
            "schema": SCHEMA,
            "connectivity": self.connectivity,
            "shape": np.asarray(self.shape, dtype=np.int64),
            "axis_names": [str(n) for n in self.axis_names],
            "min_persistence": float(self.min_persistence),
            "relative": bool(self.relative),
            "n_vertices": int(self.n_vertices),
            "n_nonfinite": int(self.n_nonfinite),
            "value_min": float(self.value_min),
            "value_max": float(self.value_max),
            "critical_counts": {str(k): int(v) for k, v in self.critical_counts.items()},
            "morse_sum": int(self.morse_sum),
            "persistent": self.persistent.as_tree(),
            "join_pairs": self.join_pairs,
            "join_pair_index": self.join_pair_index,
            "split_pairs": self.split_pairs,
            "split_pair_index": self.split_pair_index,
            "diagram": self.diagram.as_tree(),
            "basins": self.basins.as_tree(),
        }
        for name in ("critical_points", "join_tree", "split_tree"):
            part = getattr(self, name)
            if part is not None:
                tree[name] = part.as_tree()
        tree["attrs"] = self.attrs
        return tree

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (non-finite floats as the strings "inf", "-inf", "nan");
        :meth:`from_dict` rebuilds an equal summary."""
        return dict(to_jsonable(self.as_tree()))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TopologySummary:
        """Rebuild a summary from :meth:`to_dict` (or :meth:`as_tree`) output.

        Dicts written by losstopo 0.1 (no ``critical_points``, ``join_tree``, ``split_tree``) give
        a summary with those three None and the diagram they stored.
        """
        shape = tuple(int(s) for s in np.asarray(d["shape"]).ravel())

        def tree(name: str) -> MergeTree | None:
            return MergeTree.from_dict(d[name], shape) if name in d else None

        return cls(
            connectivity=str(d["connectivity"]),
            shape=shape,
            axis_names=tuple(str(s) for s in d["axis_names"]),
            min_persistence=float(d["min_persistence"]),
            relative=bool(d["relative"]),
            n_vertices=int(d["n_vertices"]),
            n_nonfinite=int(d["n_nonfinite"]),
            value_min=float(d["value_min"]),
            value_max=float(d["value_max"]),
            critical_counts={int(k): int(v) for k, v in d["critical_counts"].items()},
            morse_sum=int(d["morse_sum"]),
            persistent=CriticalPoints.from_dict(d["persistent"]),
            join_pairs=array(d["join_pairs"], np.float64, (2,)),
            join_pair_index=array(d["join_pair_index"], np.int64, (2,)),
            split_pairs=array(d["split_pairs"], np.float64, (2,)),
            split_pair_index=array(d["split_pair_index"], np.int64, (2,)),
            diagram=PersistenceDiagram.from_dict(d["diagram"]),
            basins=BasinTable.from_dict(d["basins"]),
            critical_points=(
                CriticalPoints.from_dict(d["critical_points"]) if "critical_points" in d else None
            ),
            join_tree=tree("join_tree"),
            split_tree=tree("split_tree"),
            attrs=dict(d.get("attrs", {})),
        )

    def equals(self, other: Any) -> bool:
        """Whether ``other`` is a TopologySummary with the same fields: arrays equal in dtype,
        shape and values (NaN equal to NaN), ``attrs`` equal in their JSON form."""
        return isinstance(other, TopologySummary) and same(self.as_tree(), other.as_tree())

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as JSON to ``path``."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=1)

    def __repr__(self) -> str:
        return (
            f"TopologySummary(shape={self.shape}, connectivity={self.connectivity!r}, "
            f"{self.n_minima} minima, {self.n_saddles} saddles, {self.n_maxima} maxima "
            f"persisting above {self.min_persistence:.4g})"
        )


def _persistent(cp: CriticalPoints, join: MergeTree, split: MergeTree) -> CriticalPoints:
    nodes = np.concatenate([join.extrema, join.saddles, split.extrema, split.saddles])
    return cp.select(np.isin(cp.index, nodes))


def _h0_only(prep: Prepared, join_full: MergeTree) -> PersistenceDiagram:
    p = join_full.pairs
    keep = join_full.persistence > 0
    dg0 = p[keep]
    ess0 = np.isinf(join_full.persistence[keep])
    dg0 = np.where(np.isfinite(dg0), dg0, np.inf)
    empty = tuple(np.zeros((0, 2)) for _ in range(prep.ndim - 1))
    return PersistenceDiagram(
        (dg0, *empty),
        (ess0, *(np.zeros(0, dtype=bool) for _ in empty)),
        prep.connectivity,
        complete=False,
        n_nonfinite=prep.n_nonfinite,
    )


def _field_attrs(field: Any) -> dict[str, Any] | None:
    """A copy of a LossField's provenance (``attrs``); None for a plain array."""
    from ..field import LossField

    return copy.deepcopy(dict(field.attrs)) if isinstance(field, LossField) else None


def analyze(
    field: Any,
    min_persistence: float = 0.0,
    relative: bool = False,
    connectivity: str = "freudenthal",
    *,
    axes: Any = None,
    flatness_delta: float | None = None,
    hessian: bool = True,
    max_simplices: int = MAX_SIMPLICES,
) -> TopologySummary:
    """Critical points, join/split trees, persistence diagram and basins of a 1-3D field.

    Parameters
    ----------
    field : LossField or ndarray
    min_persistence : float
        Simplification threshold (absolute, or a fraction of the value range with ``relative``).
    connectivity : {"freudenthal", "cubical"}
    axes : coordinates of a plain array (default: indices).
    flatness_delta : absolute delta for basin flatness (default 5% of the value range).
    hessian : fit Hessians at the critical points.
    max_simplices : above this, a Freudenthal diagram holds only H0 (from the join tree, exact)
        and ``diagram.complete`` is False (a warning says so).

    Returns
    -------
    TopologySummary
        Its ``attrs`` hold ``losstopo_version`` and, for a LossField, a copy of the field's
        ``attrs`` under ``"field"``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 31)
    >>> X, Y = np.meshgrid(x, x, indexing="ij")
    >>> s = analyze(X**2 + Y**2, axes=(x, x))
    >>> s.n_minima, s.morse_sum, len(s.basins)
    (1, 1, 1)
    """
    prep = prepare(field, axes, connectivity=connectivity, func="analyze")
    thr = absolute_threshold(prep, min_persistence, relative)
    if flatness_delta is not None:
        flatness_delta = validate_float(flatness_delta, "flatness_delta", low=0.0)
    cp = critical_points_from_prepared(prep, hessian=hessian)
    join_full = merge_tree_from_prepared(prep, "join", 0.0)
    join = merge_tree_from_prepared(prep, "join", thr, drop_zero=True)
    split = merge_tree_from_prepared(prep, "split", thr, drop_zero=True)
    try:
        dgm = diagram_from_prepared(prep, max_simplices)
    except ValueError as exc:
        warnings.warn(
            f"{exc} The summary's diagram holds H0 only (diagram.complete is False).",
            stacklevel=2,
        )
        dgm = _h0_only(prep, join_full)
    table = basins_from_tree(prep, join, flatness_delta, 0.05)
    fin = prep.key[np.isfinite(prep.key)]
    attrs: dict[str, Any] = {"losstopo_version": __version__}
    provenance = _field_attrs(field)
    if provenance is not None:
        attrs["field"] = provenance

    return TopologySummary(
        connectivity=prep.connectivity,
        shape=prep.shape,
        axis_names=prep.names,
        min_persistence=thr,
        relative=bool(relative),
        n_vertices=prep.size,
        n_nonfinite=prep.n_nonfinite,
        value_min=float(fin.min()),
        value_max=float(fin.max()),
        critical_counts=cp.counts(),
        morse_sum=cp.morse_sum(),
        persistent=_persistent(cp, join, split),
        join_pairs=join.pairs,
        join_pair_index=join.pair_index,
        split_pairs=split.pairs,
        split_pair_index=split.pair_index,
        diagram=dgm,
        basins=table,
        critical_points=cp,
        join_tree=join,
        split_tree=split,
        attrs=attrs,
    )


def format_summary(summary: TopologySummary) -> str:
    """A readable multi-line text summary (what ``losstopo topology`` prints)."""
    s = summary
    lines = [
        f"Topology of a {'x'.join(map(str, s.shape))} field ({', '.join(s.axis_names)}), "
        f"connectivity={s.connectivity}",
        f"  values: {s.value_min:.6g} .. {s.value_max:.6g}; non-finite vertices: {s.n_nonfinite}",
        f"  simplification: min_persistence={s.min_persistence:.6g}"
        + (" (given relative to the value range)" if s.relative else ""),
        "  raw critical points: "
        + ", ".join(f"{s.critical_counts.get(t, 0)} {TYPE_NAMES[t]}" for t in range(4))
        + f" (Morse sum {s.morse_sum})",
        f"  persistent: {s.n_minima} minima, {s.n_saddles} saddles, {s.n_maxima} maxima",
    ]
    counts = ", ".join(f"H{k}: {s.diagram[k].shape[0]}" for k in s.diagram.dims)
    lines.append(f"  persistence diagram: {counts}" + ("" if s.diagram.complete else " (H0 only)"))
    from .smad import smad

    b = s.basins
    lines.append(
        f"  basins: {b.n_minima}; total persistence {b.total_persistence:.6g}; SMAD (Landscaper) "
        f"{smad(s) if s.join_tree is not None else float('nan'):.6g}; mean elder-rule "
        f"persistence {b.smad:.6g}"
    )
    if len(b):
        lines.append(
            "    {:>4} {:>12} {:>12} {:>12} {:>8} {:>9} {:>9}  coords".format(
                "#", "value", "saddle", "persistence", "size", "fraction", "flatness"
            )
        )
        for i, r in enumerate(b.rows[:20]):
            coords = ", ".join(f"{c:.4g}" for c in r.coords)
            lines.append(
                f"    {i:>4} {r.value:>12.6g} {r.saddle_value:>12.6g} {r.persistence:>12.6g} "
                f"{r.size:>8d} {r.fraction:>9.3f} {r.flatness:>9.3f}  ({coords})"
            )
        if len(b) > 20:
            lines.append(f"    ... {len(b) - 20} more basins")
    return "\n".join(lines)

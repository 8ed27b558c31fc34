"""`analyze`: every topological summary of a field in one call, and its JSON form."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import validate_float
from ._order import TYPE_NAMES, Prepared, prepare
from .basins import BasinTable, _basins_from_tree
from .critical import CriticalPoints, _critical_from_prepared
from .merge_tree import MergeTree, _merge_tree_from_prepared, absolute_threshold
from .persistence import MAX_SIMPLICES, PersistenceDiagram, _diagram_from_prepared

SCHEMA = "losstopo-topology/1"


@dataclass(frozen=True, eq=False)
class TopologySummary:
    """Everything :func:`analyze` computes about one field.

    >>> import numpy as np
    >>> x, y = np.meshgrid(np.linspace(-2, 2, 41), np.linspace(-1, 1, 21), indexing="ij")
    >>> topo = analyze((x**2 - 1) ** 2 + y**2, min_persistence=0.1)
    >>> topo.n_minima, topo.n_saddles, topo.morse_sum
    (2, 1, 1)

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
    critical_points, join_tree, split_tree : the full objects; ``None`` in a summary rebuilt by
        :meth:`from_dict` (segmentations are not serialised).
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (non-finite floats as the strings "inf", "-inf", "nan")."""
        thr = self.min_persistence
        dg = self.diagram
        kept = []
        for k in dg.dims:
            pers = dg[k][:, 1] - dg[k][:, 0]
            kept.append((pers >= thr) & (pers > 0) | dg.essential[k])
        small = PersistenceDiagram(
            tuple(dg[k][m] for k, m in zip(dg.dims, kept, strict=True)),
            tuple(dg.essential[k][m] for k, m in zip(dg.dims, kept, strict=True)),
            dg.connectivity,
            dg.complete,
            dg.n_nonfinite,
        )
        return {
            "schema": SCHEMA,
            "connectivity": self.connectivity,
            "shape": list(self.shape),
            "axis_names": list(self.axis_names),
            "min_persistence": self.min_persistence,
            "relative": self.relative,
            "n_vertices": self.n_vertices,
            "n_nonfinite": self.n_nonfinite,
            "value_min": _f(self.value_min),
            "value_max": _f(self.value_max),
            "critical_counts": {str(k): v for k, v in self.critical_counts.items()},
            "morse_sum": self.morse_sum,
            "persistent": self.persistent.to_dict(),
            "join_pairs": [[_f(a), _f(b)] for a, b in self.join_pairs],
            "join_pair_index": self.join_pair_index.tolist(),
            "split_pairs": [[_f(a), _f(b)] for a, b in self.split_pairs],
            "split_pair_index": self.split_pair_index.tolist(),
            "diagram": small.to_dict(),
            "diagram_counts": {str(k): int(dg[k].shape[0]) for k in dg.dims},
            "basins": self.basins.to_dict(),
            "attrs": {str(k): v for k, v in self.attrs.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TopologySummary:
        """Rebuild a summary written by :meth:`to_dict` (full trees and raw points are None)."""

        def pairs(x: Any) -> np.ndarray:
            return np.array([[float(a), float(b)] for a, b in x], dtype=np.float64).reshape(-1, 2)

        return cls(
            connectivity=str(d["connectivity"]),
            shape=tuple(int(s) for s in d["shape"]),
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
            join_pairs=pairs(d["join_pairs"]),
            join_pair_index=np.asarray(d["join_pair_index"], dtype=np.int64).reshape(-1, 2),
            split_pairs=pairs(d["split_pairs"]),
            split_pair_index=np.asarray(d["split_pair_index"], dtype=np.int64).reshape(-1, 2),
            diagram=PersistenceDiagram.from_dict(d["diagram"]),
            basins=BasinTable.from_dict(d["basins"]),
            attrs=dict(d.get("attrs", {})),
        )

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


def _f(x: float) -> float | str:
    return float(x) if np.isfinite(x) else str(float(x))


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
    cp = _critical_from_prepared(prep, hessian=hessian)
    join_full = _merge_tree_from_prepared(prep, "join", 0.0)
    join = _merge_tree_from_prepared(prep, "join", thr, drop_zero=True)
    split = _merge_tree_from_prepared(prep, "split", thr, drop_zero=True)
    try:
        dgm = _diagram_from_prepared(prep, max_simplices)
    except ValueError as exc:
        warnings.warn(
            f"{exc} The summary's diagram holds H0 only (diagram.complete is False).",
            stacklevel=2,
        )
        dgm = _h0_only(prep, join_full)
    table = _basins_from_tree(prep, join, flatness_delta, 0.05)
    fin = prep.key[np.isfinite(prep.key)]
    from .. import __version__

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
        attrs={"losstopo_version": __version__},
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
    b = s.basins
    lines.append(
        f"  basins: {b.n_minima}; total persistence {b.total_persistence:.6g}; SMAD {b.smad:.6g}"
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

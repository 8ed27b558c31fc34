"""Basins of the persistent minima of a field: depth, size, flatness and curvature.

A basin is the region of one branch of the simplified join tree (``branch_segmentation``): the
vertices that reach their sublevel-set component through that minimum's branch. Basins partition
the domain; the basin of the global minimum holds everything above the last merge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ..errors import validate_float
from ..jsonable import to_jsonable
from ._codec import array, same
from ._order import Prepared, prepare
from .hessian_fit import classify_hessians, fit_hessian
from .merge_tree import MergeTree, absolute_threshold, merge_tree_from_prepared


@dataclass(frozen=True)
class Basin:
    """One persistent minimum and its basin.

    ``saddle_value`` is where the basin merges into an older one (``inf`` for the global
    minimum), ``persistence`` = saddle_value - value, ``size`` the number of vertices, ``volume``
    its length/area/volume in axis units (dual cells), ``fraction`` = volume / domain volume,
    ``flatness`` the fraction of the basin's volume within ``flatness_delta`` of the minimum
    (``flat_size`` counts those vertices), ``hessian_eigenvalues`` the fitted Hessian's eigenvalues
    at the minimum and ``hessian_mean`` their mean (trace / d).
    """

    index: int
    coords: tuple[float, ...]
    value: float
    saddle_value: float
    saddle_index: int
    persistence: float
    size: int
    volume: float
    fraction: float
    flat_size: int
    flatness: float
    hessian_eigenvalues: tuple[float, ...]
    hessian_mean: float


@dataclass(frozen=True, eq=False)
class BasinTable:
    """Basins of the persistent minima (rows sorted by value) with field-level totals.

    Attributes
    ----------
    rows : tuple of Basin
    n_minima : number of persistent minima (``len(table)``).
    total_persistence : sum of the finite persistences.
    smad : mean elder-rule persistence: mean of ``saddle_value - value`` over the finite rows
        (0 when there is a single basin). This is losstopo's own measure, not Landscaper's SMAD
        (:func:`losstopo.topology.smad`), which pairs every minimum, the global one included,
        with the next branching node above it; :func:`losstopo.topology.mean_elder_persistence`
        gives this value under its own name.
    min_persistence : the absolute threshold used.
    flatness_delta : the absolute delta used for flatness.
    connectivity : "freudenthal" or "cubical".
    """

    rows: tuple[Basin, ...]
    total_persistence: float
    smad: float
    min_persistence: float
    flatness_delta: float
    connectivity: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __getitem__(self, i: int) -> Basin:
        return self.rows[i]

    @property
    def n_minima(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> np.ndarray:
        """One attribute of every row as an array, e.g. ``table.column("persistence")``."""
        return np.array([getattr(r, name) for r in self.rows])

    def as_tree(self) -> dict[str, Any]:
        """Every field as a nested dict: one array per :class:`Basin` attribute, the totals."""
        ndim = len(self.rows[0].coords) if self.rows else 0
        columns: dict[str, np.ndarray] = {}
        for name, dtype in _COLUMNS.items():
            col = np.array([getattr(r, name) for r in self.rows], dtype=dtype)
            columns[name] = col.reshape(-1, ndim) if name in _VECTORS else col
        return {
            "columns": columns,
            "ndim": ndim,
            "total_persistence": float(self.total_persistence),
            "smad": float(self.smad),
            "min_persistence": float(self.min_persistence),
            "flatness_delta": float(self.flatness_delta),
            "connectivity": self.connectivity,
            "attrs": self.attrs,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (non-finite floats as "inf"/"nan")."""
        return dict(to_jsonable(self.as_tree()))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BasinTable:
        """Rebuild from :meth:`to_dict` or :meth:`as_tree` output (or the older row layout)."""
        if "columns" in d:
            ndim = int(d["ndim"])
            cols = {
                name: array(d["columns"][name], dtype, (ndim,) if name in _VECTORS else ())
                for name, dtype in _COLUMNS.items()
            }
            n = cols["index"].shape[0]
            rows = tuple(Basin(**{k: _scalar(v[i]) for k, v in cols.items()}) for i in range(n))
        else:  # rows of dicts, as written by losstopo 0.1
            rows = tuple(
                Basin(**{k: _scalar(np.asarray(r[k], dtype=_COLUMNS[k])) for k in _COLUMNS})
                for r in d["rows"]
            )
        return cls(
            rows,
            float(d["total_persistence"]),
            float(d["smad"]),
            float(d["min_persistence"]),
            float(d["flatness_delta"]),
            str(d["connectivity"]),
            dict(d.get("attrs", {})),
        )

    def equals(self, other: Any) -> bool:
        """Whether ``other`` is a BasinTable with the same rows and totals."""
        return isinstance(other, BasinTable) and same(self.as_tree(), other.as_tree())

    def __repr__(self) -> str:
        return (
            f"BasinTable({self.n_minima} basins, total_persistence={self.total_persistence:.4g}, "
            f"smad={self.smad:.4g}, connectivity={self.connectivity!r})"
        )


#: dtype of each Basin attribute as a column (``int`` attributes int64, the others float64).
_COLUMNS: dict[str, Any] = {
    f.name: np.int64 if f.type == "int" else np.float64 for f in fields(Basin)
}
_VECTORS = ("coords", "hessian_eigenvalues")


def _scalar(v: np.ndarray) -> Any:
    """A column entry as the Python type a :class:`Basin` holds (tuples for vectors)."""
    if v.ndim:
        return tuple(float(x) for x in v)
    return int(v) if v.dtype.kind == "i" else float(v)


def basins_from_tree(
    prep: Prepared, tree: MergeTree, flatness_delta: float | None, relative_delta: float
) -> BasinTable:
    """The basins of the branches of a (simplified) join tree of a prepared field."""
    key = prep.key
    fin = key[np.isfinite(key)]
    vrange = float(fin.max() - fin.min())
    delta = relative_delta * vrange if flatness_delta is None else float(flatness_delta)
    measure = prep.cell_measure().ravel()
    total_measure = float(measure.sum())
    seg = tree.branch_segmentation.ravel()
    nb = tree.pairs.shape[0]
    size = np.bincount(seg, minlength=nb)
    vol = np.bincount(seg, weights=measure, minlength=nb)
    mins = tree.pair_index[:, 0]
    within = key <= key[mins][seg] + delta
    flat_size = np.bincount(seg[within], minlength=nb)
    flat_vol = np.bincount(seg[within], weights=measure[within], minlength=nb)
    H = fit_hessian(prep.values, prep.axes, mins)
    eig, _, _ = classify_hessians(H)
    coords = prep.coords_of(mins)
    rows = []
    for i in range(nb):
        sad = tree.pair_index[i, 1]
        sval = float(key[sad]) if sad >= 0 else float("inf")
        rows.append(
            Basin(
                index=int(mins[i]),
                coords=tuple(float(c) for c in coords[i]),
                value=float(key[mins[i]]),
                saddle_value=sval,
                saddle_index=int(sad),
                persistence=float(tree.persistence[i]),
                size=int(size[i]),
                volume=float(vol[i]),
                fraction=float(vol[i] / total_measure),
                flat_size=int(flat_size[i]),
                flatness=float(flat_vol[i] / vol[i]) if vol[i] > 0 else 0.0,
                hessian_eigenvalues=tuple(float(x) for x in eig[i]),
                hessian_mean=float(np.mean(eig[i])),
            )
        )
    rows.sort(key=lambda r: (r.value, r.index))
    pers = np.array([r.persistence for r in rows])
    finite = pers[np.isfinite(pers)]
    return BasinTable(
        rows=tuple(rows),
        total_persistence=float(finite.sum()),
        smad=float(finite.mean()) if finite.size else 0.0,
        min_persistence=tree.min_persistence,
        flatness_delta=delta,
        connectivity=prep.connectivity,
    )


def basins(
    field: Any,
    min_persistence: float = 0.0,
    *,
    relative: bool = False,
    axes: Any = None,
    connectivity: str = "freudenthal",
    flatness_delta: float | None = None,
    relative_flatness_delta: float = 0.05,
) -> BasinTable:
    """One row per minimum whose persistence is positive and at least ``min_persistence``.

    Parameters
    ----------
    field : LossField or ndarray (1-3D)
    min_persistence : float
        Absolute threshold, or a fraction of the finite value range with ``relative=True``.
    axes, connectivity : see :func:`critical_points`.
    flatness_delta : float, optional
        Absolute delta for flatness; default ``relative_flatness_delta`` (5%) of the value range.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-2, 2, 81)
    >>> f = (x**2 - 1) ** 2 + 0.1 * x          # double well, left minimum deeper
    >>> table = basins(f, min_persistence=0.1, axes=[x])
    >>> len(table), round(table[0].coords[0], 1)
    (2, -1.0)
    """
    prep = prepare(field, axes, connectivity=connectivity, func="basins")
    thr = absolute_threshold(prep, min_persistence, relative)
    if flatness_delta is not None:
        flatness_delta = validate_float(flatness_delta, "flatness_delta", low=0.0)
    relative_flatness_delta = validate_float(
        relative_flatness_delta, "relative_flatness_delta", low=0.0
    )
    tree = merge_tree_from_prepared(prep, "join", thr, drop_zero=True)
    return basins_from_tree(prep, tree, flatness_delta, relative_flatness_delta)

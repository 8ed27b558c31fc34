"""Basins of the persistent minima of a field: depth, size, flatness and curvature.

A basin is the region of one branch of the simplified join tree (``branch_segmentation``): the
vertices that reach their sublevel-set component through that minimum's branch. Basins partition
the domain; the basin of the global minimum holds everything above the last merge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import validate_float
from ._order import Prepared, prepare
from .hessian_fit import classify_hessians, fit_hessian
from .merge_tree import MergeTree, _merge_tree_from_prepared, absolute_threshold


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
    smad : saddle-minimum average distance: mean of ``saddle_value - value`` over the finite
        rows (0 when there is a single basin).
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

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for r in self.rows:
            d = asdict(r)
            rows.append({k: _j(v) for k, v in d.items()})
        return {
            "rows": rows,
            "n_minima": self.n_minima,
            "total_persistence": _j(self.total_persistence),
            "smad": _j(self.smad),
            "min_persistence": self.min_persistence,
            "flatness_delta": self.flatness_delta,
            "connectivity": self.connectivity,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BasinTable:
        rows = []
        for r in d["rows"]:
            kw = dict(r)
            for k in ("coords", "hessian_eigenvalues"):
                kw[k] = tuple(float(x) for x in kw[k])
            for k in (
                "value",
                "saddle_value",
                "persistence",
                "volume",
                "fraction",
                "flatness",
                "hessian_mean",
            ):
                kw[k] = float(kw[k])
            rows.append(Basin(**kw))
        return cls(
            tuple(rows),
            float(d["total_persistence"]),
            float(d["smad"]),
            float(d["min_persistence"]),
            float(d["flatness_delta"]),
            str(d["connectivity"]),
        )

    def __repr__(self) -> str:
        return (
            f"BasinTable({self.n_minima} basins, total_persistence={self.total_persistence:.4g}, "
            f"smad={self.smad:.4g}, connectivity={self.connectivity!r})"
        )


def _j(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_j(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    return v


def _basins_from_tree(
    prep: Prepared, tree: MergeTree, flatness_delta: float | None, relative_delta: float
) -> BasinTable:
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
    tree = _merge_tree_from_prepared(prep, "join", thr, drop_zero=True)
    return _basins_from_tree(prep, tree, flatness_delta, relative_flatness_delta)

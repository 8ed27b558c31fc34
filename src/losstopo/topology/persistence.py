"""Persistence diagrams of sublevel-set filtrations of grid fields, and distances between them.

* ``connectivity="cubical"``: gudhi's ``CubicalComplex(vertices=f)`` (cells take the max of their
  vertices).
* ``connectivity="freudenthal"``: the lower-star filtration of the Freudenthal triangulation of the
  grid, through gudhi's ``SimplexTree`` (every simplex gets the max of its vertices' values). This
  costs about 6 (2D) or 26 (3D) simplices per vertex, so it is refused above ``max_simplices``.

Pairs of zero persistence are left out (gudhi's convention). Non-finite vertices (NaN, +inf) are
placed above every finite value; a class that dies in that region gets death ``inf`` but is not
essential (``essential[k]`` tells them apart), and classes born there are dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import InvalidParameterError, InvalidTypeError, validate_float
from ..jsonable import to_jsonable
from ._codec import array, same
from ._order import Prepared, prepare

MAX_SIMPLICES = 6_000_000


@dataclass(frozen=True, eq=False)
class PersistenceDiagram:
    """One (n, 2) array of (birth, death) per homology dimension 0..d-1.

    ``dgm[k]`` is the diagram of dimension ``k`` (an empty (0, 2) array beyond the computed ones);
    essential classes have death ``inf``; ``essential[k]`` flags them.

    Examples
    --------
    >>> import numpy as np
    >>> dgm = persistence_diagram(np.array([0.0, 2.0, 1.0, 3.0]))
    >>> dgm[0]
    array([[ 1.,  2.],
           [ 0., inf]])
    """

    diagrams: tuple[np.ndarray, ...]
    essential: tuple[np.ndarray, ...]
    connectivity: str
    complete: bool = True
    n_nonfinite: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, k: int) -> np.ndarray:
        if not isinstance(k, (int, np.integer)) or k < 0:
            raise InvalidParameterError(
                f"Index a PersistenceDiagram by a homology dimension >= 0; got {k!r}."
            )
        if k < len(self.diagrams):
            return self.diagrams[k]
        return np.zeros((0, 2))

    def __len__(self) -> int:
        return len(self.diagrams)

    @property
    def dims(self) -> tuple[int, ...]:
        return tuple(range(len(self.diagrams)))

    def betti_counts(self) -> dict[int, int]:
        """Number of points per dimension."""
        return {k: int(d.shape[0]) for k, d in enumerate(self.diagrams)}

    def pairs(self, dim: int) -> np.ndarray:
        """The (n, 2) (birth, death) array of dimension ``dim`` (same as ``dgm[dim]``)."""
        return self[dim]

    def persistence(self, dim: int) -> np.ndarray:
        """``death - birth`` of every pair of dimension ``dim`` (``inf`` for infinite deaths)."""
        d = self[dim]
        return d[:, 1] - d[:, 0]

    def items(self) -> list[tuple[int, np.ndarray]]:
        """``[(dimension, (n, 2) array), ...]`` for every computed dimension.

        >>> import numpy as np
        >>> [(k, d.shape) for k, d in persistence_diagram(np.eye(3)).items()]
        [(0, (2, 2)), (1, (0, 2))]
        """
        return list(enumerate(self.diagrams))

    def as_tree(self) -> dict[str, Any]:
        """Every field as a nested dict of scalars and arrays (what JSON and HDF5 store)."""
        return {
            "diagrams": list(self.diagrams),
            "essential": list(self.essential),
            "connectivity": self.connectivity,
            "complete": bool(self.complete),
            "n_nonfinite": int(self.n_nonfinite),
            "attrs": self.attrs,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (non-finite floats as "inf"/"nan")."""
        return dict(to_jsonable(self.as_tree()))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PersistenceDiagram:
        """Rebuild from :meth:`to_dict` or :meth:`as_tree` output."""
        return cls(
            tuple(array(k, np.float64, (2,)) for k in d["diagrams"]),
            tuple(array(e, bool) for e in d["essential"]),
            str(d["connectivity"]),
            bool(d.get("complete", True)),
            int(d.get("n_nonfinite", 0)),
            dict(d.get("attrs", {})),
        )

    def equals(self, other: Any) -> bool:
        """Whether ``other`` is a PersistenceDiagram with the same fields."""
        return isinstance(other, PersistenceDiagram) and same(self.as_tree(), other.as_tree())

    def __repr__(self) -> str:
        counts = ", ".join(f"H{k}: {v}" for k, v in self.betti_counts().items())
        return f"PersistenceDiagram({counts}; connectivity={self.connectivity!r})"


def _sentinel_values(prep: Prepared) -> tuple[np.ndarray, float]:
    key = prep.key.reshape(prep.shape)
    fin = np.isfinite(key)
    lo, hi = float(key[fin].min()), float(key[fin].max())
    sentinel = hi + (hi - lo) + 1.0
    return np.where(fin, key, sentinel), sentinel


def _finish(
    raw: list[np.ndarray], sentinel: float, ndim: int
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    dgms, ess = [], []
    for k in range(ndim):
        a = raw[k] if k < len(raw) else np.zeros((0, 2))
        a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
        a = a[a[:, 0] < sentinel]
        essential = np.isinf(a[:, 1])
        a = a.copy()
        a[a[:, 1] >= sentinel, 1] = np.inf
        srt = np.lexsort((a[:, 1], a[:, 0], essential))
        dgms.append(a[srt])
        ess.append(essential[srt])
    return tuple(dgms), tuple(ess)


def freudenthal_simplices(shape: Sequence[int]) -> list[np.ndarray]:
    """All simplices of the Freudenthal triangulation of a grid, by dimension.

    Element ``k`` is a (m_k, k+1) array of flat C-order vertex indices. A simplex is a chain
    ``v < v + a1 < ... < v + ak`` of grid vertices with nested non-zero 0/1 offsets.
    """
    shape = tuple(int(s) for s in shape)
    d = len(shape)
    n = int(np.prod(shape))
    flat = np.arange(n).reshape(shape)
    masks = [m for m in range(1, 1 << d)]
    out: list[np.ndarray] = [np.arange(n, dtype=np.int64)[:, None]]
    for k in range(1, d + 1):
        chunks = []
        for chain in itertools.combinations(masks, k):
            if not all((chain[i] & chain[i + 1]) == chain[i] for i in range(k - 1)):
                continue
            top = chain[-1]
            sl = tuple(slice(0, s - ((top >> (d - 1 - a)) & 1)) for a, s in enumerate(shape))
            base = flat[sl].ravel()
            cols = [base]
            for m in chain:
                off = sum(
                    ((m >> (d - 1 - a)) & 1) * (n // int(np.prod(shape[: a + 1]))) for a in range(d)
                )
                cols.append(base + off)
            chunks.append(np.stack(cols, axis=1))
        out.append(np.concatenate(chunks).astype(np.int64))
    return out


def _freudenthal_dgm(prep: Prepared, max_simplices: int) -> list[np.ndarray]:
    import gudhi

    d = prep.ndim
    per_vertex = {1: 2, 2: 6, 3: 26}.get(d, 3**d)
    if prep.size * per_vertex > max_simplices:
        raise InvalidParameterError(
            f"persistence_diagram(connectivity='freudenthal') would build about "
            f"{prep.size * per_vertex:,} simplices for a field of shape {prep.shape}, above "
            f"max_simplices={max_simplices:,}. Use connectivity='cubical' (fast), a coarser "
            "grid, or raise max_simplices if you have the memory."
        )
    vals, sentinel = _sentinel_values(prep)
    flat = vals.ravel()
    st = gudhi.SimplexTree()
    for simp in freudenthal_simplices(prep.shape):
        st.insert_batch(simp.T.copy(), flat[simp].max(axis=1))
    st.compute_persistence(persistence_dim_max=True)
    raw = [st.persistence_intervals_in_dimension(k) for k in range(d)]
    return raw


def _cubical_dgm(prep: Prepared) -> list[np.ndarray]:
    import gudhi

    vals, sentinel = _sentinel_values(prep)
    cc = gudhi.CubicalComplex(vertices=vals)
    cc.compute_persistence()
    return [cc.persistence_intervals_in_dimension(k) for k in range(prep.ndim)]


def diagram_from_prepared(prep: Prepared, max_simplices: int = MAX_SIMPLICES) -> PersistenceDiagram:
    """The persistence diagram of a prepared field (see :func:`persistence_diagram`)."""
    _, sentinel = _sentinel_values(prep)
    if prep.connectivity == "cubical":
        raw = _cubical_dgm(prep)
    else:
        raw = _freudenthal_dgm(prep, max_simplices)
    dgms, ess = _finish(raw, sentinel, prep.ndim)
    return PersistenceDiagram(dgms, ess, prep.connectivity, True, prep.n_nonfinite)


def persistence_diagram(
    field: Any,
    *,
    axes: Any = None,
    connectivity: str = "freudenthal",
    max_simplices: int = MAX_SIMPLICES,
) -> PersistenceDiagram:
    """Persistence diagrams (dimensions 0..d-1) of the sublevel sets of a 1-3D field.

    Parameters
    ----------
    field : LossField or ndarray
    axes : optional coordinates (validated; diagrams are in value units).
    connectivity : {"freudenthal", "cubical"}
    max_simplices : int
        Refuse a Freudenthal complex larger than this (memory guard).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-2, 2, 41)
    >>> dgm = persistence_diagram((x**2 - 1) ** 2)  # a double well: two minima, one saddle
    >>> dgm[0]
    array([[ 0.,  1.],
           [ 0., inf]])
    """
    prep = prepare(field, axes, connectivity=connectivity, func="persistence_diagram")
    return diagram_from_prepared(prep, max_simplices)


# ------------------------------------------------------------------------------- distances
def _as_diagrams(a: Any, name: str, dim: int | None) -> list[np.ndarray]:
    if isinstance(a, PersistenceDiagram):
        if dim is not None:
            return [a[dim]]
        return list(a.diagrams)
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(
            f"'{name}' must be a PersistenceDiagram or an (n, 2) array of (birth, death); "
            f"got {type(a).__name__}."
        ) from exc
    if arr.size == 0:
        arr = arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidParameterError(
            f"'{name}' must be an (n, 2) array of (birth, death) pairs; got shape {arr.shape}."
        )
    if np.any(np.isnan(arr)):
        raise InvalidParameterError(f"'{name}' contains NaN; diagrams must hold numbers or inf.")
    return [arr]


def _pair_lists(a: Any, b: Any, dim: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    da, db = _as_diagrams(a, "a", dim), _as_diagrams(b, "b", dim)
    m = max(len(da), len(db))
    da += [np.zeros((0, 2))] * (m - len(da))
    db += [np.zeros((0, 2))] * (m - len(db))
    return list(zip(da, db, strict=True))


def _split_essential(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fin = np.isfinite(x).all(axis=1)
    up = ~fin & np.isposinf(x[:, 1]) & np.isfinite(x[:, 0])
    down = ~fin & np.isneginf(x[:, 1]) & np.isfinite(x[:, 0])
    if np.any(~fin & ~up & ~down):
        raise InvalidParameterError("Diagram points need a finite birth; got an infinite one.")
    return x[fin], np.sort(x[up, 0]), np.sort(x[down, 0])


def wasserstein_distance(a: Any, b: Any, order: float = 1.0, *, dim: int | None = None) -> float:
    """p-Wasserstein distance between diagrams (L-infinity ground metric, as gudhi).

    Points may be matched to the diagonal (cost: half their persistence). Essential classes
    (death ``inf``) are matched among themselves by birth; a different number of them gives
    ``inf``. For two :class:`PersistenceDiagram`, the dimensions are combined as
    ``(sum_k W_k^p)^(1/p)`` unless ``dim`` picks one. Exact (Hungarian algorithm).

    Examples
    --------
    >>> wasserstein_distance([[0.0, 2.0]], [[0.0, 3.0]])
    1.0
    >>> wasserstein_distance([[0.0, 2.0]], [])
    1.0
    """
    p = validate_float(order, "order", low=1.0)
    total = 0.0
    for x, y in _pair_lists(a, b, dim):
        fx, ux, dx = _split_essential(x)
        fy, uy, dy = _split_essential(y)
        if ux.size != uy.size or dx.size != dy.size:
            return float("inf")
        total += float(np.sum(np.abs(ux - uy) ** p) + np.sum(np.abs(dx - dy) ** p))
        total += _finite_wasserstein_p(fx, fy, p)
    return float(total ** (1.0 / p))


def _finite_wasserstein_p(x: np.ndarray, y: np.ndarray, p: float) -> float:
    nx, ny = x.shape[0], y.shape[0]
    if nx == 0 and ny == 0:
        return 0.0
    dxd = np.abs(x[:, 1] - x[:, 0]) / 2
    dyd = np.abs(y[:, 1] - y[:, 0]) / 2
    size = nx + ny
    cost = np.zeros((size, size))
    if nx and ny:
        cost[:nx, :ny] = np.max(np.abs(x[:, None, :] - y[None, :, :]), axis=2) ** p
    big = np.inf
    cost[:nx, ny:] = big
    cost[nx:, :ny] = big
    if nx:
        cost[np.arange(nx), ny + np.arange(nx)] = dxd**p
    if ny:
        cost[nx + np.arange(ny), np.arange(ny)] = dyd**p
    # diagonal-to-diagonal block stays 0
    finite_cost = np.where(np.isinf(cost), 1e300, cost)
    r, c = linear_sum_assignment(finite_cost)
    return float(cost[r, c].sum())


def bottleneck_distance(a: Any, b: Any, *, dim: int | None = None, e: float = 0.0) -> float:
    """Bottleneck distance between diagrams (gudhi), the max over dimensions for whole diagrams.

    Examples
    --------
    >>> bottleneck_distance([[0.0, 2.0]], [[0.0, 3.0]])
    1.0
    """
    import gudhi

    out = 0.0
    for x, y in _pair_lists(a, b, dim):
        out = max(out, float(gudhi.bottleneck_distance(x, y, e)))
    return out

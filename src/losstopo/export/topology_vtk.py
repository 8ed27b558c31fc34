"""VTK datasets of topology results: critical points, merge-tree arcs, persistence diagrams.

Array names follow TTK (``CriticalType``, ``Persistence``, ``PairIdentifier``, ``Birth``,
``Death``, ``PairType``), so ParaView/TTK users can reuse their filters. The builders named
``*_polydata`` of topology results take the classes of :mod:`losstopo.topology`; the others take
arrays.

Examples
--------
>>> import numpy as np
>>> steepest_descent(np.array([3.0, 2.0, 1.0, 0.0, 5.0]), 0).tolist()
[0, 1, 2, 3]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, InvalidTypeError
from ..field import LossField
from ..hessian.checks import CriticalCheck
from ..topology import MergeTree, TopologySummary
from ..verify import TopologyCheck
from ._common import HeightMap, pad3, pyvista

__all__ = [
    "critical_points_polydata",
    "diagram_polydata",
    "freudenthal_offsets",
    "merge_tree_arcs",
    "merge_tree_polydata",
    "steepest_descent",
    "summary_critical_polydata",
]


def critical_points_polydata(
    points: np.ndarray,
    types: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    persistence: np.ndarray | None = None,
    pair_ids: np.ndarray | None = None,
    multiplicity: np.ndarray | None = None,
    index: np.ndarray | None = None,
    boundary: np.ndarray | None = None,
    value_name: str = "loss",
) -> Any:
    """Critical points as vertices with TTK's array names.

    Point arrays: ``CriticalType`` (0 min, 1 1-saddle, 2 2-saddle, 3 max), ``Persistence``
    (NaN where the point is not in a pair), ``PairIdentifier`` (-1 where unpaired), the value
    under ``value_name``, and when given ``Multiplicity``, ``VertexIdentifier`` (flat C-order
    grid index) and ``IsOnBoundary``. ``points`` is ``(n, 1..3)``, padded with zeros.

    >>> import numpy as np
    >>> pd = critical_points_polydata(np.zeros((2, 2)), [0, 3], [0.0, 1.0])
    >>> pd.n_points, sorted(pd.point_data.keys())
    (2, ['CriticalType', 'PairIdentifier', 'Persistence', 'loss'])
    """
    pv = pyvista()
    p = pad3(points) if len(points) else np.zeros((0, 3))
    n = p.shape[0]
    mesh = pv.PolyData(p)
    if n:
        mesh.verts = np.column_stack([np.ones(n, dtype=np.int64), np.arange(n)]).ravel()

    def col(arr: Any, dtype: Any, fill: Any) -> np.ndarray:
        if arr is None:
            return np.full(n, fill, dtype=dtype)
        out = np.asarray(arr).astype(dtype).ravel()
        if out.size != n:
            raise InvalidParameterError(
                f"critical_points_polydata got {out.size} entries for {n} points; give one each."
            )
        return out

    mesh.point_data["CriticalType"] = col(types, np.int32, 0)
    mesh.point_data["Persistence"] = col(persistence, np.float64, np.nan)
    mesh.point_data["PairIdentifier"] = col(pair_ids, np.int32, -1)
    mesh.point_data[value_name] = col(values, np.float64, np.nan)
    if multiplicity is not None:
        mesh.point_data["Multiplicity"] = col(multiplicity, np.int32, 1)
    if index is not None:
        mesh.point_data["VertexIdentifier"] = col(index, np.int64, -1)
    if boundary is not None:
        mesh.point_data["IsOnBoundary"] = col(boundary, np.uint8, 0)
    return mesh


def summary_critical_polydata(
    field: LossField, summary: TopologySummary, height: HeightMap | None = None
) -> Any:
    """The persistent critical points of ``summary`` with their persistence and pair ids.

    The essential pairs' infinite persistence is written as the field's finite value range
    (TTK pairs the global minimum with the global maximum). For 2D fields, ``z`` is the
    ``height`` of each point's value.
    """
    if not isinstance(summary, TopologySummary):
        raise InvalidTypeError(
            "summary_critical_polydata needs a losstopo TopologySummary; got "
            f"{type(summary).__name__}."
        )
    cp = summary.persistent
    pers = summary.critical_persistence()
    if np.isinf(pers).any():
        finite = field.values[np.isfinite(field.values)]
        span = float(finite.max() - finite.min()) if finite.size else np.nan
        pers = np.where(np.isinf(pers), span, pers)
    p = pad3(cp.coords) if len(cp) else np.zeros((0, 3))
    if height is not None and field.grid.ndim == 2:
        p[:, 2] = height(cp.value)
    mesh = critical_points_polydata(
        p, cp.type, cp.value, persistence=pers, pair_ids=summary.critical_pair_ids(),
        multiplicity=cp.multiplicity, index=cp.index, boundary=cp.boundary,
    )  # fmt: skip
    check = CriticalCheck.from_summary(summary)
    if check is not None:
        add_full_space_arrays(mesh, cp.index, cp.type, check)
    verified = TopologyCheck.from_summary(summary)
    if verified is not None:
        add_verify_arrays(mesh, cp.index, cp.type, verified)
    return mesh


def add_verify_arrays(mesh: Any, index: Any, types: Any, check: TopologyCheck) -> None:
    """Point arrays of :func:`losstopo.verify_topology`, by vertex.

    ``BasinArtifact`` on minima (1: an artifact minimum, 0: a basin of the network) and
    ``SeparationStatus`` on merge saddles (0 confirmed, 1 artifact, 2 curve-connected,
    3 overstated; where several basins merge at one vertex, the least confirmed of its merges:
    artifact before curve-connected before overstated before confirmed); -1 on points the check
    did not cover.
    """
    codes = {"confirmed": 0, "artifact": 1, "curve-connected": 2, "overstated": 3}
    severity = {0: 0, 3: 1, 2: 2, 1: 3}
    minima = {int(i): j for j, i in enumerate(check.index)}
    saddles: dict[int, int] = {}
    for i, s in zip(check.saddle_index, check.status, strict=True):  # a multi-saddle: the least
        code, seen = codes[str(s)], saddles.get(int(i), 0)  # confirmed of its merges
        saddles[int(i)] = max(seen, code, key=severity.__getitem__)
    artifact = np.full(len(index), -1, dtype=np.int8)
    status = np.full(len(index), -1, dtype=np.int8)
    for k, (i, t) in enumerate(zip(index, types, strict=True)):
        if int(t) == 0 and int(i) in minima:
            artifact[k] = int(bool(check.is_artifact[minima[int(i)]]))
        elif int(t) == 1 and int(i) in saddles:
            status[k] = saddles[int(i)]
    mesh.point_data["BasinArtifact"] = artifact
    mesh.point_data["SeparationStatus"] = status


def add_full_space_arrays(mesh: Any, index: Any, types: Any, check: CriticalCheck) -> None:
    """Point arrays of a full-space check (:func:`losstopo.check_critical_points`), by vertex.

    ``FullSpaceLambdaMin`` / ``FullSpaceLambdaMax`` (extreme full-space Hessian eigenvalues),
    ``FullSpaceGradNorm`` and ``FullSpaceMinimum`` (1: a picture minimum that is a full-space
    minimum, 0: a picture minimum that is a full-space saddle, -1: not a minimum); NaN / -1 for
    points the check did not cover.
    """
    rows = {
        (int(i), int(t)): j for j, (i, t) in enumerate(zip(check.index, check.type, strict=True))
    }
    n = len(index)
    lmin, lmax, gnorm = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    is_min = np.full(n, -1, dtype=np.int8)
    for k, (i, t) in enumerate(zip(index, types, strict=True)):
        j = rows.get((int(i), int(t)))
        if j is None:
            continue
        lmin[k], lmax[k], gnorm[k] = check.lambda_min[j], check.lambda_max[j], check.grad_norm[j]
        if int(t) == 0:
            is_min[k] = int(bool(check.is_full_space_minimum[j]))
    mesh.point_data["FullSpaceLambdaMin"] = lmin
    mesh.point_data["FullSpaceLambdaMax"] = lmax
    mesh.point_data["FullSpaceGradNorm"] = gnorm
    mesh.point_data["FullSpaceMinimum"] = is_min


def freudenthal_offsets(ndim: int) -> np.ndarray:
    """Neighbour offsets of the Freudenthal triangulation: nonzero {0,1}^d vectors and negatives."""
    pos = [np.array(v) for v in itertools.product((0, 1), repeat=ndim) if any(v)]
    return np.array(pos + [-v for v in pos], dtype=np.int64)


def steepest_descent(
    values: np.ndarray,
    start: int,
    axes: Sequence[np.ndarray] | None = None,
    *,
    offsets: np.ndarray | None = None,
) -> np.ndarray:
    """Flat indices of the steepest-descent path on the grid from ``start`` to a local minimum.

    Each step goes to the neighbour (Freudenthal by default) with the largest drop per unit of
    distance, among the neighbours lower in losstopo's vertex order (value, then flat index;
    NaN/inf above everything), so the walk always ends.

    >>> import numpy as np
    >>> steepest_descent(np.array([3.0, 2.0, 1.0, 0.0, 5.0]), 0).tolist()
    [0, 1, 2, 3]
    """
    v = np.asarray(values, dtype=np.float64)
    shape = v.shape
    key = np.where(np.isfinite(v), v, np.inf).ravel()
    offs = freudenthal_offsets(v.ndim) if offsets is None else np.asarray(offsets)
    ax = [np.arange(s, dtype=np.float64) for s in shape] if axes is None else list(axes)
    path = [int(start)]
    cur = int(start)
    for _ in range(v.size):
        idx = np.array(np.unravel_index(cur, shape))
        nb = idx + offs
        ok = np.all((nb >= 0) & (nb < np.array(shape)), axis=1)
        nb = nb[ok]
        flat = np.ravel_multi_index(tuple(nb.T), shape)
        lower = (key[flat] < key[cur]) | ((key[flat] == key[cur]) & (flat < cur))
        if not lower.any():
            break
        nb, flat = nb[lower], flat[lower]
        dist = np.sqrt(sum((ax[k][nb[:, k]] - ax[k][idx[k]]) ** 2 for k in range(len(shape))))
        drop = key[cur] - key[flat]
        drop = np.where(np.isfinite(drop), drop, np.finfo(float).max)
        cur = int(flat[np.lexsort((key[flat], -drop / dist))[0]])
        path.append(cur)
    return np.array(path, dtype=np.int64)


def merge_tree_arcs(
    values: np.ndarray,
    pair_index: np.ndarray,
    axes: Sequence[np.ndarray],
    pairs: np.ndarray | None = None,
) -> list[tuple[int, np.ndarray]]:
    """``[(pair id, flat path), ...]``: for each finite (minimum, saddle) pair, a grid path
    from the saddle down to its minimum.

    The path starts at the saddle with the lower neighbour whose steepest descent reaches the
    paired minimum (the steepest such one); when no descent reaches it (the minimum's basin
    holds simplified-away minima), the steepest descent is taken and the minimum appended.
    """
    v = np.asarray(values, dtype=np.float64)
    shape = v.shape
    key = np.where(np.isfinite(v), v, np.inf).ravel()
    offs = freudenthal_offsets(v.ndim)
    arcs = []
    pi = np.asarray(pair_index, dtype=np.int64).reshape(-1, 2)
    for row, (m, s) in enumerate(pi):
        if s < 0 or m < 0 or s >= v.size or m >= v.size:
            continue
        if pairs is not None and not np.isfinite(np.asarray(pairs).reshape(-1, 2)[row, 1]):
            continue
        idx = np.array(np.unravel_index(int(s), shape))
        nb = idx + offs
        nb = nb[np.all((nb >= 0) & (nb < np.array(shape)), axis=1)]
        flat = np.ravel_multi_index(tuple(nb.T), shape)
        lower = flat[(key[flat] < key[s]) | ((key[flat] == key[s]) & (flat < s))]
        best = None
        for start in lower[np.argsort(key[lower])]:
            down = steepest_descent(v, int(start), axes, offsets=offs)
            if down[-1] == m:
                best = down
                break
        if best is None:
            first = int(lower[np.argmin(key[lower])]) if lower.size else int(m)
            best = steepest_descent(v, first, axes, offsets=offs)
            if best[-1] != m:
                best = np.append(best, m)
        arcs.append((row, np.concatenate([[int(s)], best])))
    return arcs


def merge_tree_polydata(
    field: LossField, tree: MergeTree | TopologySummary, height: HeightMap | None = None
) -> Any:
    """Merge-tree arcs as polylines in the domain (see :func:`merge_tree_arcs`).

    ``tree`` is a MergeTree or a TopologySummary (its join pairs). Point arrays ``loss`` and
    ``VertexIdentifier``; cell arrays ``PairIdentifier``, ``Persistence``, ``Birth`` (the
    minimum's value) and ``Death`` (the saddle's).
    """
    pv = pyvista()
    if isinstance(tree, TopologySummary):
        pairs, pair_index = tree.join_pairs, tree.join_pair_index
    elif isinstance(tree, MergeTree):
        pairs, pair_index = tree.pairs, tree.pair_index
    else:
        raise InvalidTypeError(
            "merge_tree_polydata needs a losstopo MergeTree or TopologySummary; got "
            f"{type(tree).__name__}."
        )
    axes = list(field.grid.axes.values())
    arcs = merge_tree_arcs(field.values, pair_index, axes, pairs)
    if not arcs:
        return pv.PolyData()
    flat_all = np.concatenate([a for _, a in arcs])
    coords = pad3(field.grid.coords_of(flat_all))
    vals = np.asarray(field.values, dtype=np.float64).ravel()[flat_all]
    if height is not None and field.grid.ndim == 2:
        coords[:, 2] = height(vals)
    lines, off = [], 0
    for _, a in arcs:
        lines.append(np.concatenate([[a.size], off + np.arange(a.size)]))
        off += a.size
    mesh = pv.PolyData(coords, lines=np.concatenate(lines))
    mesh.point_data["loss"] = vals
    mesh.point_data["VertexIdentifier"] = flat_all
    rows = np.array([r for r, _ in arcs])
    mesh.cell_data["PairIdentifier"] = rows.astype(np.int32)
    mesh.cell_data["Birth"] = pairs[rows, 0]
    mesh.cell_data["Death"] = pairs[rows, 1]
    mesh.cell_data["Persistence"] = pairs[rows, 1] - pairs[rows, 0]
    return mesh


def diagram_polydata(
    diagrams: Iterable[tuple[int, np.ndarray]], ndim: int, value_range: tuple[float, float]
) -> Any:
    """Persistence diagrams in TTK's layout (``ttkPersistenceDiagram``, embedded mode).

    Each pair ``(b, d)`` is a line cell between the points ``(b, b, 0)`` and ``(b, d, 0)``.
    Point arrays ``Birth``, ``Death``, ``CriticalType`` (the birth/death critical types of the
    pair); cell arrays ``PairIdentifier``, ``PairType`` (homology dimension), ``Persistence``
    and ``IsFinite``. Essential classes (infinite death) are drawn, as TTK does, dying at the
    field's maximum with ``IsFinite`` 0. A last cell, the diagonal, has ``PairIdentifier`` and
    ``PairType`` -1.
    """
    pv = pyvista()
    lo, hi = value_range
    pts, births, deaths, ctype, lines = [], [], [], [], []
    pid, ptype, pers, fin = [], [], [], []
    n = 0
    for k, dgm in diagrams:
        d = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
        btype = 0 if k == 0 else k
        dtype = 3 if k + 1 >= ndim else k + 1
        for b, dd in d:
            finite = bool(np.isfinite(dd))
            death = dd if finite else hi
            pts += [[b, b, 0.0], [b, death, 0.0]]
            births += [b, b]
            deaths += [death, death]
            ctype += [btype, dtype]
            lines.append([2, 2 * n, 2 * n + 1])
            pid.append(n)
            ptype.append(k)
            pers.append(death - b)
            fin.append(int(finite))
            n += 1
    pts += [[lo, lo, 0.0], [hi, hi, 0.0]]
    births += [lo, hi]
    deaths += [lo, hi]
    ctype += [0, 3]
    lines.append([2, 2 * n, 2 * n + 1])
    pid.append(-1)
    ptype.append(-1)
    pers.append(0.0)
    fin.append(1)
    mesh = pv.PolyData(np.array(pts, dtype=np.float64), lines=np.array(lines).ravel())
    mesh.point_data["Birth"] = np.array(births)
    mesh.point_data["Death"] = np.array(deaths)
    mesh.point_data["CriticalType"] = np.array(ctype, dtype=np.int32)
    mesh.cell_data["PairIdentifier"] = np.array(pid, dtype=np.int32)
    mesh.cell_data["PairType"] = np.array(ptype, dtype=np.int32)
    mesh.cell_data["Persistence"] = np.array(pers)
    mesh.cell_data["IsFinite"] = np.array(fin, dtype=np.uint8)
    return mesh

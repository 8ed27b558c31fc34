"""Join and split trees of grid fields by union-find over the vertex order, in any dimension.

The join tree follows the components of the sublevel sets (minima merge at saddles); the split
tree follows the superlevel sets and is the join tree of the exactly reversed vertex order. Pairs
follow the elder rule: when components meet, the one born latest dies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from ..errors import validate_choice, validate_float
from ..jsonable import to_jsonable
from ._codec import array, grid_array, same
from ._order import Prepared, edge_offsets, grid_strides, prepare


@numba.njit(cache=True, nogil=True)
def _find(parent, x):  # type: ignore[no-untyped-def]
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@numba.njit(cache=True, nogil=True)
def _sweep_kernel(order, shape, offsets):  # type: ignore[no-untyped-def]
    """Union-find over ``order``; returns branch-at-processing and (birth, death) vertex pairs."""
    n = order.size
    d = shape.size
    k = offsets.shape[0]
    strides, flat_off = grid_strides(shape, offsets)
    parent = np.full(n, -1, dtype=np.int64)
    birth_t = np.empty(n, dtype=np.int64)  # for roots: sweep time of the component's minimum
    br = np.empty(n, dtype=np.int64)
    pb = np.empty(n, dtype=np.int64)
    pd = np.empty(n, dtype=np.int64)
    npairs = 0
    roots = np.empty(k, dtype=np.int64)
    coord = np.empty(d, dtype=np.int64)
    for t in range(n):
        v = order[t]
        rem = v
        interior = True
        for a in range(d):
            coord[a] = rem // strides[a]
            rem -= coord[a] * strides[a]
            if coord[a] == 0 or coord[a] == shape[a] - 1:
                interior = False
        nr = 0
        for j in range(k):
            if not interior:
                ok = True
                for a in range(d):
                    c = coord[a] + offsets[j, a]
                    if c < 0 or c >= shape[a]:
                        ok = False
                        break
                if not ok:
                    continue
            u = v + flat_off[j]
            if parent[u] < 0:
                continue
            r = _find(parent, u)
            seen = False
            for i in range(nr):
                if roots[i] == r:
                    seen = True
                    break
            if not seen:
                roots[nr] = r
                nr += 1
        if nr == 0:
            parent[v] = v
            birth_t[v] = t
            br[v] = v
            continue
        best = roots[0]
        for i in range(1, nr):
            if birth_t[roots[i]] < birth_t[best]:
                best = roots[i]
        for i in range(nr):
            r = roots[i]
            if r != best:
                pb[npairs] = order[birth_t[r]]
                pd[npairs] = v
                npairs += 1
                parent[r] = best
        parent[v] = best
        br[v] = order[birth_t[best]]
    return br, pb[:npairs].copy(), pd[:npairs].copy()


@dataclass(frozen=True, eq=False)
class _Raw:
    """The full (unsimplified) sweep, shared by a tree and its simplifications."""

    prep: Prepared
    kind: str
    pos: np.ndarray  # sweep position of every vertex (rank, or reversed rank for split trees)
    br: np.ndarray  # branch (extremum vertex) of each vertex when it was swept
    pb: np.ndarray  # pair birth vertices (extrema), in sweep order of death
    pd: np.ndarray  # pair death vertices (saddles)
    root_extremum: int  # the extremum of the essential class
    root: int  # the last vertex of the sweep


def _sweep(prep: Prepared, kind: str) -> _Raw:
    order = prep.order if kind == "join" else prep.order[::-1].copy()
    pos = prep.rank if kind == "join" else (prep.size - 1 - prep.rank)
    offs = edge_offsets(prep.ndim, prep.connectivity)
    br, pb, pd = _sweep_kernel(order, np.asarray(prep.shape, dtype=np.int64), offs)
    return _Raw(prep, kind, pos, br, pb, pd, int(order[0]), int(order[-1]))


@numba.njit(cache=True, nogil=True)
def _resolve_kernel(kept, parent_b, death_pos, order_by_death):  # type: ignore[no-untyped-def]
    """For each branch: the kept branch its region belongs to, and the sweep position there."""
    nb = kept.size
    kb = np.arange(nb)
    at = np.full(nb, -1, dtype=np.int64)
    for q in range(order_by_death.size):
        i = order_by_death[q]
        if kept[i]:
            continue
        p = parent_b[i]
        if kept[p]:
            kb[i] = p
            at[i] = death_pos[i]
        else:
            kb[i] = kb[p]
            at[i] = at[p]
    return kb, at


@dataclass(frozen=True, eq=False)
class MergeTree:
    """A join (``kind="join"``) or split (``kind="split"``) tree of a grid field.

    Attributes
    ----------
    kind : "join" or "split".
    connectivity : "freudenthal" or "cubical".
    pairs : (n, 2) (birth value, death value) by the elder rule; the essential class (global
        minimum of a join tree, global maximum of a split tree) comes last with death ``inf``
        (``-inf`` for a split tree).
    pair_index : (n, 2) flat vertex indices of the pairs (extremum, saddle); -1 for the essential
        class's death.
    persistence : (n,) ``|death - birth|`` (inf for the essential class).
    extrema : flat indices of the leaves (minima of a join tree, maxima of a split tree).
    saddles : flat indices of the interior nodes where branches merge (unique, sweep order).
    root : flat index of the root (the last vertex of the sweep).
    arcs : (m, 2) flat indices (lower node, upper node) in sweep order; arc ``i`` is label ``i``
        of ``segmentation``.
    segmentation : grid-shaped int64 array: the arc each vertex belongs to (a saddle belongs to
        the arc leaving it towards the root).
    branch_segmentation : grid-shaped int64 array: the branch (row of ``pairs`` / ``branches``)
        each vertex belongs to; for a join tree, its basin.
    branches : (n, 3) branch decomposition: (extremum, saddle or -1, parent branch or -1).
    min_persistence : the threshold this tree was simplified with (0 for the full tree).
    """

    kind: str
    connectivity: str
    pairs: np.ndarray
    pair_index: np.ndarray
    persistence: np.ndarray
    extrema: np.ndarray
    saddles: np.ndarray
    root: int
    arcs: np.ndarray
    segmentation: np.ndarray
    branch_segmentation: np.ndarray
    branches: np.ndarray
    min_persistence: float
    n_nonfinite: int
    attrs: dict[str, Any] = field(default_factory=dict)
    _raw: _Raw | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.pairs.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.segmentation.shape)

    def simplify(self, min_persistence: float, relative: bool = False) -> MergeTree:
        """A new tree without the branches of persistence below ``min_persistence``.

        Branches with persistence >= ``min_persistence`` stay (with a positive threshold, pairs
        of zero persistence go too). With ``relative=True`` the threshold is a fraction of the
        finite value range. The
        segmentation is coarsened: the region of a removed branch joins the arc it merges into.
        """
        if self._raw is None:
            raise ValueError("This tree was rebuilt from a summary and cannot be simplified.")
        thr = absolute_threshold(self._raw.prep, min_persistence, relative)
        return _build(self._raw, max(thr, self.min_persistence), drop_zero=thr > 0)

    def to_networkx(self) -> Any:
        """The tree as a ``networkx.Graph``: nodes are flat indices with value/type/coords."""
        import networkx as nx

        raw = self._raw
        g = nx.Graph(kind=self.kind, connectivity=self.connectivity)
        key = raw.prep.key if raw is not None else None

        def add(node: int, role: str) -> None:
            attrs: dict[str, Any] = {"role": role}
            if raw is not None and key is not None:
                attrs["value"] = float(key[node])
                attrs["coords"] = tuple(raw.prep.coords_of(np.array([node]))[0])
            g.add_node(int(node), **attrs)

        for e in self.extrema:
            add(int(e), "extremum")
        for s in self.saddles:
            add(int(s), "saddle")
        add(int(self.root), "root")
        for i, (a, b) in enumerate(self.arcs):
            g.add_edge(int(a), int(b), arc=i)
        return g

    def as_tree(self) -> dict[str, Any]:
        """Every field as a nested dict of scalars and arrays (what JSON and HDF5 store).

        The sweep a tree keeps for :meth:`simplify` is not part of it.
        """
        return {
            "kind": self.kind,
            "connectivity": self.connectivity,
            "pairs": self.pairs,
            "pair_index": self.pair_index,
            "persistence": self.persistence,
            "extrema": self.extrema,
            "saddles": self.saddles,
            "root": int(self.root),
            "arcs": self.arcs,
            "segmentation": self.segmentation,
            "branch_segmentation": self.branch_segmentation,
            "branches": self.branches,
            "min_persistence": float(self.min_persistence),
            "n_nonfinite": int(self.n_nonfinite),
            "attrs": self.attrs,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (non-finite floats as "inf"/"-inf"/"nan")."""
        return dict(to_jsonable(self.as_tree()))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], shape: Sequence[int]) -> MergeTree:
        """Rebuild from :meth:`to_dict` or :meth:`as_tree` output of a field of ``shape``.

        The result cannot :meth:`simplify` (the sweep is not stored).
        """
        return cls(
            kind=str(d["kind"]),
            connectivity=str(d["connectivity"]),
            pairs=array(d["pairs"], np.float64, (2,)),
            pair_index=array(d["pair_index"], np.int64, (2,)),
            persistence=array(d["persistence"], np.float64),
            extrema=array(d["extrema"], np.int64),
            saddles=array(d["saddles"], np.int64),
            root=int(d["root"]),
            arcs=array(d["arcs"], np.int64, (2,)),
            segmentation=grid_array(d["segmentation"], np.int64, shape),
            branch_segmentation=grid_array(d["branch_segmentation"], np.int64, shape),
            branches=array(d["branches"], np.int64, (3,)),
            min_persistence=float(d["min_persistence"]),
            n_nonfinite=int(d.get("n_nonfinite", 0)),
            attrs=dict(d.get("attrs", {})),
        )

    def equals(self, other: Any) -> bool:
        """Whether ``other`` is a MergeTree with the same fields (the kept sweep aside)."""
        return isinstance(other, MergeTree) and same(self.as_tree(), other.as_tree())

    def __repr__(self) -> str:
        return (
            f"MergeTree(kind={self.kind!r}, {self.extrema.size} extrema, {self.saddles.size} "
            f"saddles, {self.arcs.shape[0]} arcs, connectivity={self.connectivity!r})"
        )


def absolute_threshold(prep: Prepared, min_persistence: Any, relative: bool) -> float:
    """``min_persistence`` validated, times the finite value range when ``relative``."""
    thr = validate_float(min_persistence, "min_persistence", low=0.0)
    if relative:
        fin = prep.key[np.isfinite(prep.key)]
        thr *= float(fin.max() - fin.min())
    return thr


def _build(raw: _Raw, thr: float, drop_zero: bool = False) -> MergeTree:
    prep = raw.prep
    n = prep.size
    key = prep.key
    sign = 1.0 if raw.kind == "join" else -1.0
    npair = raw.pb.size
    # branches: 0 = essential, 1 + i = pair i
    ext = np.concatenate([[raw.root_extremum], raw.pb]).astype(np.int64)
    with np.errstate(invalid="ignore"):
        pers = np.abs(key[raw.pd] - key[raw.pb])
    pers = np.where(np.isnan(pers), np.inf, pers)
    keep_pair = (pers >= thr) & (pers > 0) if drop_zero else pers >= thr
    kept = np.concatenate([[True], keep_pair]) if npair else np.array([True])
    bid = np.full(n, -1, dtype=np.int64)
    bid[ext] = np.arange(ext.size)
    parent_b = np.concatenate([[-1], bid[raw.br[raw.pd]]]).astype(np.int64)
    death_pos = np.concatenate([[np.iinfo(np.int64).max], raw.pos[raw.pd]]).astype(np.int64)
    by_death = np.argsort(-death_pos[1:], kind="stable") + 1
    kb, at = _resolve_kernel(kept, parent_b, death_pos, by_death.astype(np.int64))
    # kept saddles on each kept branch, as keys branch * n + position
    kidx = np.flatnonzero(kept[1:]) + 1
    skeys = np.unique(parent_b[kidx] * n + death_pos[kidx])
    # per vertex: kept branch and sweep position
    vb = bid[raw.br]
    vk = kb[vb]
    vpos = np.where(kept[vb], raw.pos, at[vb])
    q = vk * n + vpos
    kept_ids = np.flatnonzero(kept)
    nsad = np.searchsorted(skeys, (kept_ids + 1) * n, side="left") - np.searchsorted(
        skeys, kept_ids * n, side="left"
    )
    arc_off = np.zeros(kb.size, dtype=np.int64)
    arc_off[kept_ids] = np.concatenate([[0], np.cumsum(nsad + 1)[:-1]])
    seg = arc_off[vk] + (
        np.searchsorted(skeys, q, side="right") - np.searchsorted(skeys, vk * n, side="left")
    )
    # arcs: for each kept branch, extremum -> s1 -> ... -> sk -> its death node
    order_sweep = prep.order if raw.kind == "join" else prep.order[::-1]
    arcs = np.empty((int(np.sum(nsad + 1)), 2), dtype=np.int64)
    sad_pos = skeys % n
    start = np.searchsorted(skeys, kept_ids * n, side="left")
    for j, b in enumerate(kept_ids):
        nodes = [int(ext[b])]
        nodes += [int(order_sweep[p]) for p in sad_pos[start[j] : start[j] + nsad[j]]]
        nodes.append(raw.root if b == 0 else int(raw.pd[b - 1]))
        o = arc_off[b]
        for i in range(len(nodes) - 1):
            arcs[o + i] = (nodes[i], nodes[i + 1])
    # branch relabelling: kept branches 0..m-1 (essential last in pairs)
    kp = kidx - 1  # kept pair rows
    rows = np.concatenate([kp, [-1]])
    new_of_branch = np.full(kb.size, -1, dtype=np.int64)
    new_of_branch[kidx] = np.arange(kidx.size)
    new_of_branch[0] = kidx.size
    pairs = np.empty((rows.size, 2))
    pairs[:-1, 0] = key[raw.pb[kp]]
    pairs[:-1, 1] = key[raw.pd[kp]]
    pairs[-1] = (key[raw.root_extremum], sign * np.inf)
    pair_index = np.empty((rows.size, 2), dtype=np.int64)
    pair_index[:-1, 0] = raw.pb[kp]
    pair_index[:-1, 1] = raw.pd[kp]
    pair_index[-1] = (raw.root_extremum, -1)
    persistence = np.concatenate([pers[kp], [np.inf]])
    branches = np.empty((rows.size, 3), dtype=np.int64)
    branches[:, 0] = pair_index[:, 0]
    branches[:, 1] = pair_index[:, 1]
    branches[:-1, 2] = new_of_branch[parent_b[kidx]]
    branches[-1, 2] = -1
    saddle_nodes = order_sweep[np.unique(sad_pos)] if sad_pos.size else np.zeros(0, np.int64)
    extrema = ext[kept_ids]
    extrema = extrema[np.argsort(raw.pos[extrema], kind="stable")]
    return MergeTree(
        kind=raw.kind,
        connectivity=prep.connectivity,
        pairs=pairs,
        pair_index=pair_index,
        persistence=persistence,
        extrema=extrema,
        saddles=np.asarray(saddle_nodes, dtype=np.int64),
        root=raw.root,
        arcs=arcs,
        segmentation=seg.reshape(prep.shape),
        branch_segmentation=new_of_branch[vk].reshape(prep.shape),
        branches=branches,
        min_persistence=float(thr),
        n_nonfinite=prep.n_nonfinite,
        _raw=raw,
    )


def merge_tree_from_prepared(
    prep: Prepared, kind: str, min_persistence: float = 0.0, drop_zero: bool = False
) -> MergeTree:
    """The ``kind`` tree of a prepared field, simplified at ``min_persistence`` (absolute);
    ``drop_zero`` also removes pairs of zero persistence."""
    return _build(_sweep(prep, kind), min_persistence, drop_zero)


def merge_tree(
    field: Any,
    kind: str = "join",
    *,
    axes: Any = None,
    connectivity: str = "freudenthal",
    min_persistence: float = 0.0,
    relative: bool = False,
) -> MergeTree:
    """Join or split tree of a field of any number of dimensions (>= 1).

    Parameters
    ----------
    field : LossField or ndarray
        Grid-shaped values; every axis needs at least 2 points.
    kind : {"join", "split"}
        ``"join"`` follows sublevel sets (minima), ``"split"`` superlevel sets (maxima).
    axes : sequence of 1-D arrays or dict, optional
        Coordinates of a plain array (used by ``to_networkx``).
    connectivity : {"freudenthal", "cubical"}
        Edges of the grid graph.
    min_persistence, relative : float, bool
        Simplify right away (same as ``merge_tree(...).simplify(min_persistence, relative)``).

    Examples
    --------
    >>> import numpy as np
    >>> f = np.array([0.0, 2.0, 1.0, 3.0])
    >>> t = merge_tree(f)
    >>> t.pairs
    array([[ 1.,  2.],
           [ 0., inf]])
    >>> t.segmentation
    array([0, 1, 2, 1])
    """
    validate_choice(kind, "kind", ("join", "split"))
    prep = prepare(field, axes, connectivity=connectivity, func="merge_tree", max_ndim=None)
    thr = absolute_threshold(prep, min_persistence, relative)
    return merge_tree_from_prepared(prep, kind, thr)


def pair_lookup(
    index: np.ndarray, tables: Sequence[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Persistence and pair row of each vertex of ``index`` from ``(pairs, pair_index)`` tables.

    A vertex takes the first pair (tables in order, then rows; birth before death) it belongs
    to. Rows of later tables are numbered after those of earlier ones. Unpaired vertices get
    NaN and -1.

    >>> import numpy as np
    >>> pairs = np.array([[1.0, 2.0], [0.0, np.inf]])
    >>> pair_lookup(np.array([2, 1, 0, 3]), [(pairs, np.array([[2, 1], [0, -1]]))])
    (array([ 1.,  1., inf, nan]), array([ 0,  0,  1, -1], dtype=int32))
    """
    idx = np.asarray(index, dtype=np.int64).ravel()
    verts, rows, pers = [], [], []
    offset = 0
    for pairs, pair_index in tables:
        p = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
        pi = np.asarray(pair_index, dtype=np.int64).reshape(-1, 2)
        verts.append(pi.ravel())  # row-major: birth, death, birth, death, ...
        rows.append(np.repeat(np.arange(offset, offset + len(pi)), 2))
        pers.append(np.repeat(np.abs(p[:, 1] - p[:, 0]), 2))
        offset += len(pi)
    out_pers = np.full(idx.shape, np.nan)
    out_rows = np.full(idx.shape, -1, dtype=np.int32)
    if not verts or idx.size == 0:
        return out_pers, out_rows
    v, r, q = np.concatenate(verts), np.concatenate(rows), np.concatenate(pers)
    ok = v >= 0
    v, r, q = v[ok], r[ok], q[ok]
    uniq, first = np.unique(v, return_index=True)
    if uniq.size == 0:
        return out_pers, out_rows
    at = np.minimum(np.searchsorted(uniq, idx), uniq.size - 1)
    found = uniq[at] == idx
    out_pers[found] = q[first[at[found]]]
    out_rows[found] = r[first[at[found]]]
    return out_pers, out_rows

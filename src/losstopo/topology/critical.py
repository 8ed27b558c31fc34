"""Critical points of a grid field from the lower link of every vertex, with a Hessian check.

A vertex ``v`` is classified by its **lower link**: the part of its link (in the Freudenthal
triangulation, or in the cubical complex whose cells take the max of their vertices) made of cells
whose vertices all come before ``v`` in the vertex order. With ``L`` the number of connected
components of the lower link and ``chi`` its Euler characteristic:

* empty lower link: minimum (type 0);
* interior vertex whose whole link is lower: maximum (type 3);
* otherwise ``L - 1`` 1-saddles (type 1) and ``L - chi`` 2-saddles (type 2, only in 3D).

The lower star of ``v`` contributes ``1 - chi`` to the Euler characteristic of the domain, and the
rule above assigns exactly that contribution, so on every field (boundary vertices included)
``sum((-1)**morse_index * multiplicity) == 1``, the Euler characteristic of a box.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from ..jsonable import to_jsonable
from ._codec import array, same
from ._order import Prepared, grid_strides, link_tables, prepare
from .hessian_fit import classify_hessians, fit_hessian
from .merge_tree import MergeTree, pair_lookup


@numba.njit(cache=True, nogil=True)
def _classify_kernel(rank, shape, star, link_vertices, edge_ends, edge_req, tri_req):  # type: ignore[no-untyped-def]
    n = rank.size
    d = shape.size
    m = star.shape[0]
    strides, flat_off = grid_strides(shape, star)
    allmask = (np.int64(1) << m) - 1
    nl = link_vertices.size
    ne = edge_ends.shape[0]
    nt = tri_req.size
    ext = np.zeros(n, dtype=np.int8)  # 1 min, 2 max
    mult1 = np.zeros(n, dtype=np.int16)
    mult2 = np.zeros(n, dtype=np.int16)
    boundary = np.zeros(n, dtype=np.bool_)
    coord = np.empty(d, dtype=np.int64)
    par = np.empty(nl, dtype=np.int64)
    for v in range(n):
        rem = v
        interior = True
        for k in range(d):
            coord[k] = rem // strides[k]
            rem -= coord[k] * strides[k]
            if coord[k] == 0 or coord[k] == shape[k] - 1:
                interior = False
        rv = rank[v]
        low = np.int64(0)
        valid = allmask
        if interior:
            for j in range(m):
                if rank[v + flat_off[j]] < rv:
                    low |= np.int64(1) << j
        else:
            boundary[v] = True
            valid = np.int64(0)
            for j in range(m):
                ok = True
                for k in range(d):
                    c = coord[k] + star[j, k]
                    if c < 0 or c >= shape[k]:
                        ok = False
                        break
                if ok:
                    valid |= np.int64(1) << j
                    if rank[v + flat_off[j]] < rv:
                        low |= np.int64(1) << j
        nlow = 0
        for i in range(nl):
            if (low >> link_vertices[i]) & 1:
                nlow += 1
        if nlow == 0:
            ext[v] = 1
            continue
        if interior and low == allmask:
            ext[v] = 2
            continue
        chi = nlow
        for i in range(nl):
            par[i] = i
        for e in range(ne):
            r = edge_req[e]
            if (low & r) == r:
                chi -= 1
                a = edge_ends[e, 0]
                while par[a] != a:
                    a = par[a]
                b = edge_ends[e, 1]
                while par[b] != b:
                    b = par[b]
                if a != b:
                    par[b] = a
        for t in range(nt):
            r = tri_req[t]
            if (low & r) == r:
                chi += 1
        comps = 0
        for i in range(nl):
            if (low >> link_vertices[i]) & 1 and par[i] == i:
                comps += 1
        mult1[v] = comps - 1
        mult2[v] = comps - chi
    return ext, mult1, mult2, boundary


@dataclass(frozen=True, eq=False)
class CriticalPoints:
    """Critical points of a field; one row per (vertex, type).

    Attributes
    ----------
    index : (n,) int64 flat C-order vertex indices.
    coords : (n, d) coordinates in axis units.
    value : (n,) field values.
    type : (n,) TTK critical type: 0 minimum, 1 1-saddle, 2 2-saddle, 3 maximum.
    multiplicity : (n,) 1 for extrema, the number of merged components minus one for saddles.
    hessian_eigenvalues : (n, d) eigenvalues (ascending) of the fitted Hessian, in axis units.
    hessian_type : (n,) type from the Morse index of the fitted Hessian; -1 when near-degenerate.
    hessian_agrees : (n,) ``hessian_type == type``.
    boundary : (n,) whether the vertex lies on the domain's boundary.
    connectivity : "freudenthal" or "cubical".
    n_nonfinite : number of NaN / +inf vertices in the field.

    A 3-D vertex whose lower link has both several components and holes is listed twice, once as
    a 1-saddle and once as a 2-saddle.
    """

    index: np.ndarray
    coords: np.ndarray
    value: np.ndarray
    type: np.ndarray
    multiplicity: np.ndarray
    hessian_eigenvalues: np.ndarray
    hessian_type: np.ndarray
    hessian_agrees: np.ndarray
    boundary: np.ndarray
    connectivity: str
    ndim: int
    shape: tuple[int, ...]
    n_nonfinite: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.index.size)

    def counts(self) -> dict[int, int]:
        """Number of rows of each type (0, 1, 2, 3), zeros included."""
        return {t: int(np.count_nonzero(self.type == t)) for t in range(4)}

    def morse_sum(self) -> int:
        """``sum((-1)**morse_index * multiplicity)``; equals 1 (a box) for every field."""
        index = np.where(self.type == 3, self.ndim, self.type)
        return int(np.sum((-1) ** index * self.multiplicity))

    def select(self, mask: np.ndarray) -> CriticalPoints:
        """The rows where ``mask`` is true."""
        mask = np.asarray(mask)
        kw = {
            k: getattr(self, k)[mask]
            for k in (
                "index",
                "coords",
                "value",
                "type",
                "multiplicity",
                "hessian_eigenvalues",
                "hessian_type",
                "hessian_agrees",
                "boundary",
            )
        }
        return CriticalPoints(
            **kw,
            connectivity=self.connectivity,
            ndim=self.ndim,
            shape=self.shape,
            n_nonfinite=self.n_nonfinite,
            attrs=dict(self.attrs),
        )

    def persistence(self, *trees: MergeTree) -> np.ndarray:
        """Persistence of each row from the pairs of ``trees`` (e.g. a join and a split tree).

        A vertex gets the persistence of the first pair (trees in the order given, then rows) it
        is the birth or death of; ``inf`` for the essential extremum, NaN for a vertex in no
        pair.

        >>> import numpy as np
        >>> from losstopo.topology import merge_tree
        >>> f = np.array([0.0, 2.0, 1.0, 3.0])
        >>> critical_points(f, hessian=False).persistence(merge_tree(f), merge_tree(f, "split"))
        array([inf,  1.,  1.])
        """
        pers, _ = pair_lookup(self.index, [(t.pairs, t.pair_index) for t in trees])
        return pers

    def pair_ids(self, *trees: MergeTree) -> np.ndarray:
        """Row of the pair each point belongs to (-1 if none), as in :meth:`persistence`; rows of
        later trees are numbered after those of earlier ones (TTK's ``PairIdentifier``)."""
        _, ids = pair_lookup(self.index, [(t.pairs, t.pair_index) for t in trees])
        return ids

    def as_tree(self) -> dict[str, Any]:
        """Every field as a nested dict of scalars and arrays (what JSON and HDF5 store)."""
        return {
            "index": self.index,
            "coords": self.coords,
            "value": self.value,
            "type": self.type,
            "multiplicity": self.multiplicity,
            "hessian_eigenvalues": self.hessian_eigenvalues,
            "hessian_type": self.hessian_type,
            "hessian_agrees": self.hessian_agrees,
            "boundary": self.boundary,
            "connectivity": self.connectivity,
            "ndim": int(self.ndim),
            "shape": np.asarray(self.shape, dtype=np.int64),
            "n_nonfinite": int(self.n_nonfinite),
            "attrs": self.attrs,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (non-finite floats as "inf"/"nan")."""
        return dict(to_jsonable(self.as_tree()))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CriticalPoints:
        """Rebuild from :meth:`to_dict` or :meth:`as_tree` output."""
        ndim = int(d["ndim"])
        return cls(
            index=array(d["index"], np.int64),
            coords=array(d["coords"], np.float64, (ndim,)),
            value=array(d["value"], np.float64),
            type=array(d["type"], np.int64),
            multiplicity=array(d["multiplicity"], np.int64),
            hessian_eigenvalues=array(d["hessian_eigenvalues"], np.float64, (ndim,)),
            hessian_type=array(d["hessian_type"], np.int64),
            hessian_agrees=array(d["hessian_agrees"], bool),
            boundary=array(d["boundary"], bool),
            connectivity=str(d["connectivity"]),
            ndim=ndim,
            shape=tuple(int(s) for s in np.asarray(d["shape"]).ravel()),
            n_nonfinite=int(d.get("n_nonfinite", 0)),
            attrs=dict(d.get("attrs", {})),
        )

    def equals(self, other: Any) -> bool:
        """Whether ``other`` is a CriticalPoints with the same fields (NaN equal to NaN)."""
        return isinstance(other, CriticalPoints) and same(self.as_tree(), other.as_tree())

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"CriticalPoints({len(self)} rows: {c[0]} minima, {c[1]} 1-saddles, {c[2]} 2-saddles, "
            f"{c[3]} maxima; connectivity={self.connectivity!r})"
        )


def critical_points_from_prepared(
    prep: Prepared, *, hessian: bool = True, hessian_rtol: float = 1e-3
) -> CriticalPoints:
    d = prep.ndim
    lt = link_tables(d, prep.connectivity)
    ext, m1, m2, bnd = _classify_kernel(
        prep.rank,
        np.asarray(prep.shape, dtype=np.int64),
        lt.star,
        lt.link_vertices,
        lt.edge_ends,
        lt.edge_req,
        lt.tri_req,
    )
    parts_idx, parts_type, parts_mult = [], [], []
    for code, mask, mult in (
        (0, ext == 1, None),
        (1, m1 > 0, m1),
        (2, m2 > 0, m2),
        (3, ext == 2, None),
    ):
        idx = np.flatnonzero(mask)
        parts_idx.append(idx)
        parts_type.append(np.full(idx.size, code, dtype=np.int64))
        parts_mult.append(
            np.ones(idx.size, dtype=np.int64) if mult is None else mult[idx].astype(np.int64)
        )
    index = np.concatenate(parts_idx)
    ctype = np.concatenate(parts_type)
    mult_all = np.concatenate(parts_mult)
    srt = np.lexsort((ctype, prep.rank[index]))
    index, ctype, mult_all = index[srt], ctype[srt], mult_all[srt]
    if hessian:
        H = fit_hessian(prep.values, prep.axes, index)
        eig, htype, _ = classify_hessians(H, rtol=hessian_rtol)
    else:
        eig = np.full((index.size, d), np.nan)
        htype = np.full(index.size, -1, dtype=np.int64)
    return CriticalPoints(
        index=index,
        coords=prep.coords_of(index),
        value=prep.values.ravel()[index],
        type=ctype,
        multiplicity=mult_all,
        hessian_eigenvalues=eig,
        hessian_type=htype,
        hessian_agrees=htype == ctype,
        boundary=bnd[index],
        connectivity=prep.connectivity,
        ndim=d,
        shape=prep.shape,
        n_nonfinite=prep.n_nonfinite,
    )


def critical_points(
    field: Any,
    *,
    axes: Any = None,
    connectivity: str = "freudenthal",
    hessian: bool = True,
    hessian_rtol: float = 1e-3,
) -> CriticalPoints:
    """Critical points of a 1-D, 2-D or 3-D field, classified combinatorially and by the Hessian.

    Parameters
    ----------
    field : LossField or ndarray
        Grid-shaped values (1 to 3 dimensions, at least 2 points per axis).
    axes : sequence of 1-D arrays or dict, optional
        Coordinates of a plain array (default: integer indices). Not allowed with a LossField.
    connectivity : {"freudenthal", "cubical"}
        Neighbourhood used for the lower link (see ``docs/topology.md``).
    hessian : bool
        Fit the Hessian at each critical point (local quadratic least squares in axis units).
    hessian_rtol : float
        Eigenvalues below ``hessian_rtol * max|eigenvalue|`` count as zero (near-degenerate).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 21)
    >>> X, Y = np.meshgrid(x, x, indexing="ij")
    >>> cp = critical_points(X**2 + Y**2, axes=(x, x))
    >>> cp.counts()[0], cp.morse_sum()
    (1, 1)
    """
    prep = prepare(field, axes, connectivity=connectivity, func="critical_points")
    return critical_points_from_prepared(prep, hessian=hessian, hessian_rtol=hessian_rtol)

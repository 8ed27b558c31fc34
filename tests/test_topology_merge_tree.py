"""Merge trees against gudhi (cubical and Freudenthal lower-star), simplification, structure."""

from __future__ import annotations

import itertools

import gudhi
import networkx as nx
import numpy as np
import pytest

from losstopo.topology import merge_tree


def _multiset(pairs: np.ndarray) -> list[tuple[float, float]]:
    return sorted(map(tuple, np.asarray(pairs, dtype=float).tolist()))


def _ours_h0(f: np.ndarray, connectivity: str) -> list[tuple[float, float]]:
    t = merge_tree(f, connectivity=connectivity)
    return _multiset(t.pairs[t.persistence > 0])


def _gudhi_cubical_h0(f: np.ndarray) -> list[tuple[float, float]]:
    # gudhi reads vertex values in Fortran order: hand it the transposed array so its
    # vertex (i, j, k) is ours; the diagram is the same either way (a transpose is an isomorphism).
    cc = gudhi.CubicalComplex(vertices=np.asfortranarray(f))
    cc.compute_persistence()
    return _multiset(cc.persistence_intervals_in_dimension(0))


def _kuhn_simplices(shape: tuple[int, ...]) -> list[list[int]]:
    """Top simplices of the Freudenthal triangulation, built independently: every unit cube
    is cut into d! simplices along its main (+1, ..., +1) diagonal."""
    d = len(shape)
    out = []
    for corner in itertools.product(*[range(s - 1) for s in shape]):
        for perm in itertools.permutations(range(d)):
            cur = list(corner)
            simplex = [int(np.ravel_multi_index(cur, shape))]
            for axis in perm:
                cur[axis] += 1
                simplex.append(int(np.ravel_multi_index(cur, shape)))
            out.append(simplex)
    return out


def _gudhi_freudenthal_h0(f: np.ndarray) -> list[tuple[float, float]]:
    st = gudhi.SimplexTree()
    flat = f.ravel()
    for v in range(flat.size):
        st.insert([v], float(flat[v]))
    for simplex in _kuhn_simplices(f.shape):
        st.insert(simplex, -np.inf)  # faces get the lower-star value below
    for simplex, _ in list(st.get_simplices()):
        st.assign_filtration(simplex, float(flat[simplex].max()))
    st.make_filtration_non_decreasing()
    st.compute_persistence()
    return _multiset(st.persistence_intervals_in_dimension(0))


def _fields(rng: np.random.Generator, shape: tuple[int, ...], n: int):
    for i in range(n):
        if i % 3 == 0:
            yield rng.random(shape)
        elif i % 3 == 1:
            yield rng.integers(0, 4, size=shape).astype(float)  # many exact ties
        else:
            yield np.round(rng.normal(size=shape).cumsum(axis=0), 1)


@pytest.mark.parametrize("shape", [(9, 11), (16, 16), (5, 6, 7), (8, 8, 8), (13,)])
def test_cubical_h0_equals_gudhi(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    for f in _fields(rng, shape, 12):
        assert _ours_h0(f, "cubical") == _gudhi_cubical_h0(f)


@pytest.mark.parametrize("shape", [(7, 8), (10, 10), (4, 5, 6), (11,)])
def test_freudenthal_h0_equals_gudhi_simplex_tree(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(7 + sum(shape))
    for f in _fields(rng, shape, 9):
        assert _ours_h0(f, "freudenthal") == _gudhi_freudenthal_h0(f)


def test_four_dimensional_cubical() -> None:
    rng = np.random.default_rng(3)
    f = rng.random((3, 4, 3, 4))
    assert _ours_h0(f, "cubical") == _gudhi_cubical_h0(f)


def test_pairs_invariant_under_increasing_transform() -> None:
    rng = np.random.default_rng(11)
    for shape in [(12, 13), (6, 7, 5)]:
        f = rng.integers(-3, 4, size=shape).astype(float)
        for kind in ("join", "split"):
            a = merge_tree(f, kind)
            for g in (np.exp(f), f**3, 2 * f + 1):
                b = merge_tree(g, kind)
                np.testing.assert_array_equal(a.pair_index, b.pair_index)
                np.testing.assert_array_equal(a.segmentation, b.segmentation)


def test_split_tree_is_join_tree_of_negation_up_to_ties() -> None:
    rng = np.random.default_rng(5)
    f = rng.random((15, 17))  # no ties: reversed order == order of -f
    s, j = merge_tree(f, "split"), merge_tree(-f, "join")
    np.testing.assert_array_equal(np.sort(s.extrema), np.sort(j.extrema))
    np.testing.assert_allclose(_multiset(s.pairs[:-1]), _multiset(-j.pairs[:-1]))


def test_extrema_count_matches_minima() -> None:
    from losstopo.topology import critical_points

    rng = np.random.default_rng(2)
    for conn in ("freudenthal", "cubical"):
        f = rng.integers(0, 3, size=(20, 20)).astype(float)
        t = merge_tree(f, connectivity=conn)
        cp = critical_points(f, connectivity=conn, hessian=False)
        assert t.extrema.size == cp.counts()[0]
        assert set(t.extrema.tolist()) == set(cp.index[cp.type == 0].tolist())


def test_segmentation_and_arcs_are_consistent() -> None:
    rng = np.random.default_rng(8)
    f = rng.random((30, 30))
    t = merge_tree(f)
    assert t.segmentation.shape == f.shape
    labels = np.unique(t.segmentation)
    np.testing.assert_array_equal(labels, np.arange(t.arcs.shape[0]))
    flat = t.segmentation.ravel()
    # every extremum lies on its own leaf arc, whose lower node it is
    for e in t.extrema:
        assert t.arcs[flat[e], 0] == e
    # vertices of an arc lie between its lower node and upper node in value
    v = f.ravel()
    for i, (lo, hi) in enumerate(t.arcs):
        vals = v[flat == i]
        assert vals.min() >= v[lo]
        assert vals.max() <= v[hi]
    g = t.to_networkx()
    assert nx.is_tree(g)
    assert g.number_of_edges() == t.arcs.shape[0]


def test_simplify_coarsens() -> None:
    x = np.linspace(0, 1, 200)
    f = np.sin(12 * np.pi * x) * 0.1 + (x - 0.5) ** 2 + 0.001 * np.sin(300 * x)
    t = merge_tree(f, axes=[x])
    s = t.simplify(0.1)
    assert s.extrema.size < t.extrema.size
    assert np.all(s.persistence >= 0.1)
    # coarsening: each new arc is a union of old arcs
    for a in np.unique(t.segmentation):
        assert np.unique(s.segmentation[t.segmentation == a]).size == 1
    np.testing.assert_array_equal(np.unique(s.segmentation), np.arange(s.arcs.shape[0]))
    # the surviving pairs are exactly the old pairs above the threshold (merge-tree stability)
    keep = t.persistence >= 0.1
    assert _multiset(s.pairs) == _multiset(t.pairs[keep])
    # relative thresholds are a fraction of the value range
    r = t.simplify(0.1 / np.ptp(f), relative=True)
    assert _multiset(r.pairs) == _multiset(s.pairs)
    # everything merges into one branch
    one = t.simplify(1e9)
    assert one.extrema.size == 1
    assert np.all(one.branch_segmentation == 0)


def test_branch_decomposition() -> None:
    f = np.array([0.0, 5.0, 1.0, 3.0, 2.0, 6.0])
    t = merge_tree(f)
    assert _multiset(t.pairs) == [(0.0, np.inf), (1.0, 5.0), (2.0, 3.0)]
    # branch of min 2 (value 2) merges into branch of value-1 min, which merges into the root
    rows = {int(b[0]): b for b in t.branches}
    assert rows[0][2] == -1
    assert t.pair_index[rows[4][2], 0] == 2
    assert t.pair_index[rows[2][2], 0] == 0
    assert t.branch_segmentation.tolist() == [
        list(t.pair_index[:, 0]).index(i) for i in (0, 0, 2, 2, 4, 0)
    ]


def test_nonfinite_are_above_everything() -> None:
    f = np.array([[0.0, np.nan, 1.0], [np.inf, np.nan, 2.0], [3.0, np.inf, 0.5]])
    t = merge_tree(f)
    assert t.n_nonfinite == 4
    assert np.all(np.isfinite(f.ravel()[t.extrema]))
    s = merge_tree(f, "split")
    assert s.root == 0  # the split tree's root is the lowest vertex
    # the essential superlevel class starts at the last non-finite vertex (ties by flat index)
    assert s.pair_index[-1, 0] == 7

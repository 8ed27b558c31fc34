"""Critical points: Morse relation, invariance, analytic fields and their Hessians."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from losstopo.topology import analyze, critical_points, merge_tree

CONNECTIVITIES = ("freudenthal", "cubical")


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
@pytest.mark.parametrize("shape", [(9,), (2, 2), (12, 15), (2, 3, 2), (7, 8, 9)])
def test_morse_relation_random(connectivity: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) * 100 + sum(shape))
    for trial in range(8):
        if trial % 3 == 0:
            f = rng.random(shape)
        elif trial % 3 == 1:
            f = rng.integers(0, 3, size=shape).astype(float)  # exact ties everywhere
        else:
            f = np.zeros(shape)  # one big plateau
            f[tuple(s // 2 for s in shape)] = -1.0
        cp = critical_points(f, connectivity=connectivity, hessian=False)
        assert cp.morse_sum() == 1, (trial, cp.counts())


@settings(max_examples=40, deadline=None)
@given(
    f=arrays(
        np.float64,
        st.tuples(st.integers(2, 6), st.integers(2, 6), st.integers(2, 5)),
        elements=st.integers(0, 3).map(float),
    ),
    connectivity=st.sampled_from(CONNECTIVITIES),
)
def test_morse_relation_hypothesis_3d(f: np.ndarray, connectivity: str) -> None:
    cp = critical_points(f, connectivity=connectivity, hessian=False)
    assert cp.morse_sum() == 1
    # minima are exactly the join tree's leaves and maxima the split tree's leaves (interior)
    t = merge_tree(f, connectivity=connectivity)
    assert set(cp.index[cp.type == 0].tolist()) == set(t.extrema.tolist())


def test_morse_relation_with_nonfinite() -> None:
    rng = np.random.default_rng(4)
    f = rng.random((20, 20))
    f[5:9, 5:12] = np.nan
    f[0, :4] = np.inf
    for conn in CONNECTIVITIES:
        cp = critical_points(f, connectivity=conn, hessian=False)
        assert cp.morse_sum() == 1
        assert cp.n_nonfinite == 28 + 4


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
def test_types_invariant_under_increasing_transform(connectivity: str) -> None:
    rng = np.random.default_rng(9)
    f = rng.integers(-2, 3, size=(10, 9, 8)).astype(float)
    a = critical_points(f, connectivity=connectivity, hessian=False)
    for g in (np.exp(f), f**3, 0.5 * f - 7):
        b = critical_points(g, connectivity=connectivity, hessian=False)
        np.testing.assert_array_equal(a.index, b.index)
        np.testing.assert_array_equal(a.type, b.type)
        np.testing.assert_array_equal(a.multiplicity, b.multiplicity)


def test_one_dimensional_codes() -> None:
    f = np.array([3.0, 1.0, 2.0, 0.0, 4.0, 2.5])
    cp = critical_points(f, hessian=False)
    assert dict(zip(cp.index.tolist(), cp.type.tolist(), strict=True)) == {
        1: 0,
        2: 3,
        3: 0,
        4: 3,
        5: 0,  # the right end is lower than its only neighbour
    }
    assert cp.morse_sum() == 1


def _grid(n: int, lo: float, hi: float, d: int = 2):
    x = np.linspace(lo, hi, n)
    return x, np.meshgrid(*([x] * d), indexing="ij")


def test_quadratic_bowl() -> None:
    x, (X, Y) = _grid(41, -1, 1)
    cp = critical_points(X**2 + 4 * Y**2, axes=(x, x))
    assert cp.counts() == {0: 1, 1: 0, 2: 0, 3: 0}
    np.testing.assert_allclose(cp.coords[0], [0, 0], atol=1e-12)
    np.testing.assert_allclose(cp.hessian_eigenvalues[0], [2, 8], rtol=1e-8)
    assert cp.hessian_type[0] == 0 and cp.hessian_agrees[0]


def test_quadratic_bowl_3d_nonuniform_axes() -> None:
    x = np.sort(np.concatenate([np.linspace(-1, 1, 15), [0.05, -0.33]]))
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    cp = critical_points(X**2 + 2 * Y**2 + 3 * Z**2 + X * Y, axes=(x, x, x))
    assert cp.counts()[0] == 1
    expected = np.linalg.eigvalsh(np.array([[2.0, 1, 0], [1, 4, 0], [0, 0, 6]]))
    np.testing.assert_allclose(cp.hessian_eigenvalues[0], expected, rtol=1e-8)


def test_double_well() -> None:
    x, (X, Y) = _grid(81, -2, 2)
    f = (X**2 - 1) ** 2 + Y**2
    s = analyze(f, min_persistence=0.1, axes=(x, x))
    p = s.persistent
    assert s.n_minima == 2 and s.n_saddles == 1
    mins = p.coords[p.type == 0]
    np.testing.assert_allclose(sorted(mins[:, 0]), [-1, 1], atol=0.05)
    sad = p.select(p.type == 1)
    np.testing.assert_allclose(sad.coords[0], [0, 0], atol=0.05)
    assert sad.hessian_type[0] == 1  # eigenvalues -4 and 2
    np.testing.assert_allclose(sad.hessian_eigenvalues[0], [-4, 2], rtol=0.02)


def test_sum_of_gaussians_3d() -> None:
    x, (X, Y, Z) = _grid(31, 0, 1, d=3)
    centres = [(0.25, 0.25, 0.3), (0.75, 0.3, 0.7), (0.3, 0.75, 0.7), (0.7, 0.7, 0.25)]
    f = sum(
        -np.exp(-((X - a) ** 2 + (Y - b) ** 2 + (Z - c) ** 2) / (2 * 0.08**2))
        for a, b, c in centres
    )
    s = analyze(f, min_persistence=0.05, axes=(x, x, x))
    assert s.n_minima == 4
    found = s.persistent.coords[s.persistent.type == 0]
    for c in centres:
        assert np.min(np.max(np.abs(found - np.array(c)), axis=1)) <= x[1] - x[0]
    assert np.all(s.persistent.hessian_type[s.persistent.type == 0] == 0)
    assert s.morse_sum == 1


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
def test_himmelblau(connectivity: str) -> None:
    """4 minima, 4 saddles and 1 maximum, at known places."""
    x, (X, Y) = _grid(161, -5, 5)
    f = (X**2 + Y - 11) ** 2 + (X + Y**2 - 7) ** 2
    s = analyze(f, min_persistence=1.0, axes=(x, x), connectivity=connectivity)
    p = s.persistent.select(~s.persistent.boundary)
    known = {
        0: [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)],
        1: [
            (3.385154, 0.073852),
            (0.086678, 2.884255),
            (-3.073026, -0.081353),
            (-0.127961, -1.953715),
        ],
        3: [(-0.270845, -0.923039)],
    }
    h = x[1] - x[0]
    for t, pts in known.items():
        got = p.coords[p.type == t]
        assert got.shape[0] == len(pts), (t, got)
        for q in pts:
            assert np.min(np.max(np.abs(got - np.array(q)), axis=1)) <= h
    np.testing.assert_array_equal(p.hessian_type, p.type)
    assert np.all(p.hessian_agrees)


def test_degenerate_hessian_flagged() -> None:
    x, (X, Y) = _grid(41, -1, 1)
    # flat along x at the minimum: the fitted curvature there is 2 h^2 = 0.005, vs 2 along y
    cp = critical_points(X**4 + Y**2, axes=(x, x), hessian_rtol=0.01)
    assert cp.counts()[0] == 1
    assert cp.hessian_type[0] == -1 and not cp.hessian_agrees[0]


def test_counts_and_len() -> None:
    rng = np.random.default_rng(1)
    cp = critical_points(rng.random((10, 10)))
    assert len(cp) == sum(cp.counts().values())
    assert cp.coords.shape == (len(cp), 2)
    assert cp.hessian_eigenvalues.shape == (len(cp), 2)
    assert cp.connectivity == "freudenthal"

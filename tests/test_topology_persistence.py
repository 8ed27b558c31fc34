"""Persistence diagrams and distances, against gudhi and brute force."""

from __future__ import annotations

import itertools

import gudhi
import gudhi.hera
import numpy as np
import pytest

from losstopo.topology import (
    PersistenceDiagram,
    bottleneck_distance,
    merge_tree,
    persistence_diagram,
    wasserstein_distance,
)
from losstopo.topology.persistence import freudenthal_simplices


def _ms(a: np.ndarray) -> list[tuple[float, float]]:
    return sorted(map(tuple, np.asarray(a).tolist()))


@pytest.mark.parametrize("shape", [(12, 13), (5, 6, 7)])
def test_cubical_equals_gudhi_all_dimensions(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    f = rng.random(shape)
    dg = persistence_diagram(f, connectivity="cubical")
    cc = gudhi.CubicalComplex(vertices=f)
    cc.compute_persistence()
    for k in range(len(shape)):
        assert _ms(dg[k]) == _ms(cc.persistence_intervals_in_dimension(k))
    assert dg.connectivity == "cubical"
    assert dg[len(shape)].shape == (0, 2)


@pytest.mark.parametrize("shape", [(9, 10), (4, 5, 6), (15,)])
def test_freudenthal_h0_equals_merge_tree(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(2)
    for f in (rng.random(shape), rng.integers(0, 4, size=shape).astype(float)):
        dg = persistence_diagram(f)
        t = merge_tree(f)
        assert _ms(dg[0]) == _ms(t.pairs[t.persistence > 0])
        assert np.count_nonzero(dg.essential[0]) == 1


def test_freudenthal_simplex_counts_and_euler() -> None:
    for shape in [(4, 5), (3, 4, 5)]:
        simp = freudenthal_simplices(shape)
        chi = sum((-1) ** k * s.shape[0] for k, s in enumerate(simp))
        assert chi == 1
        n_cubes = int(np.prod([s - 1 for s in shape]))
        assert simp[-1].shape[0] == n_cubes * (2 if len(shape) == 2 else 6)


def test_nonfinite_deaths_are_not_essential() -> None:
    f = np.array([[0.0, np.nan, 1.0], [0.5, np.nan, 2.0], [3.0, np.nan, 0.2]])
    dg = persistence_diagram(f)
    assert dg.n_nonfinite == 3
    # the two columns meet only through the NaN column: the younger dies "at inf", not essential
    assert _ms(dg[0]) == [(0.0, np.inf), (0.2, np.inf), (1.0, 2.0)]
    ess = {tuple(p): e for p, e in zip(dg[0].tolist(), dg.essential[0].tolist(), strict=True)}
    assert ess[(0.0, np.inf)] and not ess[(0.2, np.inf)]


def test_freudenthal_size_guard() -> None:
    with pytest.raises(ValueError, match="max_simplices"):
        persistence_diagram(np.random.default_rng(0).random((30, 30)), max_simplices=100)


def _brute_wasserstein(x: np.ndarray, y: np.ndarray, p: float) -> float:
    """Minimum over all partial matchings; unmatched points go to the diagonal."""
    best = np.inf
    nx, ny = len(x), len(y)
    diag = lambda a: (a[1] - a[0]) / 2  # noqa: E731
    for k in range(min(nx, ny) + 1):
        for xs in itertools.combinations(range(nx), k):
            for ys in itertools.permutations(range(ny), k):
                c = sum(np.max(np.abs(x[i] - y[j])) ** p for i, j in zip(xs, ys, strict=True))
                c += sum(diag(x[i]) ** p for i in range(nx) if i not in xs)
                c += sum(diag(y[j]) ** p for j in range(ny) if j not in ys)
                best = min(best, c)
    return best ** (1 / p)


def test_wasserstein_brute_force_and_hera() -> None:
    rng = np.random.default_rng(3)
    for _trial in range(30):
        nx, ny = rng.integers(0, 4, size=2)
        x = np.sort(rng.random((nx, 2)), axis=1)
        y = np.sort(rng.random((ny, 2)), axis=1)
        for p in (1.0, 2.0):
            ours = wasserstein_distance(x, y, order=p)
            assert ours == pytest.approx(_brute_wasserstein(x, y, p), abs=1e-12)
        ref = gudhi.hera.wasserstein_distance(x, y, order=1, internal_p=np.inf, delta=1e-9)
        assert wasserstein_distance(x, y) == pytest.approx(ref, rel=1e-6, abs=1e-12)


def test_distances_with_essential_classes() -> None:
    a = np.array([[0.0, np.inf], [1.0, 2.0]])
    b = np.array([[0.5, np.inf], [1.0, 2.5]])
    assert wasserstein_distance(a, b) == pytest.approx(1.0)
    assert bottleneck_distance(a, b) == pytest.approx(0.5)
    assert wasserstein_distance(a, b[1:]) == np.inf
    rng = np.random.default_rng(5)
    f, g = rng.random((15, 15)), rng.random((15, 15))
    da, db = persistence_diagram(f), persistence_diagram(g)
    assert wasserstein_distance(da, da) == 0.0
    assert bottleneck_distance(da, db) == pytest.approx(
        max(gudhi.bottleneck_distance(da[k], db[k]) for k in (0, 1))
    )
    # stability: bottleneck <= sup-norm distance of the fields
    assert bottleneck_distance(da, db) <= np.max(np.abs(f - g)) + 1e-12


def test_diagram_round_trip() -> None:
    dg = persistence_diagram(np.random.default_rng(0).random((8, 8)))
    back = PersistenceDiagram.from_dict(dg.to_dict())
    for k in dg.dims:
        np.testing.assert_array_equal(back[k], dg[k])
        np.testing.assert_array_equal(back.essential[k], dg.essential[k])


def test_bad_diagram_input() -> None:
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        wasserstein_distance(np.zeros((3, 3)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="order"):
        wasserstein_distance([[0, 1]], [[0, 1]], order=0.5)
    with pytest.raises(TypeError, match="PersistenceDiagram"):
        bottleneck_distance(object(), [[0, 1]])

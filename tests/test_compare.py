"""compare: basin metrics and diagram distances against gudhi and brute force; refusals."""

from __future__ import annotations

import dataclasses

import gudhi
import gudhi.hera
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from losstopo import Comparison, Grid, LossField, analyze, compare
from losstopo.compare import mean_elder_persistence, smad
from losstopo.compare.comparison import HESSIAN_KEY
from losstopo.errors import InvalidParameterError, InvalidTypeError, ShapeMismatchError
from losstopo.testing import analytic_field


def _field(values: np.ndarray, extent: float = 1.0, **attrs: object) -> LossField:
    grid = Grid(
        {n: np.linspace(-extent, extent, s) for n, s in zip("xyz", values.shape, strict=False)}
    )
    return LossField(values, grid, attrs=dict(attrs))


def _smooth(seed: int, shape: tuple[int, ...] = (41, 41)) -> np.ndarray:
    return gaussian_filter(np.random.default_rng(seed).standard_normal(shape), 2.5)


def _gudhi_cubical(f: np.ndarray) -> list[np.ndarray]:
    cc = gudhi.CubicalComplex(vertices=f)
    cc.compute_persistence()
    return [cc.persistence_intervals_in_dimension(k).reshape(-1, 2) for k in range(f.ndim)]


def _gudhi_freudenthal_2d(f: np.ndarray) -> list[np.ndarray]:
    """Lower-star filtration of the Freudenthal triangulation, built here from the squares."""
    st = gudhi.SimplexTree()
    idx = np.arange(f.size).reshape(f.shape)
    flat = f.ravel()
    for i in range(f.shape[0] - 1):
        for j in range(f.shape[1] - 1):
            a, b, c, d = idx[i, j], idx[i + 1, j], idx[i + 1, j + 1], idx[i, j + 1]
            for tri in ((a, b, c), (a, d, c)):
                st.insert(list(map(int, tri)))
    for simplex, _ in list(st.get_simplices()):  # lower star: every simplex at its highest vertex
        st.assign_filtration(simplex, float(flat[simplex].max()))
    st.make_filtration_non_decreasing()
    st.compute_persistence()
    return [st.persistence_intervals_in_dimension(k).reshape(-1, 2) for k in range(2)]


def _hera(a: np.ndarray, b: np.ndarray) -> float:
    """gudhi's (hera's) exact 1-Wasserstein distance of the finite pairs, plus the essential
    classes matched by birth (hera itself crashes on some diagrams with essential classes)."""
    ea, eb = np.sort(a[np.isinf(a[:, 1]), 0]), np.sort(b[np.isinf(b[:, 1]), 0])
    assert ea.size == eb.size
    fa, fb = a[np.isfinite(a[:, 1])], b[np.isfinite(b[:, 1])]
    finite = gudhi.hera.wasserstein_distance(fa, fb, order=1.0, internal_p=np.inf, delta=1e-12)
    return float(finite + np.abs(ea - eb).sum())


def _positive(d: np.ndarray) -> np.ndarray:
    return d[(d[:, 1] - d[:, 0]) > 0]


@pytest.mark.parametrize("connectivity", ["cubical", "freudenthal"])
@pytest.mark.parametrize("kind", ["analytic", "smoothed"])
def test_counts_and_distances_equal_gudhi(connectivity: str, kind: str) -> None:
    if kind == "analytic":  # losstopo.testing's fields of known topology (different extents)
        fields = [analytic_field(n, 31) for n in ("double_well", "himmelblau", "bowl")]
        thr, relative = 0.01, True
    else:
        fields = [_field(_smooth(s)) for s in (0, 1, 2)]
        thr, relative = 0.02, False
    c = compare(
        fields,
        labels=["a", "b", "c"],
        min_persistence=thr,
        relative=relative,
        connectivity=connectivity,
        force=True,
    )
    ref = _gudhi_cubical if connectivity == "cubical" else _gudhi_freudenthal_2d
    dgms = [[_positive(d) for d in ref(f.values)] for f in fields]
    for i, d in enumerate(dgms):  # persistent minima: H0 pairs at or above the threshold
        pers = d[0][:, 1] - d[0][:, 0]
        absolute = thr * np.ptp(fields[i].values) if relative else thr
        assert c["n_minima"][i] == np.count_nonzero(pers >= absolute)
        finite = pers[np.isfinite(pers) & (pers >= absolute)]
        assert c["total_persistence"][i] == pytest.approx(finite.sum())
    if kind == "analytic":
        assert c["n_minima"].tolist() == [2, 4, 1]
    for i in range(3):
        for j in range(3):
            bott = max(
                gudhi.bottleneck_distance(a, b) for a, b in zip(dgms[i], dgms[j], strict=True)
            )
            wass = sum(_hera(a, b) for a, b in zip(dgms[i], dgms[j], strict=True))
            assert c.bottleneck[i, j] == pytest.approx(bott, rel=1e-12, abs=1e-12)
            assert c.wasserstein[i, j] == pytest.approx(wass, rel=1e-9, abs=1e-12)
    assert c.bottleneck[0, 1] > 0 and np.allclose(c.bottleneck, c.bottleneck.T)


def test_analytic_fields_known_counts() -> None:
    names = ["bowl", "double_well", "himmelblau"]
    c = compare([analytic_field(n, 41) for n in names], labels=names, force=True)
    assert c["n_minima"].tolist() == [analytic_field(n).attrs["minima"] for n in names]
    assert c["nonfinite_fraction"].tolist() == [0.0, 0.0, 0.0]
    # the double well's centre (0, 0) is its saddle, which belongs to the region above the
    # merge: the global minimum's basin, whose depth is the rest of the field's height
    topo = c.summaries[1]
    glob = topo.basins[0]
    assert c["centre_size"][1] == glob.fraction
    assert c["centre_depth"][1] == pytest.approx(topo.value_max - glob.value)
    assert sum(b.fraction for b in topo.basins) == pytest.approx(1.0)
    assert c["smad"][1] == pytest.approx(1.0) and c["smad"][0] == 0.0
    assert isinstance(c, Comparison) and len(c) == 3


def _landscaper_smad_bruteforce(f: np.ndarray, normalize: bool, weighted: bool) -> float:
    """Cubical 4-neighbour sublevel sweep: each minimum's gap to the first merge it takes part in."""
    order = np.argsort(f.ravel(), kind="stable")
    parent = -np.ones(f.size, dtype=np.int64)
    first_merge: dict[int, float] = {}
    members: dict[int, int] = {}  # root -> its minimum

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    shape = f.shape
    for v in order:
        i, j = divmod(int(v), shape[1])
        roots = set()
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            a, b = i + di, j + dj
            if 0 <= a < shape[0] and 0 <= b < shape[1] and parent[a * shape[1] + b] >= 0:
                roots.add(find(a * shape[1] + b))
        parent[v] = v
        if not roots:
            members[int(v)] = int(v)
            continue
        if len(roots) > 1:
            for r in roots:
                first_merge.setdefault(members[r], float(f.ravel()[v]))
        keep = min(roots, key=lambda r: f.ravel()[members[r]])
        for r in roots:
            parent[r] = keep
        parent[v] = keep
    mins = list(first_merge)
    if not mins:
        return 0.0
    gaps = np.array([first_merge[m] - f.ravel()[m] for m in mins])
    if normalize:
        gaps = gaps / (f.max() - f.min())
    assert not weighted
    return float(gaps.mean())


@pytest.mark.parametrize("normalize", [False, True])
def test_landscaper_smad_equals_brute_force(normalize: bool) -> None:
    f = _smooth(3, (30, 30))
    s = analyze(f, connectivity="cubical", hessian=False)
    expected = _landscaper_smad_bruteforce(f, normalize, False)
    assert smad(s, normalize=normalize) == pytest.approx(expected, rel=1e-12)
    # losstopo's own mean leaves the global minimum out and pairs by the elder rule
    pers = s.basins.column("persistence")
    assert mean_elder_persistence(s) == pytest.approx(pers[np.isfinite(pers)].mean())
    assert mean_elder_persistence(s) == pytest.approx(s.basins.smad)


def test_smad_worked_example_and_weights() -> None:
    f = np.array([0.0, 3.0, 1.0, 4.0, 2.5, 5.0])  # minima 0, 1, 2.5; saddles 3, 4
    s = analyze(f, hessian=False)
    # Landscaper: every minimum to the next branching node above it: 0->3, 1->3, 2.5->4
    assert smad(s) == pytest.approx((3 + 2 + 1.5) / 3)
    assert smad(s, normalize=True) == pytest.approx((3 + 2 + 1.5) / 3 / 5)
    share = np.bincount(s.join_tree.branch_segmentation.ravel()) / f.size
    rows = {int(m): k for k, m in enumerate(s.join_tree.pair_index[:, 0])}
    weighted = (3 * share[rows[0]] + 2 * share[rows[2]] + 1.5 * share[rows[4]]) / 3
    assert smad(s, weighted=True) == pytest.approx(weighted)
    # elder rule: 1 dies at 3 (persistence 2), 2.5 dies at 4 (1.5); the global minimum never
    assert mean_elder_persistence(s) == pytest.approx((2 + 1.5) / 2)


def test_refuses_incomparable_fields_and_names_the_difference() -> None:
    a = _field(_smooth(0), loss="cross_entropy", data={"hash": "aa"})
    b = _field(_smooth(1), loss="mse", data={"hash": "aa"})
    with pytest.raises(
        InvalidParameterError,
        match=r"'a' and 'b' are not comparable: loss "
        r"cross_entropy vs mse.*force=True",
    ):
        compare([a, b], labels=["a", "b"])
    c = _field(_smooth(1), extent=2.0, loss="cross_entropy", data={"hash": "bb"})
    with pytest.raises(InvalidParameterError, match=r"extent .* data aa vs bb"):
        compare([a, c], labels=["a", "c"])
    assert len(compare([a, b, c], labels=["a", "b", "c"], force=True)) == 3
    d = _field(_smooth(2, (41, 21)), loss="cross_entropy", data={"hash": "aa"})
    with pytest.raises(InvalidParameterError, match=r"grid shape \(41, 41\) vs \(41, 21\)"):
        compare([a, d], labels=["a", "d"])


def test_refuses_2d_with_3d_even_with_force() -> None:
    with pytest.raises(ShapeMismatchError, match="a 2D field, with 'b', a 3D field"):
        compare([analytic_field("bowl", 9), analytic_field("bowl3d", 9)], ["a", "b"], force=True)


def test_labels_must_be_unique_and_one_per_field(tmp_path) -> None:
    f = analytic_field("bowl", 9)
    with pytest.raises(InvalidParameterError, match="Two landscapes have the label 'x'"):
        compare([f, f], labels=["x", "x"])
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        f.save(tmp_path / sub / "run.h5")
    with pytest.raises(InvalidParameterError, match="label 'run'; pass labels="):
        compare([tmp_path / "a" / "run.h5", tmp_path / "b" / "run.h5"])
    assert compare([f, f]).labels == ("landscape1", "landscape2")
    with pytest.raises(InvalidParameterError, match="Got 1 labels for 2 landscapes"):
        compare([f, f], labels=["x"])
    with pytest.raises(InvalidTypeError, match="item 1 is a int"):
        compare([f, 3])
    with pytest.raises(InvalidParameterError, match="at least one"):
        compare([])


def test_paths_hessian_and_verification_columns(tmp_path) -> None:
    from losstopo.verify import TopologyCheck

    a = analytic_field("double_well", 21)
    b = dataclasses.replace(
        analytic_field("double_well", 21),
        attrs={HESSIAN_KEY: {"top_eigenvalue": 8.0, "trace": 10.0}},
    )
    a.save(tmp_path / "first.h5")
    c = compare([tmp_path / "first.h5", b], labels=["first", "second"], force=True)
    assert "hessian_top_eigenvalue" in c.columns and "verified_fraction" not in c.columns
    assert "artifact_minima" not in c.columns
    assert np.isnan(c["hessian_top_eigenvalue"][0]) and c["hessian_trace"][1] == 10.0
    # a check stored with the same basins fills verified_fraction
    topo = analyze(a, 0.01, relative=True, hessian=False)
    check = TopologyCheck(
        index=np.zeros(2, np.int64),
        coords=np.zeros((2, 2)),
        value=np.zeros(2),
        loss=np.zeros(2),
        lambda_min=np.ones(2),
        lambda_max=np.ones(2),
        grad_norm=np.zeros(2),
        param_norm=np.ones(2),
        checkpoint_distance=np.full(2, np.nan),
        is_full_space_minimum=np.ones(2, bool),
        is_artifact=np.zeros(2, bool),
        pair=np.array([[0, 1]]),
        saddle_index=np.zeros(1, np.int64),
        saddle_coords=np.zeros((1, 2)),
        saddle_value=np.ones(1),
        picture_barrier=np.ones(1),
        straight_barrier=np.full(1, 0.2),
        curve_barrier=np.full(1, np.nan),
        path_loss=np.zeros((1, 3)),
        status=np.array(["artifact"]),
        fraction=0.5,
        tol=0.01,
    )
    checked = a.with_topology(check.attach(topo))
    c2 = compare([checked, b], labels=["first", "second"], force=True)
    assert c2["verified_fraction"][0] == 0.0 and np.isnan(c2["verified_fraction"][1])
    assert c2["artifact_minima"][0] == check.n_artifact_minima == 0
    other = a.with_topology(check.attach(analyze(a, 0.9, relative=True, hessian=False)))
    c3 = compare([other, b], labels=["first", "second"], force=True)
    assert "other basins" in c3.attrs["notes"]["first"]
    assert c.to_frame().loc["first", "n_minima"] == 2


def test_table_outputs(tmp_path) -> None:
    fields = [analytic_field("himmelblau", 21), analytic_field("himmelblau", 31)]
    c = compare(fields, labels=["coarse", "fine"], force=True)
    text = c.to_csv(tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text() == text
    header, first, second = text.splitlines()
    assert header.split(",")[:3] == ["label", "n_minima", "centre_depth"]
    assert first.startswith("coarse,4,") and second.startswith("fine,4,")
    md = c.to_markdown()
    assert md.splitlines()[2].startswith("| coarse | 4 |")
    assert "Bottleneck distance" in md and "`smad`: Landscaper" in md
    frame = c.to_frame()
    assert list(frame.index) == ["coarse", "fine"] and frame.shape == (2, len(c.columns))
    assert c.distance_frame("wasserstein").loc["coarse", "fine"] == c.wasserstein[0, 1]
    with pytest.raises(InvalidParameterError, match="Unknown comparison column 'nope'"):
        c["nope"]


def test_to_frame_without_pandas_is_a_structured_array(monkeypatch) -> None:
    import sys

    c = compare([analytic_field("double_well", 21)] * 2, labels=["a", "bb"])
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    arr = c.to_frame()
    assert isinstance(arr, np.ndarray) and arr.dtype.names[:2] == ("label", "n_minima")
    assert arr["label"].tolist() == ["a", "bb"] and arr["n_minima"].tolist() == [2.0, 2.0]
    np.testing.assert_array_equal(c.distance_frame("bottleneck"), c.bottleneck)

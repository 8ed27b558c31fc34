"""Tests of losstopo.plot: what each figure draws equals the data it was given."""

from __future__ import annotations

import gudhi
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from losstopo import Grid, LossField, ProjectedPath
from losstopo.errors import InvalidParameterError, InvalidTypeError
from losstopo.plot import (
    log_loss_values,
    plot_barcode,
    plot_barrier,
    plot_contour,
    plot_fidelity,
    plot_merge_tree,
    plot_persistence_diagram,
    plot_profile,
    plot_surface,
    save_figure,
)
from losstopo.topology import (
    TopologySummary,
    analyze,
    critical_points,
    merge_tree,
    persistence_diagram,
)


def double_well(n: int = 31) -> LossField:
    g = Grid.square(n, 2.0, 2)
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    v = (x**2 - 1) ** 2 + y**2 + 0.3 * x + 0.5
    paths = {
        "sgd": ProjectedPath(
            [[1.5, 1.5], [1.0, 0.5], [1.0, 0.0]], [0, 5, 10], loss=[6, 2, 0.3], run="sgd"
        ),
        "adam": ProjectedPath([[-1.5, 1.5], [-1.0, 0.0]], [0, 10], run="adam"),
    }
    return LossField(v, g, metrics={"accuracy": 1 / (1 + v)}, paths=paths)


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def scatter_offsets(ax) -> dict[str, np.ndarray]:
    return {c.get_label(): np.asarray(c.get_offsets()) for c in ax.collections
            if isinstance(c, PathCollection)}  # fmt: skip


def test_contour_draws_the_summary_points_and_paths():
    field = double_well()
    topo = analyze(field, min_persistence=0.1)
    fig = plot_contour(field, critical_points=topo, title="well")
    ax = fig.axes[0]
    assert ax.get_title() == "well"
    # markers: one scatter per type, at the persistent points' coordinates
    cp = topo.persistent
    names = {0: "minimum", 1: "1-saddle", 2: "2-saddle", 3: "maximum"}
    expected = {
        f"{names[t]} ({np.count_nonzero(cp.type == t)})": cp.coords[cp.type == t]
        for t in np.unique(cp.type)
    }
    got = scatter_offsets(ax)
    assert set(got) == set(expected) == {"minimum (2)", "1-saddle (1)"}
    for label, coords in expected.items():
        np.testing.assert_allclose(got[label], coords)
    # labels: value and persistence of every paired point (saddle - minimum from join_pairs)
    (mine, saddle), (glob, _) = topo.join_pairs
    assert sorted(texts(fig)) == sorted(
        [f"{glob:.3g} (p=inf)", f"{mine:.3g} (p={saddle - mine:.2g})",
         f"{saddle:.3g} (p={saddle - mine:.2g})"]
    )  # fmt: skip
    # the paths: polylines through their coordinates, in the legend by run
    lines = {line.get_label(): line for line in ax.get_lines()}
    for name, path in field.paths.items():
        np.testing.assert_allclose(np.column_stack(lines[name].get_data()), path.coords)
    # filled contours span the field's range
    cs = next(c for c in ax.collections if isinstance(c, ContourSet) and c.filled)
    assert cs.levels[0] <= field.values.min() and cs.levels[-1] >= field.values.max()


def test_contour_of_bare_critical_points_has_markers_but_no_labels():
    field = double_well()
    cp = critical_points(field)
    fig = plot_contour(field, critical_points=cp, paths=False)
    got = scatter_offsets(fig.axes[0])
    np.testing.assert_allclose(got[f"minimum ({cp.counts()[0]})"], cp.coords[cp.type == 0])
    assert texts(fig) == []


def test_contour_log_and_nan_and_given_ax():
    f = double_well()
    v = f.values.copy()
    v[:3, :3] = np.nan
    f = LossField(v, f.grid)
    host = Figure()
    ax = host.add_subplot()
    assert plot_contour(f, ax=ax, log=True, paths=False, levels=7) is host
    cs = next(c for c in ax.collections if isinstance(c, ContourSet) and c.filled)
    logv = log_loss_values(v)
    assert cs.levels[0] <= np.nanmin(logv) and cs.levels[-1] >= np.nanmax(logv)
    assert cs.levels[-1] < np.nanmax(v)  # coloured by log10 of the loss, not the loss
    assert ax.get_lines() == []


def test_contour_constant_field_draws_its_values():
    g = Grid.square(5, 1.0, 2)
    fig = plot_contour(LossField(np.full(g.shape, 2.5), g))
    mesh = fig.axes[0].collections[0]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).ravel(), np.full(25, 2.5))


def test_contour_rejects_1d_bad_ax_and_untyped_topology():
    g = Grid.square(5, 1.0, 1)
    with pytest.raises(InvalidParameterError, match="plot_profile"):
        plot_contour(LossField(np.zeros(5), g))
    with pytest.raises(InvalidTypeError, match="Axes"):
        plot_contour(double_well(), ax="not an axes")
    with pytest.raises(InvalidTypeError, match="CriticalPoints"):
        plot_contour(double_well(), critical_points=object())
    summary = analyze(double_well())
    with pytest.raises(InvalidTypeError, match="CriticalPoints"):
        plot_contour(double_well(), critical_points=summary.to_dict())
    with pytest.raises(InvalidTypeError, match="LossField"):
        plot_contour(double_well().values)


def test_surface_with_path_heights():
    field = double_well()
    fig = plot_surface(field, log=True, title="s")
    ax = fig.axes[0]
    assert ax.name == "3d"
    assert ax.get_legend_handles_labels()[1] == ["sgd"]  # the only path with losses
    x, y, z = ax.get_lines()[0].get_data_3d()
    np.testing.assert_allclose(np.column_stack([x, y]), field.paths["sgd"].coords)
    np.testing.assert_allclose(z, np.log10(field.paths["sgd"].loss))
    with pytest.raises(InvalidParameterError, match="3D Axes"):
        plot_surface(field, ax=Figure().add_subplot())


def test_profile_lines_equal_the_field_and_metrics():
    g = Grid.square(21, 1.0, 1)
    x = g.axes["x"]
    f = LossField(x**2, g, metrics={"test_loss": x**2 + 0.1, "accuracy": 1 - x**2 / 2})
    fig = plot_profile(f, title="p")
    assert len(fig.axes) == 2
    labels = fig.axes[0].get_legend().get_texts()
    assert [t.get_text() for t in labels] == ["train loss", "test loss", "accuracy"]
    (train, test), (acc,) = fig.axes[0].get_lines(), fig.axes[1].get_lines()
    for line, want in ((train, f.values), (test, f.metrics["test_loss"]),
                       (acc, f.metrics["accuracy"])):  # fmt: skip
        np.testing.assert_array_equal(line.get_xdata(), x)
        np.testing.assert_array_equal(line.get_ydata(), want)
    fig = plot_profile(f, metrics=[])
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 1
    with pytest.raises(InvalidParameterError, match="not in this field"):
        plot_profile(f, metrics=["nope"])


@pytest.mark.parametrize("seed", range(3))
def test_diagram_points_are_gudhis_pairs(seed):
    f = np.random.default_rng(seed).random((9, 7))
    dgm = persistence_diagram(f, connectivity="cubical")
    cc = gudhi.CubicalComplex(vertices=f)
    cc.compute_persistence()
    fig = plot_persistence_diagram(dgm)
    ax = fig.axes[0]
    top = ax.lines[1].get_ydata()[0]  # the dashed line of infinite deaths
    got = scatter_offsets(ax)
    for k in (0, 1):
        ref = cc.persistence_intervals_in_dimension(k)
        ref = ref[ref[:, 1] > ref[:, 0]]
        ref = np.where(np.isinf(ref), top, ref)
        pts = got[f"H{k} ({len(ref)})"]
        assert sorted(map(tuple, pts.round(12))) == sorted(map(tuple, ref.round(12)))


def test_barcode_bars_are_the_pairs():
    f = np.random.default_rng(3).random((8, 8))
    dgm = persistence_diagram(f)
    fig = plot_barcode(analyze(f).diagram)
    bars = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert len(bars) == 2
    top = max(s[:, 0].max() for c in bars for s in c.get_segments())
    for k, c in enumerate(bars):
        segs = np.array([s[:, 0] for s in c.get_segments()])
        want = np.where(np.isinf(dgm[k]), top, dgm[k])
        assert sorted(map(tuple, segs)) == sorted(map(tuple, want))
        pers = segs[:, 1] - segs[:, 0]
        assert np.all(np.diff(pers) <= 0)  # longest first


def test_diagram_and_barcode_take_only_diagrams():
    arrays = [np.array([[0.0, np.inf], [0.3, 0.8]]), np.array([[0.5, 0.9]])]
    for bad in (arrays, {0: arrays[0]}, arrays[0], analyze(np.eye(3)).to_dict()):
        for func in (plot_persistence_diagram, plot_barcode):
            with pytest.raises(InvalidTypeError, match="PersistenceDiagram"):
                func(bad)


def test_merge_tree_branches_are_the_pairs():
    f = np.array([0.0, 0.8, 0.3, 0.7, 0.5, 1.0, 0.2, 0.9])
    tree = merge_tree(f)
    ax = plot_merge_tree(tree).axes[0]
    vertical = [line for line in ax.get_lines() if len(set(line.get_xdata())) == 1
                and len(line.get_xdata()) == 2]  # fmt: skip
    spans = sorted((min(v.get_ydata()), max(v.get_ydata())) for v in vertical)
    finite = sorted(map(tuple, tree.pairs[:-1]))  # the essential pair comes last
    assert len(finite) == 3 and len(spans) == len(tree.pairs)
    (essential,) = [s for s in spans if s[1] > f.max()]  # drawn up to the top of the plot
    assert essential[0] == tree.pairs[-1, 0]
    assert sorted(s for s in spans if s != essential) == finite
    leaves = np.asarray(ax.collections[0].get_offsets())[:, 1]
    assert sorted(leaves) == sorted(tree.pairs[:, 0])
    assert ax.get_title() == f"merge tree ({len(tree.pairs)} minima)"


def test_merge_tree_of_a_summary_and_a_split_tree():
    field = double_well()
    topo = analyze(field, min_persistence=0.1)
    assert plot_merge_tree(topo).axes[0].get_title() == "merge tree (2 minima)"
    split = merge_tree(np.array([0.0, 0.8, 0.3, 0.7, 0.5]), "split")
    ax = plot_merge_tree(split).axes[0]
    assert ax.get_title() == f"split tree ({len(split.pairs)} maxima)"
    old = TopologySummary.from_dict({k: v for k, v in topo.to_dict().items()
                                     if k not in ("join_tree", "split_tree")})  # fmt: skip
    with pytest.raises(InvalidParameterError, match="no merge tree"):
        plot_merge_tree(old)
    with pytest.raises(InvalidTypeError, match="MergeTree"):
        plot_merge_tree(object())
    with pytest.raises(InvalidTypeError, match="MergeTree"):
        plot_merge_tree(topo.join_tree.to_dict())


def test_fidelity_bars_are_the_values():
    fig = plot_fidelity(
        {"pca": {"projection_error": 0.1, "loss_error": 0.02}, "ae": {"loss_error": 0.01}}
    )
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[:2] == [0.1, 0.02] and heights[3] == 0.01 and len(heights) == 4
    rows = [
        {"projector": "pca", "loss_error": "0.1", "kind": "linear"},
        {"projector": "umap", "loss_error": 0.3},
    ]
    fig = plot_fidelity(rows)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["loss error"]
    assert [p.get_height() for p in fig.axes[0].patches] == [0.1, 0.3]
    with pytest.raises(InvalidTypeError):
        plot_fidelity(3)


def test_barrier_marks_height():
    t = np.linspace(0, 1, 21)
    curve = 1 + np.sin(np.pi * t)
    fig = plot_barrier(t, [curve, 1 + 0.1 * t], labels=["linear", "bezier"])
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), curve)
    assert texts(fig) == [f"barrier {curve.max() - 1:.3g}"]  # the flat curve has no barrier
    one = plot_barrier(t, np.ones(21))
    np.testing.assert_array_equal(one.axes[0].get_lines()[0].get_ydata(), np.ones(21))
    with pytest.raises(InvalidParameterError, match="same t"):
        plot_barrier(t, np.ones(5))
    with pytest.raises(InvalidParameterError, match="labels"):
        plot_barrier(t, np.ones((2, 21)), labels=["one"])


@pytest.mark.parametrize(
    "ext, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_save_figure_formats(tmp_path, ext, magic):
    out = save_figure(plot_contour(double_well()), tmp_path / f"fig{ext}")
    assert out.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [f"fig{ext}"]


def test_save_figure_errors(tmp_path):
    fig = plot_barcode(persistence_diagram(np.array([0.0, 1.0])))
    with pytest.raises(InvalidParameterError, match="extension"):
        save_figure(fig, tmp_path / "fig.bmp")
    with pytest.raises(InvalidParameterError, match="does not exist"):
        save_figure(fig, tmp_path / "missing" / "fig.png")
    assert not (tmp_path / "missing").exists()


def test_log_loss_values_shifts_nonpositive():
    out = log_loss_values(np.array([-1.0, 0.0, 1.0, np.nan, np.inf]))
    np.testing.assert_allclose(out[:3], np.log10(np.array([-1.0, 0.0, 1.0]) + 1 + 2e-4))
    assert np.isnan(out[3:]).all()

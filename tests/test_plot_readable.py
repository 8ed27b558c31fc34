"""Figures a reader can read: axis names, legends, labels that do not overlap, smooth contours."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.contour import ContourSet

from losstopo import Grid, LossField, PCAProjector, ProjectedPath
from losstopo.plot import plot_contour, plot_merge_tree, plot_profile, plot_surface
from losstopo.plot.axes import smooth_for_display
from losstopo.topology import analyze, merge_tree


def bowl(n: int = 9, attrs=None, paths=None) -> LossField:
    g = Grid.square(n, 1.0, 2)
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    return LossField(x**2 + 2 * y**2 + 0.1, g, attrs=attrs or {}, paths=paths or {})


PLANE = {"name": "PlaneProjector", "directions": {"kind": "random", "normalization": "filter"}}


def test_axis_labels_say_what_the_axis_is():
    fig = plot_contour(bowl(attrs={"projector": PLANE}))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "direction 1 (filter-normalized)"
    assert ax.get_ylabel() == "direction 2 (filter-normalized)"
    rng = np.random.default_rng(0)
    pca = PCAProjector(2).fit(rng.normal(size=(6, 5)) * [5.0, 2.0, 1.0, 0.5, 0.1])
    share = pca.describe()["explained_variance_ratio"]
    fig = plot_surface(bowl(attrs={"projector": pca.describe()}))
    assert fig.axes[0].get_xlabel() == f"PC1 ({100 * share[0]:.0f}% var.)"
    ae = {"name": "AutoEncoderProjector"}
    assert plot_contour(bowl(attrs={"projector": ae})).axes[0].get_ylabel() == "latent 2"
    assert plot_contour(bowl()).axes[0].get_xlabel() == "x"  # nothing recorded: the grid's name


def test_legend_explains_markers_and_skips_collapsed_paths():
    paths = {
        "sgd": ProjectedPath([[0.8, 0.8], [0.3, 0.1], [0.0, 0.0]], [0, 1, 2], run="sgd"),
        "stuck": ProjectedPath([[0.5, -0.5], [0.5, -0.5]], [0, 1], run="stuck"),
    }
    fig = plot_contour(bowl(paths=paths))
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["sgd", "start", "end"]
    markers = {h.get_label(): h.get_marker() for h in fig.axes[0].get_legend_handles_labels()[0]}
    assert markers["start"] == "o" and markers["end"] == "*"


def test_value_labels_are_few_and_apart():
    g = Grid.square(61, 3.0, 2)
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    field = LossField(np.sin(3 * x) * np.cos(3 * y) + 0.05 * (x**2 + y**2), g)
    topo = analyze(field, min_persistence=0.01)
    assert topo.persistent.counts()[0] > 5  # many persistent points to label
    ax = plot_contour(field, critical_points=topo).axes[0]
    anchors = np.array([t.xy for t in ax.texts])
    assert 1 <= len(anchors) <= 5
    d = np.abs(anchors[:, None, :] - anchors[None, :, :]).max(-1) / 6.0  # axes span 6
    assert np.all(d[~np.eye(len(anchors), dtype=bool)] >= 0.12)


def test_merge_tree_of_one_minimum_says_so():
    fig = plot_merge_tree(merge_tree(np.array([0.0, 0.5, 1.0])))
    ax = fig.axes[0]
    assert ax.get_title() == "merge tree (1 minimum)"
    assert any("single basin" in t.get_text() for t in ax.texts)
    assert plot_merge_tree(merge_tree(np.array([0.0, 0.8, 0.3]))).axes[0].get_title() == (
        "merge tree (2 minima)"
    )


def test_profile_legend_clear_of_the_curves():
    g = Grid({"alpha": np.linspace(-0.5, 1.5, 41)})
    a = g.axes["alpha"]
    field = LossField(
        (a - 1) ** 2, g, metrics={"test_loss": (a - 1) ** 2 + 0.1, "test_accuracy": 1 - a / 3},
        attrs={"projector": PLANE, "interpolation": "alpha=0 initialisation, alpha=1 minimum"},
    )  # fmt: skip
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = plot_profile(field)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[0]
    renderer = canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))
    assert not legend.overlaps(ax.xaxis.label.get_window_extent(renderer))
    assert ax.get_xlabel() == "alpha (alpha=0 initialisation, alpha=1 minimum)"


def test_coarse_contours_are_drawn_smooth_and_the_values_stay():
    field = bowl(9)
    before = field.values.copy()
    ax = plot_contour(field).axes[0]
    cs = next(c for c in ax.collections if isinstance(c, ContourSet))
    n_vertices = sum(len(p.vertices) for p in cs.get_paths())
    np.testing.assert_array_equal(field.values, before)
    raw = Figure_contour_vertices(field)
    assert n_vertices > 3 * raw
    fx, fy, fv = smooth_for_display(*field.grid.axes.values(), field.values)
    np.testing.assert_allclose(fv[::15, ::15], field.values, rtol=1e-12)
    assert fv.min() >= field.values.min() and fv.max() <= field.values.max()
    # a fine grid, or one with holes, is drawn as it is
    fine = bowl(151)
    assert smooth_for_display(*fine.grid.axes.values(), fine.values)[2] is not None
    assert smooth_for_display(*fine.grid.axes.values(), fine.values)[2].shape == (151, 151)
    holes = field.values.copy()
    holes[0, 0] = np.nan
    assert smooth_for_display(*field.grid.axes.values(), holes)[2].shape == (9, 9)


def Figure_contour_vertices(field: LossField) -> int:
    """Vertices of matplotlib's own contours on the raw grid (the jagged reference)."""
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    x, y = np.meshgrid(*field.grid.axes.values(), indexing="ij")
    cs = ax.contourf(x, y, field.values, levels=30)
    return sum(len(p.vertices) for p in cs.get_paths())


@pytest.mark.parametrize("n", [1, 3])
def test_critical_point_legend_counts(n):
    g = Grid.square(41, 3.0, 2)
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    v = (
        (x**2 + y**2)
        if n == 1
        else np.minimum.reduce([(x - c) ** 2 + y**2 for c in (-2.0, 0.0, 2.0)])
    )
    topo = analyze(LossField(v, g), min_persistence=0.1)
    labels = (
        plot_contour(LossField(v, g), critical_points=topo).axes[0].get_legend_handles_labels()[1]
    )
    assert f"minimum ({n})" in labels

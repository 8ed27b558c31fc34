"""Tests of losstopo.plot: every figure draws, returns its Figure, honours ``ax`` and saves."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
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


def fake_topology() -> SimpleNamespace:
    cp = SimpleNamespace(
        coords=np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [2.0, 2.0]]),
        type=np.array([0, 0, 1, 3]),
        value=np.array([0.2, 0.8, 1.5, 9.0]),
        index=np.array([10, 20, 15, 960]),
    )
    tree = SimpleNamespace(
        pairs=np.array([[0.2, np.inf], [0.8, 1.5]]), pair_index=np.array([[10, -1], [20, 15]])
    )
    return SimpleNamespace(critical_points=cp, merge_tree=tree)


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_contour_draws_paths_markers_and_labels():
    fig = plot_contour(double_well(), critical_points=fake_topology(), title="well")
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert {"sgd", "adam", "minimum (2)", "1-saddle (1)", "maximum (1)"} <= set(labels)
    assert ax.get_title() == "well"
    # persistent points labelled (essential min and the paired min/saddle), the max is not
    assert any("p=inf" in t for t in texts(fig))
    assert sum("p=0.7" in t for t in texts(fig)) == 2


def test_contour_log_and_nan_and_given_ax():
    f = double_well()
    v = f.values.copy()
    v[:3, :3] = np.nan
    f = LossField(v, f.grid)
    host = Figure()
    ax = host.add_subplot()
    assert plot_contour(f, ax=ax, log=True, paths=False) is host


def test_contour_constant_field():
    g = Grid.square(5, 1.0, 2)
    fig = plot_contour(LossField(np.ones(g.shape), g))
    assert isinstance(fig, Figure)


def test_contour_rejects_1d_and_bad_ax():
    g = Grid.square(5, 1.0, 1)
    with pytest.raises(InvalidParameterError, match="plot_profile"):
        plot_contour(LossField(np.zeros(5), g))
    with pytest.raises(InvalidTypeError, match="Axes"):
        plot_contour(double_well(), ax="not an axes")
    with pytest.raises(InvalidTypeError, match="CriticalPoints"):
        plot_contour(double_well(), critical_points=object())


def test_surface_with_path_heights():
    fig = plot_surface(double_well(), log=True, title="s")
    ax = fig.axes[0]
    assert ax.name == "3d"
    assert ax.get_legend_handles_labels()[1] == ["sgd"]  # the only path with losses
    with pytest.raises(InvalidParameterError, match="3D Axes"):
        plot_surface(double_well(), ax=Figure().add_subplot())


def test_profile_train_test_accuracy():
    g = Grid.square(21, 1.0, 1)
    x = g.axes["x"]
    f = LossField(x**2, g, metrics={"test_loss": x**2 + 0.1, "accuracy": 1 - x**2 / 2})
    fig = plot_profile(f, title="p")
    assert len(fig.axes) == 2
    labels = fig.axes[0].get_legend().get_texts()
    assert [t.get_text() for t in labels] == ["train loss", "test loss", "accuracy"]
    fig = plot_profile(f, metrics=[])
    assert len(fig.axes) == 1
    with pytest.raises(InvalidParameterError, match="not in this field"):
        plot_profile(f, metrics=["nope"])


def test_diagram_and_barcode_accept_many_layouts():
    class Dgm:
        def __init__(self, arrays):
            self._a = arrays

        def __getitem__(self, k):
            return self._a[k]

    arrays = [np.array([[0.0, np.inf], [0.3, 0.8]]), np.array([[0.5, 0.9]])]
    for dgm in (arrays, {0: arrays[0], 1: arrays[1]}, Dgm(arrays), arrays[0]):
        for func in (plot_persistence_diagram, plot_barcode):
            fig = func(dgm)
            assert isinstance(fig, Figure)
    labels = plot_persistence_diagram(arrays).axes[0].get_legend_handles_labels()[1]
    assert labels == ["H0 (2)", "H1 (1)"]
    with pytest.raises(InvalidParameterError, match=r"\(n, 2\)"):
        plot_persistence_diagram(np.zeros(3))


def test_merge_tree_heights_equal_values():
    tree = SimpleNamespace(pairs=np.array([[0.0, np.inf], [0.3, 0.8], [0.5, 0.7]]))
    fig = plot_merge_tree(tree)
    ax = fig.axes[0]
    ys = np.concatenate([line.get_ydata() for line in ax.get_lines()])
    for value in (0.0, 0.3, 0.5, 0.7, 0.8):
        assert np.isclose(ys, value).any()
    with pytest.raises(InvalidTypeError, match="MergeTree"):
        plot_merge_tree(object())


def test_fidelity_mapping_and_rows():
    fig = plot_fidelity(
        {"pca": {"projection_error": 0.1, "loss_error": 0.02}, "ae": {"loss_error": 0.01}}
    )
    assert len(fig.axes[0].patches) == 4
    rows = [
        {"projector": "pca", "loss_error": "0.1", "kind": "linear"},
        {"projector": "umap", "loss_error": 0.3},
    ]
    fig = plot_fidelity(rows)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["loss error"]
    with pytest.raises(InvalidTypeError):
        plot_fidelity(3)


def test_barrier_marks_height():
    t = np.linspace(0, 1, 21)
    fig = plot_barrier(t, [1 + np.sin(np.pi * t), 1 + 0.1 * t], labels=["linear", "bezier"])
    assert any(s.startswith("barrier 1") for s in texts(fig))
    assert isinstance(plot_barrier(t, np.ones(21)), Figure)
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
    fig = plot_barcode(np.array([[0.0, 1.0]]))
    with pytest.raises(InvalidParameterError, match="extension"):
        save_figure(fig, tmp_path / "fig.bmp")
    with pytest.raises(InvalidParameterError, match="does not exist"):
        save_figure(fig, tmp_path / "missing" / "fig.png")
    assert not (tmp_path / "missing").exists()


def test_log_loss_values_shifts_nonpositive():
    out = log_loss_values(np.array([-1.0, 0.0, 1.0, np.nan, np.inf]))
    assert np.isfinite(out[:3]).all() and np.isnan(out[3:]).all()
    assert np.all(np.diff(out[:3]) > 0)

"""analyze(), the summary's JSON round trip through LossField, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from losstopo import Grid, LossField
from losstopo.errors import InvalidParameterError, InvalidTypeError, ShapeMismatchError
from losstopo.topology import (
    TopologySummary,
    analyze,
    basins,
    critical_points,
    format_summary,
    merge_tree,
    persistence_diagram,
)


def _himmelblau(n: int = 81) -> LossField:
    grid = Grid({"a": np.linspace(-5, 5, n), "b": np.linspace(-5, 5, n)})
    X, Y = np.meshgrid(*grid.axes.values(), indexing="ij")
    return LossField((X**2 + Y - 11) ** 2 + (X + Y**2 - 7) ** 2, grid)


@pytest.mark.parametrize("connectivity", ["freudenthal", "cubical"])
def test_analyze_loss_field(connectivity: str) -> None:
    field = _himmelblau()
    s = analyze(field, min_persistence=1.0, connectivity=connectivity)
    assert s.connectivity == connectivity
    assert s.morse_sum == 1
    assert (s.n_minima, s.n_saddles, s.n_maxima) == (4, 4, 1)
    assert len(s.basins) == 4
    assert s.diagram.connectivity == connectivity
    assert s.join_tree is not None and s.join_tree.connectivity == connectivity
    # H0 of the diagram == the join tree's pairs
    kept = s.diagram[0][s.diagram[0][:, 1] - s.diagram[0][:, 0] >= 1.0]
    assert sorted(map(tuple, kept.tolist())) == sorted(map(tuple, s.join_pairs.tolist()))
    text = format_summary(s)
    assert "4 minima" in text and connectivity in text and "SMAD" in text
    assert s.axis_names == ("a", "b")
    np.testing.assert_allclose(s.basins[0].coords, [3, 2], atol=0.13)


def test_relative_threshold() -> None:
    field = _himmelblau()
    a = analyze(field, min_persistence=1.0 / np.ptp(field.values), relative=True)
    b = analyze(field, min_persistence=1.0)
    assert a.min_persistence == pytest.approx(b.min_persistence)
    assert a.relative and not b.relative


def test_to_json_writes_to_dict(tmp_path) -> None:
    s = analyze(_himmelblau(41), min_persistence=1.0)
    s.to_json(tmp_path / "t.json")
    back = TopologySummary.from_dict(json.loads((tmp_path / "t.json").read_text()))
    assert back.equals(s)
    assert json.loads((tmp_path / "t.json").read_text()) == json.loads(json.dumps(s.to_dict()))


def test_all_functions_accept_axes_dict() -> None:
    x = np.linspace(0, 2, 11)
    f = (x[:, None] - 1) ** 2 + x[None, :]
    cp = critical_points(f, axes={"u": x, "v": x})
    np.testing.assert_allclose(cp.coords[cp.type == 0][0], [1.0, 0.0])
    assert analyze(f, axes={"u": x, "v": x}).axis_names == ("u", "v")


# ------------------------------------------------------------------------------ bad input
ALL_1_3D = [critical_points, persistence_diagram, basins, analyze]


@pytest.mark.parametrize("func", ALL_1_3D)
def test_reject_0d_and_4d(func) -> None:
    with pytest.raises(InvalidParameterError, match="needs a 1-D, 2-D or 3-D field"):
        func(np.float64(1.0))
    with pytest.raises(InvalidParameterError, match="merge_tree accepts any number"):
        func(np.zeros((2, 2, 2, 2)))


def test_merge_tree_takes_nd_but_not_0d() -> None:
    assert merge_tree(np.random.default_rng(0).random((3, 3, 3, 3, 2))).extrema.size >= 1
    with pytest.raises(InvalidParameterError, match="at least 1-D"):
        merge_tree(np.float64(2.0))


@pytest.mark.parametrize("func", [*ALL_1_3D, merge_tree])
def test_reject_size_one_dimension(func) -> None:
    with pytest.raises(InvalidParameterError, match="at least 2 grid points along every axis"):
        func(np.zeros((5, 1)))


@pytest.mark.parametrize("func", [*ALL_1_3D, merge_tree])
def test_reject_all_nan_and_neginf(func) -> None:
    with pytest.raises(InvalidParameterError, match="no finite value"):
        func(np.full((4, 4), np.nan))
    f = np.zeros((4, 4))
    f[1, 1] = -np.inf
    with pytest.raises(InvalidParameterError, match="-inf"):
        func(f)


def test_reject_negative_min_persistence() -> None:
    f = np.random.default_rng(0).random((5, 5))
    for call in (
        lambda: analyze(f, min_persistence=-0.1),
        lambda: basins(f, min_persistence=-1),
        lambda: merge_tree(f, min_persistence=-1),
        lambda: merge_tree(f).simplify(-0.5),
    ):
        with pytest.raises(InvalidParameterError, match="'min_persistence' parameter must be"):
            call()


def test_reject_bad_axes() -> None:
    f = np.zeros((4, 5))
    with pytest.raises(ShapeMismatchError, match="has 4 coordinates but the field has 5"):
        critical_points(f, axes=[np.arange(4.0), np.arange(4.0)])
    with pytest.raises(InvalidParameterError, match="strictly increasing"):
        basins(f, axes=[np.arange(4.0), np.array([0.0, 1, 1, 2, 3])])
    with pytest.raises(ShapeMismatchError, match="Got 1 axes for a 2-D field"):
        analyze(f, axes=[np.arange(4.0)])
    with pytest.raises(InvalidParameterError, match="carries its own grid"):
        analyze(LossField(np.zeros((3, 3)), Grid.square(3)), axes=[np.arange(3.0)] * 2)


def test_reject_bad_options() -> None:
    f = np.zeros((4, 4))
    with pytest.raises(InvalidParameterError, match="'connectivity' parameter must be one of"):
        critical_points(f, connectivity="moore")
    with pytest.raises(InvalidParameterError, match="'kind' parameter must be one of"):
        merge_tree(f, kind="contour")
    with pytest.raises(InvalidTypeError, match="Expected a LossField or a numeric"):
        analyze("field.h5")
    with pytest.raises(InvalidTypeError, match="Expected a LossField or a numeric"):
        analyze([["a", "b"], ["c", "d"]])

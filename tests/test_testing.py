import numpy as np
import pytest

from losstopo import Grid, LossField, analyze
from losstopo.errors import InvalidParameterError
from losstopo.testing import analytic_field, assert_field_allclose


@pytest.mark.parametrize("name", ["bowl", "double_well", "himmelblau", "bowl3d"])
def test_analytic_fields_have_their_known_critical_points(name):
    f = analytic_field(name, resolution=41 if name != "bowl3d" else 15)
    topo = analyze(f, min_persistence=1e-3, relative=True)
    assert topo.n_minima == f.attrs["minima"]
    assert topo.n_maxima == f.attrs["maxima"]
    assert topo.n_saddles == f.attrs["saddles"]


def test_assert_field_allclose_names_the_point():
    f = analytic_field("bowl", resolution=5)
    g = type(f)(f.values.copy(), f.grid)
    g.values[1, 2] += 1.0
    with pytest.raises(AssertionError, match=r"first at x=-0.5, y=0"):
        assert_field_allclose(g, f)
    h = type(f)(np.where(f.values > 1, np.nan, f.values), f.grid)
    assert_field_allclose(h, h)


def test_analytic_field_samples_its_function():
    f = analytic_field("himmelblau", resolution=11)
    np.testing.assert_array_equal(f.grid.axes["x"], np.linspace(-5, 5, 11))
    assert f.values[8, 7] == (3.0**2 + 2.0 - 11) ** 2 + (3.0 + 2.0**2 - 7) ** 2 == 0.0
    assert f.values[0, 0] == (25 - 5 - 11) ** 2 + (-5 + 25 - 7) ** 2
    assert analytic_field("bowl3d", resolution=3).values[1, 1, 1] == 0.0
    with pytest.raises(InvalidParameterError, match="choose one of bowl, double_well"):
        analytic_field("rosenbrock")


def test_assert_field_allclose_compares_grids_and_metrics():
    f = analytic_field("bowl", resolution=5)
    other_grid = Grid({"x": f.grid.axes["x"], "y": f.grid.axes["y"] * 2})
    with pytest.raises(AssertionError, match="grids differ"):
        assert_field_allclose(LossField(f.values, other_grid), f)
    with_acc = LossField(f.values, f.grid, metrics={"accuracy": np.ones(f.shape)})
    with pytest.raises(AssertionError, match=r"metrics differ: \['accuracy'\] vs \[\]"):
        assert_field_allclose(with_acc, f)
    worse = LossField(f.values, f.grid, metrics={"accuracy": np.full(f.shape, 0.5)})
    with pytest.raises(AssertionError, match="accuracy differs at 25 of 25 points"):
        assert_field_allclose(worse, with_acc)
    assert_field_allclose(LossField(f.values * (1 + 1e-8), f.grid), f)
    with pytest.raises(AssertionError, match="loss differs"):
        assert_field_allclose(LossField(f.values * (1 + 1e-8), f.grid), f, rtol=0.0)

import numpy as np
import pytest

from losstopo import analyze
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

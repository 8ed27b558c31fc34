import numpy as np
import pytest

from losstopo import Grid
from losstopo.errors import InvalidParameterError


def test_square_axes_and_centre():
    g = Grid.square(resolution=41, extent=2.0, n_components=2)
    assert g.shape == (41, 41)
    assert g.names == ("x", "y")
    ax = g.axes["x"]
    assert ax[0] == -2.0 and ax[-1] == 2.0 and ax[20] == 0.0
    # coordinates computed directly, not accumulated
    np.testing.assert_array_equal(ax, np.where(np.arange(41) == 20, 0.0, np.linspace(-2, 2, 41)))


def test_points_c_order():
    g = Grid({"a": [0.0, 1.0], "b": [10.0, 20.0, 30.0]})
    pts = g.points()
    assert pts.shape == (6, 2)
    np.testing.assert_array_equal(pts[1], [0.0, 20.0])
    np.testing.assert_array_equal(g.coords_of(4)[0], [1.0, 20.0])


@pytest.mark.parametrize("dims", [1, 2, 3, 4])
def test_any_dimension(dims):
    g = Grid.square(resolution=3, n_components=dims)
    assert g.points().shape == (3**dims, dims)


def test_around():
    g = Grid.around(np.array([[0.0, 0.0], [2.0, 4.0]]), resolution=5, margin=0.25)
    assert g.axes["x"][0] == pytest.approx(-0.5) and g.axes["y"][-1] == pytest.approx(5.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"resolution": 1}, "resolution"),
        ({"extent": 0.0}, "extent"),
        ({"n_components": 0}, "n_components"),
    ],
)
def test_square_bad_input(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        Grid.square(**kwargs)


def test_axis_must_increase():
    with pytest.raises(InvalidParameterError, match="strictly increasing"):
        Grid({"x": [0.0, 0.0, 1.0]})
    with pytest.raises(InvalidParameterError, match="at least 2"):
        Grid({"x": [0.0]})


def test_dims_is_the_old_name_of_n_components():
    with pytest.warns(FutureWarning, match="'dims' is renamed 'n_components'"):
        old = Grid.square(resolution=3, dims=3)
    assert old.names == Grid.square(resolution=3, n_components=3).names
    with pytest.raises(InvalidParameterError, match="give only 'n_components'"):
        Grid.square(resolution=3, n_components=3, dims=1)

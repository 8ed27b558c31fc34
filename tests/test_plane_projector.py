import numpy as np
import pytest
import torch
from sklearn.base import clone

from losstopo import ParameterSpace, PlaneProjector, random_directions
from losstopo.errors import InvalidParameterError, ShapeMismatchError
from losstopo.projectors import is_fitted


def test_plane_is_fitted_on_construction(tiny_model):
    d = random_directions(tiny_model, n_components=2, ignore=None, seed=0)
    proj = PlaneProjector(tiny_model, d)  # no fit
    assert is_fitted(proj)
    flat = ParameterSpace.from_module(tiny_model).flatten(tiny_model).numpy()
    np.testing.assert_array_equal(proj.center_, flat)
    np.testing.assert_array_equal(proj.components_, d.numpy())
    assert proj.n_components_ == 2 and proj.n_params_ == flat.size
    assert proj.center is tiny_model and proj.directions is d  # parameters stored as given
    assert proj.fit() is proj  # allowed: validates again
    np.testing.assert_array_equal(proj.components_, d.numpy())


def test_plane_roundtrip(tiny_model):
    d = random_directions(tiny_model, n_components=2, ignore=None, seed=0)
    proj = PlaneProjector(tiny_model, d)
    coords = np.array([[0.3, -0.7], [1.0, 2.0]])
    points = proj.inverse_transform(coords)
    expected = proj.center_.astype(np.float64) + coords @ d.numpy().astype(np.float64)
    np.testing.assert_array_equal(points, expected)
    np.testing.assert_allclose(proj.transform(points), coords, rtol=1e-10, atol=1e-10)


def test_plane_clone_rebuilds_the_same_plane(tiny_model):
    d = random_directions(tiny_model, n_components=2, ignore=None, seed=0)
    proj = PlaneProjector(tiny_model, d)
    copy = clone(proj)
    assert copy.center is not tiny_model and copy.directions is not d  # deep copies
    np.testing.assert_array_equal(copy.center_, proj.center_)
    np.testing.assert_array_equal(copy.components_, proj.components_)
    assert copy.fingerprint() == proj.fingerprint()
    assert copy.describe() == proj.describe()  # the directions' provenance is copied too


def test_plane_least_squares_for_off_plane_points():
    center = np.zeros(3)
    proj = PlaneProjector(center, np.array([[1.0, 0, 0], [1.0, 1.0, 0]]))
    coords = proj.transform(np.array([[2.0, 3.0, 5.0]]))
    np.testing.assert_allclose(coords, [[-1.0, 3.0]])


def test_zero_direction_refused(tiny_model):
    d = random_directions(tiny_model, n_components=2, seed=0)
    d[1] = 0
    with pytest.raises(InvalidParameterError, match="Direction 1 has zero norm"):
        PlaneProjector(tiny_model, d)


def test_dependent_directions_refused():
    with pytest.raises(InvalidParameterError, match="linearly dependent"):
        PlaneProjector(np.zeros(3), np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]]))


def test_direction_size_mismatch(tiny_model):
    with pytest.raises(ShapeMismatchError, match="same model"):
        PlaneProjector(tiny_model, torch.ones(2, 5))


def test_set_params_revalidates(tiny_model):
    proj = PlaneProjector(
        tiny_model, random_directions(tiny_model, n_components=2, ignore=None, seed=0)
    )
    with pytest.raises(ShapeMismatchError, match="same model"):
        proj.set_params(directions=torch.ones(2, 5))


def test_random_direction_provenance_reaches_the_field():
    from losstopo import Grid, evaluate

    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    data = (torch.randn(20, 4), torch.randint(0, 3, (20,)))
    dirs = random_directions(model, seed=7, normalization="layer")
    field = evaluate(
        model, data, "cross_entropy", PlaneProjector(model, dirs), Grid.square(3), progress=False
    )
    recorded = field.attrs["projector"]["directions"]
    assert recorded["seed"] == 7 and recorded["normalization"] == "layer"
    assert field.attrs["projector"]["name"] == "PlaneProjector"
    given = PlaneProjector(model, torch.randn(2, 15)).describe()
    assert given == {"name": "PlaneProjector", "n_components": 2, "directions": {"kind": "given"}}

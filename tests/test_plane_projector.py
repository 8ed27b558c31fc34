import numpy as np
import pytest
import torch

from losstopo import PlaneProjector, random_directions
from losstopo.errors import InvalidParameterError, ShapeMismatchError


def test_plane_roundtrip_and_attributes(tiny_model):
    d = random_directions(tiny_model, n=2, ignore=None, seed=0)
    proj = PlaneProjector(tiny_model, d)
    assert proj.fit() is proj
    assert proj.center_.shape == (d.shape[1],)
    assert proj.components_.shape == (2, d.shape[1])
    coords = np.array([[0.3, -0.7], [1.0, 2.0]])
    np.testing.assert_allclose(proj.transform(proj.inverse_transform(coords)), coords, atol=1e-6)


def test_plane_least_squares_for_off_plane_points():
    center = np.zeros(3)
    proj = PlaneProjector(center, np.array([[1.0, 0, 0], [1.0, 1.0, 0]])).fit()
    coords = proj.transform(np.array([[2.0, 3.0, 5.0]]))
    np.testing.assert_allclose(coords, [[-1.0, 3.0]])


def test_zero_direction_refused(tiny_model):
    d = random_directions(tiny_model, n=2, seed=0)
    d[1] = 0
    with pytest.raises(InvalidParameterError, match="Direction 1 has zero norm"):
        PlaneProjector(tiny_model, d).fit()


def test_direction_size_mismatch(tiny_model):
    with pytest.raises(ShapeMismatchError, match="same model"):
        PlaneProjector(tiny_model, torch.ones(2, 5)).fit()


def test_random_direction_provenance_reaches_the_field():
    import torch

    from losstopo import Grid, LossField, PlaneProjector, evaluate, random_directions

    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    data = (torch.randn(20, 4), torch.randint(0, 3, (20,)))
    dirs = random_directions(model, seed=7, normalization="layer")
    field = evaluate(
        model, data, "cross_entropy", PlaneProjector(model, dirs), Grid.square(3), progress=False
    )
    recorded = field.attrs["projector"]["directions"]
    assert recorded["seed"] == 7 and recorded["normalization"] == "layer"
    given = PlaneProjector(model, torch.randn(2, 15)).fit().describe()
    assert given["directions"] == {"kind": "given"}
    assert isinstance(field, LossField)

import pytest
import torch

from losstopo import ParameterSpace, random_directions
from losstopo.errors import InvalidParameterError, ShapeMismatchError
from losstopo.models import SmallCNN


def test_space_flatten_unflatten_roundtrip():
    model = SmallCNN(1, 10, width=4)
    space = ParameterSpace.from_module(model)
    vec = space.flatten(model)
    assert vec.numel() == sum(p.numel() for p in model.parameters())
    parts = space.unflatten(vec)
    for name, p in model.named_parameters():
        assert torch.equal(parts[name], p.detach())
    assert "1.running_mean" in space.buffer_names
    assert all("running" not in n for n in space.names)


def test_space_weights_only():
    model = SmallCNN(1, 10, width=4)
    space = ParameterSpace.from_module(model, include="weights")
    assert all(len(s) > 1 for s in space.shapes)
    assert "1.weight" in space.excluded


def test_unflatten_wrong_size():
    space = ParameterSpace.from_module(torch.nn.Linear(2, 2))
    with pytest.raises(ShapeMismatchError, match="6 parameters"):
        space.unflatten(torch.zeros(5))


def test_filter_normalization_matches_li_et_al():
    torch.manual_seed(0)
    model = SmallCNN(1, 10, width=4)
    d = random_directions(model, n_components=2, normalization="filter", ignore="biasbn", seed=3)
    space = ParameterSpace.from_module(model)
    for row in d:
        parts = space.unflatten(row)
        for name, p in model.named_parameters():
            if p.dim() <= 1:
                assert torch.count_nonzero(parts[name]) == 0
            else:
                dn = parts[name].reshape(p.shape[0], -1).norm(dim=1)
                wn = p.detach().reshape(p.shape[0], -1).norm(dim=1)
                torch.testing.assert_close(dn, wn, rtol=1e-5, atol=1e-6)


def test_layer_normalization_and_biasbn_copy():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    d = random_directions(model, n_components=1, normalization="layer", ignore=None, seed=1)[0]
    parts = ParameterSpace.from_module(model).unflatten(d)
    torch.testing.assert_close(parts["weight"].norm(), model.weight.detach().norm())
    torch.testing.assert_close(parts["bias"], model.bias.detach())


def test_seeded():
    model = torch.nn.Linear(4, 3)
    a = random_directions(model, seed=5)
    b = random_directions(model, seed=5)
    c = random_directions(model, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_orthogonalize():
    model = torch.nn.Linear(10, 10)
    d = random_directions(model, n_components=2, seed=0, orthogonalize=True).double()
    assert abs(float(d[0] @ d[1])) < 1e-6 * float(d[0].norm() * d[1].norm())


def test_bad_normalization():
    with pytest.raises(InvalidParameterError, match="'normalization' parameter must be one of"):
        random_directions(torch.nn.Linear(2, 2), normalization="unit")


def test_n_is_the_old_name_of_n_components():
    model = torch.nn.Linear(3, 2)
    with pytest.warns(FutureWarning, match="'n' is renamed 'n_components'"):
        old = random_directions(model, n=3, seed=1)
    assert torch.equal(old, random_directions(model, n_components=3, seed=1))

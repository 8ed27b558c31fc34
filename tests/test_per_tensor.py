"""Directions held per tensor (Li et al.'s layout, dicts by name), Li's normalizations, PCA ignore."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from losstopo import ParameterSpace, PCAProjector, PlaneProjector, Trajectory, random_directions
from losstopo.errors import InvalidParameterError, ShapeMismatchError


def _model_with_frozen_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    model[0].requires_grad_(False)  # a frozen feature layer: part of Li's lists, not of ours
    return model


def _per_tensor(model, flat_row, frozen_value=1.0):
    """A flat direction as Li's list (one array per model.parameters() entry, frozen included)."""
    parts = ParameterSpace.from_module(model).unflatten(torch.as_tensor(flat_row))
    return [
        parts[n].numpy().copy() if n in parts else np.full(tuple(p.shape), frozen_value)
        for n, p in model.named_parameters()
    ]


def test_li_layout_and_dicts_give_the_flat_plane():
    model = _model_with_frozen_layer()
    d = random_directions(model, n_components=2, ignore=None, seed=0).numpy()
    flat = PlaneProjector(model, d)
    with pytest.warns(UserWarning, match="frozen parameter.*0.weight, 0.bias"):
        li = PlaneProjector(model, [_per_tensor(model, d[0]), _per_tensor(model, d[1])])
    np.testing.assert_array_equal(li.components_, flat.components_)
    by_name = [
        {n: torch.as_tensor(v) for n, v in ParameterSpace.from_module(model).unflatten(row).items()}
        for row in torch.as_tensor(d)
    ]
    np.testing.assert_array_equal(PlaneProjector(model, by_name).components_, flat.components_)
    one = PlaneProjector(model, by_name[0])  # a single direction as one dict: a 1-D profile
    np.testing.assert_array_equal(one.components_, flat.components_[:1])
    # frozen entries of zero (the usual for a frozen tensor in a dict) pass without a warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PlaneProjector(model, [_per_tensor(model, d[0], frozen_value=0.0)])


def test_li_layout_mismatches_name_the_tensor():
    model = _model_with_frozen_layer()
    d = random_directions(model, n_components=1, ignore=None, seed=0).numpy()[0]
    li = _per_tensor(model, d)
    bad = [a.copy() for a in li]
    bad[3] = np.zeros((5, 5))
    with pytest.raises(ShapeMismatchError, match=r"'1.bias' of the direction 0 has shape \(5, 5\)"):
        PlaneProjector(model, [bad])
    with pytest.raises(ShapeMismatchError, match="holds 5 tensors but the model has 6"):
        PlaneProjector(model, [li[:5]])
    states = li[:4] + [np.zeros(4), np.ones(4), np.zeros(())] + li[4:]  # state_dict order
    with pytest.warns(UserWarning, match="frozen"):
        moved = PlaneProjector(model, [states])  # Li's dir_type="states": running_var moves
    assert moved.buffer_names_ == ("1.running_var",)
    with pytest.raises(ShapeMismatchError, match="holds 8 tensors.*6 parameters \\(9 state_dict"):
        PlaneProjector(model, [states[:8]])
    with pytest.raises(ShapeMismatchError, match="'1.nope' that is neither a parameter nor"):
        PlaneProjector(model, {"1.nope": torch.zeros(4)})
    with pytest.raises(ShapeMismatchError, match="no tensor for the parameter '1.weight'"):
        PlaneProjector(model, {"3.weight": torch.zeros(2, 4)})
    with pytest.raises(Exception, match="model as the centre"):
        PlaneProjector(ParameterSpace.from_module(model).flatten(model), [li])


def _li_normalized(d, w, norm):
    """Li et al.'s normalize_direction, re-written in numpy."""
    if norm == "weight":
        return d * w
    if norm == "dlayer":
        return d / (np.linalg.norm(d) + 1e-10)
    if norm == "dfilter":
        return np.stack([f / (np.linalg.norm(f) + 1e-10) for f in d])
    raise AssertionError(norm)


@pytest.mark.parametrize("norm", ["weight", "dfilter", "dlayer"])
def test_li_normalizations(norm):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(12, 2))
    d = random_directions(model, 1, normalization=norm, ignore="biasbn", seed=3)[0].double()
    raw = random_directions(model, 1, normalization="none", ignore=None, seed=3)[0].double()
    space = ParameterSpace.from_module(model)
    got, rnd = space.unflatten(d), space.unflatten(raw)
    for name, w in model.named_parameters():
        if w.dim() <= 1:
            assert torch.all(got[name] == 0)
            continue
        expected = _li_normalized(rnd[name].numpy(), w.detach().double().numpy(), norm)
        np.testing.assert_allclose(got[name].numpy(), expected, rtol=1e-6)
    if norm == "dlayer":
        assert got["0.weight"].norm().item() == pytest.approx(1.0)


def test_pca_ignore_biasbn_is_pca_of_the_weights():
    rng = np.random.default_rng(0)
    names, shapes = ("0.weight", "0.bias", "1.weight"), ((3, 4), (3,), (2, 3))
    points = rng.normal(size=(7, 21)).astype(np.float32)
    traj = Trajectory(points, np.arange(7), ["r"] * 7, names=names, shapes=shapes)
    pca = PCAProjector(2, ignore="biasbn").fit(traj)
    bias = slice(12, 15)
    assert np.all(pca.components_[:, bias] == 0)
    np.testing.assert_array_equal(pca.center_, points[-1].astype(np.float64))
    # independent: PCA (by SVD) of the weight entries alone
    weights = np.delete(points.astype(np.float64), np.r_[bias], axis=1)
    centered = weights - weights.mean(0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    for k in range(2):
        ours = np.delete(pca.components_[k], np.r_[bias])
        cos = abs(ours @ vt[k]) / np.linalg.norm(ours)
        assert cos == pytest.approx(1.0, abs=1e-8)
    with pytest.raises(InvalidParameterError, match="fit it on a Trajectory"):
        PCAProjector(2, ignore="biasbn").fit(points)


def _bn_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():  # running statistics that are not the defaults
        model[1].running_mean.copy_(torch.randn(6) * 0.3)
        model[1].running_var.copy_(torch.rand(6) + 0.5)
    return model.eval()


def test_states_directions_move_the_running_statistics():
    import copy

    from losstopo import Grid, evaluate
    from losstopo.directions import random_state_directions

    model = _bn_model()
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    dirs = random_state_directions(model, 2, normalization="filter", ignore=None, seed=1)
    assert set(dirs[0]) >= {"1.running_mean", "1.running_var"}
    before = copy.deepcopy(model.state_dict())
    plane = PlaneProjector(model, dirs)
    assert plane.buffer_names_ == ("1.running_mean", "1.running_var")
    grid = Grid({"x": np.array([-0.5, 0.0, 0.4]), "y": np.array([-0.3, 0.2])})
    field = evaluate(model, (x, y), "cross_entropy", plane, grid, metrics=(), device="cpu",
                     progress=False)  # fmt: skip
    assert field.attrs["batchnorm"].startswith("moved")
    assert field.attrs["projector"]["moves_buffers"] == ["1.running_mean", "1.running_var"]
    for i, a in enumerate(grid.axes["x"]):
        for j, b in enumerate(grid.axes["y"]):
            ref = copy.deepcopy(model)
            state = {
                k: (v + a * dirs[0][k] + b * dirs[1][k]) if k in dirs[0] else v
                for k, v in before.items()
            }
            ref.load_state_dict(state)
            with torch.no_grad():
                expected = torch.nn.functional.cross_entropy(ref.eval()(x), y).item()
            assert field.values[i, j] == pytest.approx(expected, rel=1e-5)
    for k, v in model.state_dict().items():  # the caller's model is untouched
        assert torch.equal(v, before[k])
    # the weights-only plane of the same parameter directions differs: the statistics matter
    weights_only = PlaneProjector(
        model, [{k: d[k] for k in dict(model.named_parameters())} for d in dirs]
    )
    assert weights_only.buffer_names_ == ()
    other = evaluate(model, (x, y), "cross_entropy", weights_only, grid, metrics=(), device="cpu",
                     progress=False)  # fmt: skip
    assert not np.allclose(other.values, field.values)
    assert other.attrs["projector"].get("moves_buffers") is None
    assert plane.fingerprint() != weights_only.fingerprint()
    with pytest.raises(InvalidParameterError, match="bn='recompute'"):
        evaluate(model, (x, y), "cross_entropy", plane, grid, bn="recompute", device="cpu",
                 progress=False)  # fmt: skip


def test_li_states_lists_and_the_biasbn_default():
    from losstopo.directions import random_state_directions

    model = _bn_model()
    dirs = random_state_directions(model, 2, ignore=None, seed=2)
    # Li's dir_type="states" list: one array per state_dict entry, num_batches_tracked included
    as_list = [
        [
            d[k].numpy() if k in d else np.zeros(tuple(v.shape))
            for k, v in model.state_dict().items()
        ]
        for d in dirs
    ]
    a, b = PlaneProjector(model, dirs), PlaneProjector(model, as_list)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.buffer_components_, b.buffer_components_)
    # Li's usual --xignore biasbn: the statistics' directions are zero, so nothing but weights move
    plain = PlaneProjector(model, random_state_directions(model, 2, ignore="biasbn", seed=2))
    assert plain.buffer_names_ == ()

"""evaluate / evaluate_points / train with data and losses as a new user holds them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from losstopo import (
    Grid,
    ParameterSpace,
    PlaneProjector,
    evaluate,
    evaluate_points,
    random_directions,
    train,
)
from losstopo.errors import DataError


def _classifier_at_a_minimum():
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    x = torch.randn(64, 3)
    with torch.no_grad():
        model.weight.copy_(torch.randn(4, 3))
        model.bias.zero_()
        y = model(x).argmax(1)
        model.weight.mul_(400.0)  # confident: per-sample losses far below the ulp of the logits
    return model, x, y


def test_a_user_passing_pytorchs_cross_entropy_gets_pytorchs_values():
    model, x, y = _classifier_at_a_minimum()
    center = ParameterSpace.from_module(model).flatten(model)[None]
    with torch.no_grad():
        theirs = F.cross_entropy(model(x), y).item()
        exact = F.cross_entropy(model(x).double(), y).item()
    user = evaluate_points(model, (x, y), F.cross_entropy, center, device="cpu").loss[0]
    builtin = evaluate_points(model, (x, y), "cross_entropy", center, device="cpu").loss[0]
    assert user == pytest.approx(theirs, rel=1e-6, abs=0)
    assert abs(builtin / exact - 1) < 1e-5
    assert abs(builtin / exact - 1) < abs(theirs / exact - 1) / 10  # so the two differ
    assert user != builtin


def test_single_output_model_is_refused_with_cross_entropy():
    model = nn.Linear(3, 1)
    x, y = torch.randn(16, 3), torch.zeros(16, dtype=torch.long)
    proj = PlaneProjector(model, random_directions(model, ignore=None))
    with pytest.raises(DataError, match="loss='mse'"):
        evaluate(model, (x, y), "cross_entropy", proj, Grid.square(3), device="cpu", progress=False)
    with pytest.raises(DataError, match="loss='mse'"):
        train(model, (x, y), epochs=1, progress=False)
    with pytest.raises(DataError, match="loss='mse'"):
        evaluate(
            model,
            (x, torch.randn(16, 1)),
            "cross_entropy",
            proj,
            Grid.square(3),
            device="cpu",
            progress=False,
        )


def test_map_style_dataset_in_evaluate_and_train():
    torch.manual_seed(0)
    x = torch.randn(96, 2)
    y = x @ torch.tensor([[1.5], [-2.0]]) + 0.3
    dataset = TensorDataset(x, y)
    model = nn.Linear(2, 1)
    traj = train(model, dataset, epochs=20, lr=0.05, batch_size=16, loss="mse", progress=False)
    loss = traj.metrics["loss"]
    assert np.isfinite(loss).all() and loss[-1] < 1e-3 * loss[0]
    steps = train(
        nn.Linear(2, 1),
        dataset,
        epochs=1,
        batch_size=16,
        loss="mse",
        record_unit="step",
        progress=False,
    ).steps
    assert steps.tolist() == list(range(7))  # 96 samples in batches of 16: 6 optimizer steps
    same = train(
        nn.Linear(2, 1), (x, y), epochs=2, lr=0.05, batch_size=16, loss="mse", progress=False
    )
    assert same.points.shape == (3, 3)
    proj = PlaneProjector(model, random_directions(model, ignore=None))
    grid = Grid.square(3, extent=0.5)
    kwargs = dict(metrics=(), device="cpu", progress=False, batch_size=32)
    a = evaluate(model, dataset, "mse", proj, grid, **kwargs)
    b = evaluate(model, DataLoader(dataset, batch_size=32), "mse", proj, grid, **kwargs)
    c = evaluate(model, (x, y), "mse", proj, grid, **kwargs)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-6)
    np.testing.assert_allclose(a.values, c.values, rtol=1e-6)


def test_train_records_the_initial_loss_without_changing_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    twin = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    twin.load_state_dict(before)
    traj = train(model, (x, y), epochs=2, batch_size=64, progress=False)
    assert np.isfinite(traj.metrics["loss"]).all()
    with torch.no_grad():
        twin.train()
        expected = F.cross_entropy(twin(x), y).item()  # one batch = the whole data, train mode
    assert traj.metrics["loss"][0] == pytest.approx(expected, rel=1e-5)
    # the step-0 pass changed nothing: a training run from the same state ends the same
    again = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    again.load_state_dict(before)
    assert before["1.running_mean"].abs().sum() == 0
    np.testing.assert_array_equal(
        traj.points, train(again, (x, y), epochs=2, batch_size=64, progress=False).points
    )


def test_every_field_states_its_batchnorm_policy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).eval()
    x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    proj = PlaneProjector(model, random_directions(model, ignore=None))
    grid = Grid.square(2)
    kw = dict(device="cpu", progress=False, metrics=())
    running = evaluate(model, (x, y), "cross_entropy", proj, grid, **kw)
    assert running.attrs["batchnorm"].startswith("running")
    recomputed = evaluate(
        model,
        (x, y),
        "cross_entropy",
        proj,
        grid,
        bn="recompute",
        bn_batches=2,
        bn_batch_size=16,
        **kw,
    )
    assert recomputed.attrs["batchnorm"] == (
        "recomputed: statistics re-estimated at every point from 2 batches of 16 samples"
    )
    plain = nn.Linear(3, 2)
    proj = PlaneProjector(plain, random_directions(plain, ignore=None))
    assert (
        evaluate(plain, (x, y), "cross_entropy", proj, grid, **kw)
        .attrs["batchnorm"]
        .startswith("none")
    )


def test_a_store_path_given_where_the_metrics_go_gets_one_sentence(tmp_path):
    from losstopo.errors import InvalidTypeError

    model, x, y = _classifier_at_a_minimum()
    proj = PlaneProjector(model, random_directions(model, ignore=None))
    for wrong in (tmp_path / "f.h5", 3):
        with pytest.raises(InvalidTypeError, match="list of metric names.*store=") as info:
            evaluate(model, (x, y), "cross_entropy", proj, Grid.square(3), wrong)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "f.h5").exists()

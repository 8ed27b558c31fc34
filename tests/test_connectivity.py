"""Straight paths, barriers, PathProfile files, Bezier/polychain curves, the connecting plane."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from losstopo import ParameterSpace, evaluate_points, train
from losstopo.connectivity import (
    Curve,
    PathProfile,
    barrier_of,
    connecting_plane,
    curve_weights,
    fit_curve,
    interpolate,
    plane_landscape,
)
from losstopo.datasets import digits
from losstopo.errors import (
    CheckpointError,
    DataError,
    FieldFormatError,
    InvalidParameterError,
    ShapeMismatchError,
)
from losstopo.models import MLP, SmallCNN


def _pair(seed_a=0, seed_b=1):
    torch.manual_seed(seed_a)
    a = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    torch.manual_seed(seed_b)
    b = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    return a, b


def _flat(model):
    return ParameterSpace.from_module(model).flatten(model)


def test_barrier_of_against_hand_computed_values():
    t = np.linspace(0, 1, 5)
    assert barrier_of(t, [1.0, 2.0, 3.0, 2.5, 2.0]) == (1.5, 0.5)  # line at t=0.5: 1.5
    assert barrier_of(t, [2.0, 1.0, 0.5, 1.0, 2.0]) == (0.0, 0.0)  # a valley: no barrier
    assert barrier_of(t, [np.log(3)] * 5) == (0.0, 0.0)


def test_interpolate_matches_direct_computation(tiny_data):
    a, b = _pair()
    before = {k: v.clone() for k, v in a.state_dict().items()}
    profile = interpolate(a, b, tiny_data, "cross_entropy", n_points=5, device="cpu")
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())
    x, y = tiny_data
    for i, t in enumerate(profile.t):
        mid = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        with torch.no_grad():
            for pm, pa, pb in zip(mid.parameters(), a.parameters(), b.parameters(), strict=True):
                pm.copy_((1 - t) * pa.double() + t * pb.double())
            out = mid(x)
        assert profile.loss[i] == pytest.approx(
            nn.functional.cross_entropy(out, y).item(), rel=1e-5
        )
        acc = (out.argmax(1) == y).double().mean().item()
        assert profile.metrics["accuracy"][i] == pytest.approx(acc)
    line = profile.loss[0] + profile.t * (profile.loss[-1] - profile.loss[0])
    assert profile.barrier == pytest.approx(max(0.0, (profile.loss - line).max()))
    assert profile.attrs["kind"] == "linear"


def test_endpoints_equal_evaluate_of_each_model(tiny_data):
    a, b = _pair()
    profile = interpolate(a, b, tiny_data, "cross_entropy", n_points=3)
    ends = evaluate_points(a, tiny_data, "cross_entropy", torch.stack([_flat(a), _flat(b)]))
    np.testing.assert_allclose(profile.loss[[0, -1]], ends.loss, rtol=1e-6)
    # a BatchNorm network in eval mode: each end with its own running statistics
    x = torch.rand(40, 1, 8, 8)
    y = torch.randint(0, 10, (40,))
    cnns = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        cnn = SmallCNN(1, 10, width=4)
        cnn.train()
        with torch.no_grad():
            cnn(x * (seed + 1))  # different statistics per model
        cnns.append(cnn.eval())
    profile = interpolate(*cnns, (x, y), "cross_entropy", n_points=3, bn="eval")
    for end, cnn in zip((0, -1), cnns, strict=True):
        direct = evaluate_points(cnn, (x, y), "cross_entropy", _flat(cnn)[None]).loss[0]
        assert profile.loss[end] == pytest.approx(direct, rel=1e-5)


def test_recompute_bn_matches_manual_reestimation():
    torch.manual_seed(0)
    a, b = SmallCNN(1, 10, width=4), SmallCNN(1, 10, width=4)
    x, y = torch.rand(40, 1, 8, 8), torch.randint(0, 10, (40,))
    profile = interpolate(a, b, (x, y), "cross_entropy", n_points=3, metrics=())
    mid = SmallCNN(1, 10, width=4)
    with torch.no_grad():
        for pm, pa, pb in zip(mid.parameters(), a.parameters(), b.parameters(), strict=True):
            pm.copy_(0.5 * pa + 0.5 * pb)
        for m in mid.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        mid.train()(x)  # 40 samples: one batch of the default 4 x 256
        expected = nn.functional.cross_entropy(mid.eval()(x), y).item()
    assert profile.loss[1] == pytest.approx(expected, rel=1e-5)
    assert profile.attrs["bn"] == "recompute"


def test_identical_models_have_zero_barrier(tiny_data):
    a, _ = _pair()
    profile = interpolate(a, a, tiny_data, "cross_entropy", n_points=7)
    assert profile.barrier == 0.0 and np.all(profile.loss == profile.loss[0])


def test_profile_hdf5_round_trip_is_exact(tmp_path, tiny_data):
    a, b = _pair()
    profile = interpolate(a, b, tiny_data, "cross_entropy", n_points=9)
    profile.save(tmp_path / "p.h5")
    back = PathProfile.load(tmp_path / "p.h5")
    assert back.equals(profile)
    assert back.barrier == profile.barrier and back.attrs == profile.attrs
    np.testing.assert_array_equal(back.metrics["accuracy"], profile.metrics["accuracy"])
    rows = np.loadtxt(profile.to_csv(tmp_path / "p.csv"), delimiter=",", skiprows=1)
    np.testing.assert_array_equal(rows[:, 1], profile.loss)
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    with pytest.raises(FieldFormatError, match="not a readable HDF5 file"):
        PathProfile.load(tmp_path / "x.h5")


def test_curve_geometry_and_save_load(tmp_path, tiny_data):
    np.testing.assert_allclose(curve_weights("bezier", [0.3]).sum(), 1.0)
    np.testing.assert_allclose(curve_weights("polychain", [0.5]), [[0.0, 1.0, 0.0]])
    a, b = _pair()
    curve = fit_curve(a, b, tiny_data, "cross_entropy", epochs=2, progress=False)
    pts = curve.points(5)
    np.testing.assert_array_equal(pts[0], _flat(a).double().numpy())
    np.testing.assert_array_equal(pts[-1], _flat(b).double().numpy())
    assert not np.allclose(curve.bend, (pts[0] + pts[-1]) / 2)  # the bend moved
    curve.save(tmp_path / "c.pt")
    back = Curve.load(tmp_path / "c.pt", a)
    np.testing.assert_array_equal(back.bend, curve.bend)
    assert back.kind == "bezier" and back.attrs == curve.attrs
    prof = curve.evaluate(tiny_data, "cross_entropy", n_points=5)
    line = interpolate(a, b, tiny_data, "cross_entropy", n_points=5)
    np.testing.assert_allclose(prof.loss[[0, -1]], line.loss[[0, -1]], rtol=1e-6)
    torch.save({"w": [1, 2]}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="is not a curve"):
        Curve.load(tmp_path / "bad.pt", a)


def test_polychain_and_batchnorm_curve():
    torch.manual_seed(0)
    a, b = SmallCNN(1, 10, width=4), SmallCNN(1, 10, width=4)
    x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    curve = fit_curve(a, b, (x, y), "cross_entropy", kind="polychain", epochs=1, progress=False)
    prof = curve.evaluate((x, y), "cross_entropy", n_points=5)
    assert prof.kind == "polychain" and prof.attrs["bn"] == "recompute"
    np.testing.assert_allclose(curve.at([0.5])[0], curve.bend)


@pytest.fixture(scope="module")
def digits_pair():
    x, y = digits("train")
    x, y = x[:600], y[:600]
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = MLP(64, (32,), 10)
        train(m, (x, y), epochs=8, lr=0.1, seed=seed, progress=False)
        models.append(m)
    return models, (x, y)


def test_bezier_curve_lowers_the_barrier_of_two_digits_mlps(digits_pair):
    (a, b), data = digits_pair
    line = interpolate(a, b, data, "cross_entropy", n_points=11)
    curve = fit_curve(a, b, data, "cross_entropy", epochs=8, progress=False)
    bent = curve.evaluate(data, "cross_entropy", n_points=11)
    assert line.barrier > 0.1
    assert bent.barrier <= 0.25 * line.barrier
    assert bent.loss.max() <= 2 * max(bent.endpoint_losses)


def test_connecting_plane_and_its_landscape(digits_pair, tmp_path):
    (a, b), data = digits_pair
    curve = fit_curve(a, b, data, "cross_entropy", epochs=2, progress=False)
    plane = connecting_plane(curve)
    c = plane.components_.astype(np.float64)
    np.testing.assert_allclose(c @ c.T, np.eye(2), atol=1e-10)
    ends = plane.transform(np.stack([curve.start, curve.end, curve.bend]))
    dist = np.linalg.norm(curve.end - curve.start)
    np.testing.assert_allclose(ends[:2], [[0, 0], [dist, 0]], atol=1e-6 * dist)
    assert ends[2, 1] > 0
    np.testing.assert_allclose(plane.inverse_transform(ends[2:]), curve.bend[None], atol=1e-4)
    x, y = data
    small = (x[:200], y[:200])
    line = interpolate(a, b, small, "cross_entropy", n_points=5)
    bent = curve.evaluate(small, "cross_entropy", n_points=7)
    field = plane_landscape(curve, small, "cross_entropy", resolution=5, profiles=[line, bent])
    assert field.values.shape == (5, 5) and set(field.paths) == {"linear", "bezier"}
    np.testing.assert_array_equal(field.paths["bezier"].loss, bent.loss)
    assert len(field.paths["linear"]) == 5

    from losstopo.export import write_connectivity
    from losstopo.plot import plot_barrier

    names = [p.name for p in write_connectivity(field, tmp_path, {"linear": line, "bezier": bent})]
    assert "paths.vtp" in names and "profiles.vtp" in names
    assert "profiles.vtp" in (tmp_path / "landscape.vtm").read_text()
    fig = plot_barrier({"linear": line, "bezier": bent})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["linear", "bezier"]


def test_bad_inputs(tiny_data):
    a, b = _pair()
    with pytest.raises(InvalidParameterError, match="'n_points' parameter must be an int >= 2"):
        interpolate(a, b, tiny_data, "cross_entropy", n_points=1)
    empty = DataLoader(TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long)))
    with pytest.raises(DataError, match="empty"):
        interpolate(a, b, empty, "cross_entropy")
    with pytest.raises(DataError, match="empty"):
        fit_curve(a, b, empty, "cross_entropy", progress=False)
    other = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 3))
    with pytest.raises(ShapeMismatchError, match="differ first at tensor '0.weight'"):
        interpolate(a, other, tiny_data, "cross_entropy")
    with pytest.raises(InvalidParameterError, match="'kind' parameter must be one of"):
        fit_curve(a, b, tiny_data, "cross_entropy", kind="spline", progress=False)
    with pytest.raises(InvalidParameterError, match="'bn' parameter"):
        interpolate(a, b, tiny_data, "cross_entropy", bn="train")

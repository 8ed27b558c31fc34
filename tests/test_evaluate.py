import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from losstopo import Grid, ParameterSpace, PlaneProjector, evaluate, random_directions
from losstopo.errors import DataError, EvaluationError, ShapeMismatchError
from losstopo.models import MLP, SmallCNN


def reference_losses(model, data, proj, grid, loss="ce"):
    """Straightforward reference: load each point's parameters into a copy, one forward pass."""
    net = copy.deepcopy(model).eval()
    space = ParameterSpace.from_module(net)
    x, y = data
    out = []
    for coords in grid.points():
        vec = torch.as_tensor(proj.inverse_transform(coords[None])[0], dtype=torch.float32)
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(space.unflatten(vec)[name])
            o = net(x)
            out.append(float(torch.nn.functional.cross_entropy(o, y)))
    return np.array(out).reshape(grid.shape)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bitwise_same(model, snap):
    for k, v in model.state_dict().items():
        assert torch.equal(v, snap[k]), k


@pytest.mark.parametrize(
    "model_fn, images", [(lambda: MLP(64, (16,), 10), False), (lambda: SmallCNN(1, 10, 4), True)]
)
def test_values_match_reference(model_fn, images):
    torch.manual_seed(0)
    model = model_fn().eval()
    x = torch.rand(120, 1, 8, 8) if images else torch.rand(120, 64)
    y = torch.randint(0, 10, (120,))
    proj = PlaneProjector(model, random_directions(model, seed=0))
    grid = Grid.square(resolution=5, extent=0.8)
    snap = snapshot(model)
    field = evaluate(model, (x, y), "cross_entropy", proj, grid, progress=False)
    assert_bitwise_same(model, snap)
    ref = reference_losses(model, (x, y), proj, grid)
    np.testing.assert_allclose(field.values, ref, rtol=1e-5)
    assert field.attrs["engine"].startswith("sequential")


def test_first_layer_split_equals_plain(tiny_model, tiny_data, monkeypatch):
    from losstopo.engine import FirstLayerSplit

    proj = PlaneProjector(tiny_model, random_directions(tiny_model, seed=0))
    grid = Grid.square(resolution=7)
    fast = evaluate(tiny_model, tiny_data, "cross_entropy", proj, grid, progress=False)
    monkeypatch.setattr(FirstLayerSplit, "build", classmethod(lambda cls, *a, **k: None))
    slow = evaluate(tiny_model, tiny_data, "cross_entropy", proj, grid, progress=False)
    assert fast.attrs["engine"] == "sequential+first-layer-split"
    assert slow.attrs["engine"] == "sequential"
    np.testing.assert_allclose(fast.values, slow.values, rtol=1e-5)
    np.testing.assert_array_equal(fast.metrics["accuracy"], slow.metrics["accuracy"])


def test_vmap_equals_sequential():
    torch.manual_seed(0)
    model = SmallCNN(1, 10, 4).eval()
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    proj = PlaneProjector(model, random_directions(model, seed=1))
    grid = Grid.square(resolution=5)
    a = evaluate(model, (x, y), "cross_entropy", proj, grid, mode="sequential", progress=False)
    b = evaluate(
        model, (x, y), "cross_entropy", proj, grid, mode="vmap", vmap_size=4, progress=False
    )
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5)
    np.testing.assert_allclose(a.metrics["accuracy"], b.metrics["accuracy"])


def test_weighted_mean_over_unequal_batches(tiny_model, tiny_data):
    proj = PlaneProjector(tiny_model, random_directions(tiny_model, seed=0))
    grid = Grid.square(resolution=3)
    whole = evaluate(tiny_model, tiny_data, "cross_entropy", proj, grid, progress=False)
    loader = DataLoader(TensorDataset(*tiny_data), batch_size=16)  # 16, 16, 16, 2
    batched = evaluate(tiny_model, loader, "cross_entropy", proj, grid, progress=False)
    custom = evaluate(
        tiny_model, loader, torch.nn.functional.cross_entropy, proj, grid, progress=False
    )
    streamed = evaluate(
        tiny_model, loader, "cross_entropy", proj, grid, progress=False, data_memory_cap=10
    )
    for other in (batched, custom, streamed):
        np.testing.assert_allclose(other.values, whole.values, rtol=1e-5)


def test_mse_and_batchnorm_recompute():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    )
    x = torch.randn(40, 3)
    y = torch.randn(40, 1)
    snap = snapshot(model)
    proj = PlaneProjector(model, random_directions(model, seed=0))
    grid = Grid.square(resolution=3)
    f = evaluate(model, (x, y), "mse", proj, grid, bn="recompute", progress=False)
    assert_bitwise_same(model, snap)
    assert "accuracy" not in f.metrics and f.attrs["metrics_skipped"] == ["accuracy"]
    # at the centre, recomputed statistics over all the data equal train-mode batch statistics
    net = copy.deepcopy(model).train()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        net(x)
        net.eval()
        expected = float(torch.nn.functional.mse_loss(net(x), y))
    assert f.values[1, 1] == pytest.approx(expected, rel=1e-5)


def test_model_never_modified_after_exception(tiny_data):
    class Exploding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(6, 3)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 5:
                raise ValueError("boom")
            return self.lin(x)

    torch.manual_seed(0)
    model = Exploding()
    snap = snapshot(model)
    proj = PlaneProjector(model, random_directions(model, seed=0, ignore=None))
    with pytest.raises(EvaluationError, match=r"grid point \d+ \(x=.*boom"):
        evaluate(
            model,
            tiny_data,
            "cross_entropy",
            proj,
            Grid.square(resolution=4),
            progress=False,
            batch_size=50,
        )
    assert_bitwise_same(model, snap)


def test_nonfinite_losses_recorded_and_counted(tiny_model, tiny_data):
    proj = PlaneProjector(tiny_model, random_directions(tiny_model, seed=0) * 1e38)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = evaluate(
            tiny_model,
            tiny_data,
            "cross_entropy",
            proj,
            Grid.square(resolution=3, extent=10.0),
            progress=False,
        )
    assert f.attrs["n_nonfinite"] == int((~np.isfinite(f.values)).sum()) > 0
    assert sum("non-finite" in str(w.message) for w in caught) == 1


def test_bad_inputs(tiny_model, tiny_data):
    proj = PlaneProjector(tiny_model, random_directions(tiny_model, seed=0))
    x, y = tiny_data
    with pytest.raises(DataError, match="empty"):
        evaluate(tiny_model, (x[:0], y[:0]), "cross_entropy", proj, Grid.square(3), progress=False)
    with pytest.raises(DataError, match="int64"):
        evaluate(tiny_model, (x, y.float()), "cross_entropy", proj, Grid.square(3), progress=False)
    with pytest.raises(DataError, match="float"):
        evaluate(tiny_model, (x, y), "mse", proj, Grid.square(3), progress=False)
    with pytest.raises(ShapeMismatchError, match="2 components but the grid has 3 axes"):
        evaluate(
            tiny_model, tiny_data, "cross_entropy", proj, Grid.square(3, dims=3), progress=False
        )
    with pytest.raises(EvaluationError, match="fails on the data"):
        evaluate(
            tiny_model,
            (torch.randn(10, 5), y[:10]),
            "cross_entropy",
            proj,
            Grid.square(3),
            progress=False,
        )


def test_trajectory_paths(tiny_model, tiny_data):
    from losstopo import PCAProjector, train

    traj = train(tiny_model, tiny_data, epochs=4, seed=0, progress=False, batch_size=10)
    pca = PCAProjector(2).fit(traj)
    grid = Grid.around(pca.transform(traj), resolution=5)
    f = evaluate(tiny_model, tiny_data, "cross_entropy", pca, grid, trajectory=traj, progress=False)
    path = f.paths["run0"]
    assert len(path) == len(traj)
    np.testing.assert_allclose(path.coords[-1], 0.0, atol=1e-5)  # the last checkpoint is the centre
    assert path.loss[-1] == pytest.approx(
        float(torch.nn.functional.cross_entropy(tiny_model(tiny_data[0]), tiny_data[1])), rel=1e-5
    )


class CurvedProjector:
    """A non-linear 1-D projector: ``center + a d1 + a**2 d2`` (decoded, not linear)."""

    linear = False
    n_components_ = 1

    def __init__(self, center, d1, d2):
        self.center, self.d1, self.d2 = (t.double().numpy() for t in (center, d1, d2))

    def inverse_transform(self, coords):
        a = np.asarray(coords, dtype=np.float64).reshape(-1, 1)
        return self.center + a * self.d1 + a**2 * self.d2

    def transform(self, X):
        return np.zeros((len(X), 1))

    def fingerprint(self):
        return "curved"

    def describe(self):
        return {"name": "CurvedProjector"}


@pytest.mark.parametrize("mode", ["sequential", "vmap"])
def test_nonlinear_projector_decoded_in_blocks(tiny_model, tiny_data, mode, monkeypatch):
    from losstopo import engine

    space = ParameterSpace.from_module(tiny_model)
    d = random_directions(tiny_model, n=2, seed=0, ignore=None)
    proj = CurvedProjector(space.flatten(tiny_model), d[0], d[1])
    grid = Grid({"a": np.linspace(-1, 1, 11)})
    monkeypatch.setattr(
        engine.Evaluator, "decode_bytes", 8 * space.n_params * 3
    )  # 3 points per block
    field = evaluate(
        tiny_model, tiny_data, "cross_entropy", proj, grid, mode=mode, vmap_size=2, progress=False
    )
    ref = reference_losses(tiny_model, tiny_data, proj, grid)
    np.testing.assert_allclose(field.values, ref, rtol=1e-5)


def test_nonlinear_projector_with_batch_size_tuning(tiny_model, tiny_data):
    """A grid large enough to tune the batch size decodes the centre for the timing runs."""
    from losstopo.engine import TUNE_MIN_POINTS

    space = ParameterSpace.from_module(tiny_model)
    d = random_directions(tiny_model, n=2, seed=1, ignore=None)
    proj = CurvedProjector(space.flatten(tiny_model), d[0], d[1])
    grid = Grid({"a": np.linspace(-1, 1, TUNE_MIN_POINTS + 1)})
    field = evaluate(tiny_model, tiny_data, "cross_entropy", proj, grid, progress=False)
    ref = reference_losses(tiny_model, tiny_data, proj, grid)
    np.testing.assert_allclose(field.values, ref, rtol=1e-5)


def test_batchnorm_recompute_independent_of_evaluation_batch_size():
    """Re-estimated statistics use their own fixed batches, not the (tuned) evaluation batch."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    )
    x, y = torch.randn(64, 3), torch.randn(64, 1)
    proj = PlaneProjector(model, random_directions(model, seed=0))
    grid = Grid.square(resolution=3)
    fields = [
        evaluate(
            model,
            (x, y),
            "mse",
            proj,
            grid,
            bn="recompute",
            bn_batch_size=16,
            batch_size=bs,
            progress=False,
        )  # fmt: skip
        for bs in (8, 64)
    ]
    np.testing.assert_allclose(fields[0].values, fields[1].values, rtol=1e-6)


def test_cross_entropy_and_accuracy_match_torch_including_overflow():
    """The fused per-point loss/accuracy equals torch's, also where a logit overflows."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5))
    x, y = torch.randn(30, 4), torch.randint(1, 5, (30,))
    x[:, 0] = 10.0
    direction = torch.zeros(1, 25)
    direction[0, 0] = 1.0  # the weight from input 0 to class 0
    proj = PlaneProjector(model, direction)
    grid = Grid({"a": np.array([0.0, 0.5, 1e38])})  # logit 10 * 1e38 overflows float32 to +inf
    with pytest.warns(RuntimeWarning, match="non-finite"):
        f = evaluate(model, (x, y), "cross_entropy", proj, grid, progress=False)
    with torch.no_grad():
        for i, a in enumerate(grid.axes["a"][:2]):
            net = copy.deepcopy(model)
            net[0].weight[0, 0] += float(a)
            out = net(x)
            assert f.values[i] == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-6)
            acc = float((out.argmax(1) == y).double().mean())
            assert f.metrics["accuracy"][i] == pytest.approx(acc)
    # a +inf logit: torch's cross_entropy gives NaN, and so does the engine (non-finite policy)
    assert np.isnan(f.values[2])
    assert f.metrics["accuracy"][2] == 0.0  # every prediction is class 0, no target is

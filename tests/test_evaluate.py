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
    from losstopo.engine.graph_split import GraphSplit

    proj = PlaneProjector(tiny_model, random_directions(tiny_model, seed=0))
    grid = Grid.square(resolution=7)
    fast = evaluate(tiny_model, tiny_data, "cross_entropy", proj, grid, progress=False)
    monkeypatch.setattr(FirstLayerSplit, "build", classmethod(lambda cls, *a, **k: None))
    monkeypatch.setattr(GraphSplit, "build", classmethod(lambda cls, *a, **k: None))
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
            tiny_model,
            tiny_data,
            "cross_entropy",
            proj,
            Grid.square(3, n_components=3),
            progress=False,
        )
    with pytest.raises(EvaluationError, match=r"loss returns \(\d+,\), not one number"):
        evaluate(
            tiny_model,
            (x, y),
            lambda out, t: torch.nn.functional.cross_entropy(out, t, reduction="none"),
            proj,
            Grid.square(3),
            progress=False,
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
    d = random_directions(tiny_model, n_components=2, seed=0, ignore=None)
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
    d = random_directions(tiny_model, n_components=2, seed=1, ignore=None)
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


def _functional_loop(model, data, rows):
    """Independent reference: torch.func.functional_call per row; mean cross-entropy, accuracy."""
    from torch.func import functional_call

    space = ParameterSpace.from_module(model)
    net = copy.deepcopy(model).eval()
    x, y = data
    losses, accs = [], []
    for row in rows:
        params = space.unflatten(torch.as_tensor(row, dtype=torch.float32))
        with torch.no_grad():
            out = functional_call(net, params, (x,))
        losses.append(float(F.cross_entropy(out, y)))
        accs.append(float((out.argmax(1) == y).double().mean()))
    return np.array(losses), np.array(accs)


def _bn_cnn():
    model = SmallCNN(1, 10, 4)
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


@pytest.mark.parametrize(
    "model_fn, images, engine_name",
    [
        (lambda: MLP(64, (16,), 10), False, "sequential+first-layer-split"),
        (_bn_cnn, True, "+bn-folded"),
    ],
)
def test_evaluate_points_equal_evaluate_and_a_functional_loop(model_fn, images, engine_name):
    from losstopo import evaluate_points

    torch.manual_seed(0)
    model = model_fn()
    x = torch.rand(90, 1, 8, 8) if images else torch.rand(90, 64)
    y = torch.randint(0, 10, (90,))
    proj = PlaneProjector(model, random_directions(model, seed=0, ignore=None))
    grid = Grid.square(resolution=5, extent=0.8)
    field = evaluate(model, (x, y), "cross_entropy", proj, grid, progress=False)
    assert engine_name in field.attrs["engine"]
    rows = proj.inverse_transform(grid.points())
    snap = snapshot(model)
    values = evaluate_points(model, (x, y), "cross_entropy", rows, metrics=["accuracy"])
    assert_bitwise_same(model, snap)
    np.testing.assert_allclose(values.loss, field.values.ravel(), rtol=1e-5)
    np.testing.assert_array_equal(values.metrics["accuracy"], field.metrics["accuracy"].ravel())
    ref_loss, ref_acc = _functional_loop(model, (x, y), rows)
    np.testing.assert_allclose(values.loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(values.metrics["accuracy"], ref_acc)
    # a tensor and a Trajectory give the same values
    from losstopo import Trajectory

    as_tensor = evaluate_points(model, (x, y), "cross_entropy", torch.as_tensor(rows))
    traj = Trajectory(rows.astype(np.float32), np.arange(len(rows)), np.full(len(rows), "r"))
    as_traj = evaluate_points(model, (x, y), "cross_entropy", traj)
    np.testing.assert_array_equal(as_tensor.loss, values.loss)
    np.testing.assert_allclose(as_traj.loss, values.loss, rtol=1e-6)
    assert as_tensor.metrics == {}


def test_evaluate_points_refusals(tiny_model, tiny_data):
    from losstopo import evaluate_points
    from losstopo.errors import InvalidParameterError

    center = ParameterSpace.from_module(tiny_model).flatten(tiny_model)
    with pytest.raises(ShapeMismatchError, match="10 parameters but the model has 83"):
        evaluate_points(tiny_model, tiny_data, "cross_entropy", torch.zeros(2, 10))
    with pytest.raises(InvalidParameterError, match="'top5'.*'accuracy'"):
        evaluate_points(tiny_model, tiny_data, "cross_entropy", center, metrics=["top5"])
    x, _ = tiny_data
    with pytest.raises(InvalidParameterError, match="'accuracy' does not apply to the loss 'mse'"):
        evaluate_points(tiny_model, (x, torch.randn(50, 3)), "mse", center, metrics=["accuracy"])
    with pytest.raises(EvaluationError, match="fails on the data"):
        evaluate_points(
            tiny_model, (torch.randn(10, 5), tiny_data[1][:10]), "cross_entropy", center
        )


def test_metric_registry(tiny_model, tiny_data, monkeypatch):
    """A registered metric is computed by every engine path, as the mean of its scores."""
    from losstopo import evaluate_points
    from losstopo.engine import METRICS, Metric
    from losstopo.errors import InvalidParameterError

    def margin(out, y):  # per-sample margin of the target logit over the mean logit
        return out.gather(-1, y.expand(out.shape[:-1])[..., None]).squeeze(-1) - out.mean(-1)

    monkeypatch.setitem(METRICS, "margin", Metric("margin", margin))
    proj = PlaneProjector(tiny_model, random_directions(tiny_model, seed=0))
    grid = Grid.square(resolution=3)
    metrics = ("margin", "accuracy")
    seq = evaluate(tiny_model, tiny_data, "cross_entropy", proj, grid, metrics, progress=False)
    vm = evaluate(
        tiny_model, tiny_data, "cross_entropy", proj, grid, metrics, mode="vmap", progress=False
    )
    rows = proj.inverse_transform(grid.points())
    pts = evaluate_points(tiny_model, tiny_data, "cross_entropy", rows, metrics=metrics)
    space = ParameterSpace.from_module(tiny_model)
    x, y = tiny_data
    expected = []
    for row in rows:
        net = copy.deepcopy(tiny_model)
        torch.nn.utils.vector_to_parameters(
            torch.as_tensor(row, dtype=torch.float32), net.parameters()
        )
        with torch.no_grad():
            expected.append(float(margin(net(x), y).mean()))
    assert space.n_params == len(rows[0])
    for values in (
        seq.metrics["margin"].ravel(),
        vm.metrics["margin"].ravel(),
        pts.metrics["margin"],
    ):
        np.testing.assert_allclose(values, expected, rtol=1e-5)
    np.testing.assert_array_equal(vm.metrics["accuracy"], seq.metrics["accuracy"])
    del METRICS["margin"]
    with pytest.raises(InvalidParameterError, match="not a registered metric.*'accuracy'"):
        evaluate(tiny_model, tiny_data, "cross_entropy", proj, grid, ("margin",), progress=False)


def test_default_device(monkeypatch, tiny_model, tiny_data):
    """CUDA (the local rank's GPU under torchrun) when available, else CPU; used everywhere."""
    from losstopo import evaluate_points
    from losstopo.engine import default_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert default_device() == torch.device("cuda", 1)
    monkeypatch.undo()

    calls = []

    def spy():
        calls.append(1)
        return torch.device("cpu")

    monkeypatch.setattr("losstopo.engine.device.default_device", spy)
    proj = PlaneProjector(tiny_model, random_directions(tiny_model, seed=0))
    f = evaluate(tiny_model, tiny_data, "cross_entropy", proj, Grid.square(3), progress=False)
    assert calls == [1] and f.attrs["device"] == "cpu"
    center = ParameterSpace.from_module(tiny_model).flatten(tiny_model)
    evaluate_points(tiny_model, tiny_data, "cross_entropy", center)
    assert calls == [1, 1]


def test_engine_takes_decoders(tiny_model, tiny_data):
    """A linear decoder (center, components) gets the fast paths; a callable is decoded."""
    import types

    from losstopo.data import EvalData, resolve_loss
    from losstopo.engine import Evaluator
    from losstopo.evaluate import as_decoder

    proj = PlaneProjector(tiny_model, random_directions(tiny_model, seed=0)).fit()
    space = ParameterSpace.from_module(tiny_model)
    fn, name = resolve_loss("cross_entropy")
    data = EvalData.from_any(tiny_data, name)
    coords = np.array([[0.0, 0.0], [0.3, -0.7], [1.0, 0.5]])
    linear = as_decoder(proj)
    assert hasattr(linear, "center") and hasattr(linear, "components")
    decoders = {
        "linear": linear,
        "namespace": types.SimpleNamespace(center=proj.center_, components=proj.components_),
        "callable": proj.inverse_transform,
    }
    results = {}
    for key, decoder in decoders.items():
        ev = Evaluator(
            tiny_model, space, decoder, data, fn, name, (), torch.device("cpu"), n_components=2
        )
        ev.prepare(len(coords))
        results[key] = ev.evaluate(coords)[:, 0]
        assert ev.engine_name == (
            "sequential" if key == "callable" else "sequential+first-layer-split"
        )
    expected, _ = _functional_loop(tiny_model, tiny_data, proj.inverse_transform(coords))
    for key, values in results.items():
        np.testing.assert_allclose(values, expected, rtol=1e-5, err_msg=key)

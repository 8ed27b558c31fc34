"""The torch.fx fast paths (losstopo.engine.graph, graph_split) against a plain per-point loop."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from losstopo import Grid, ParameterSpace, PlaneProjector, evaluate, random_directions
from losstopo.engine.graph import fold_graph, trace
from losstopo.engine.tuning import choose
from losstopo.models import resnet20


def _randomize_stats(net):
    g = torch.Generator().manual_seed(3)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(1 + 0.3 * torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(0.2 * torch.randn(m.num_features, generator=g))
    return net.eval()


def plain_loop(model, proj, grid, x, y):
    """Each point's parameters loaded into a copy, one forward pass on a fresh copy of the data."""
    net = copy.deepcopy(model).eval()
    space = ParameterSpace.from_module(net)
    out = []
    for coords in grid.points():
        vec = torch.as_tensor(proj.inverse_transform(coords[None])[0], dtype=torch.float32)
        parts = space.unflatten(vec)
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(parts[name])
            out.append(float(nn.functional.cross_entropy(net(x.clone()), y)))
    return np.array(out)


def _run(model, x, y, ignore="biasbn", resolution=3):
    proj = PlaneProjector(model, random_directions(model, n_components=2, seed=0, ignore=ignore))
    grid = Grid.square(resolution=resolution, extent=0.5)
    snap = {k: v.clone() for k, v in model.state_dict().items()}
    x_before = x.clone()
    field = evaluate(model, (x, y), "cross_entropy", proj, grid, progress=False, device="cpu")
    for k, v in model.state_dict().items():
        assert torch.equal(v, snap[k]), k  # the user's model is never modified
    assert torch.equal(x, x_before)  # nor the user's data
    np.testing.assert_allclose(
        field.values.ravel(), plain_loop(model, proj, grid, x, y), rtol=2e-5, atol=1e-6
    )
    return field


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("ignore", ["biasbn", None])
def test_resnet20_folded_and_split_equal_the_plain_loop(skip, ignore):
    torch.manual_seed(0)
    model = _randomize_stats(resnet20(skip=skip))
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 10, (6,))
    field = _run(model, x, y, ignore=ignore)
    paths = field.attrs["fast_paths"]
    assert paths["path"] == "fx"
    n_bn = 21 if skip else 19  # the shortcuts' BatchNorms too
    assert f"{n_bn} BatchNorm(s) folded" in paths["detail"]
    assert field.attrs["engine"].endswith("+bn-folded")
    # the split needs the first BatchNorm's scale fixed: directions that move it disable it
    assert ("first-layer-split" in field.attrs["engine"]) == (ignore == "biasbn")


class _FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        h = nn.functional.relu(self.a(x))  # traced as relu(..., inplace=False)
        return self.b(nn.functional.relu(h + x)) + nn.functional.relu(x)  # x: not the graph's


def test_relu_runs_in_place_on_fresh_tensors_only():
    from losstopo.engine.graph import relu_in_place

    net = _FunctionalRelu()
    gm, _ = trace(net)
    assert relu_in_place(gm) == 2  # after the layer and after the add; not on the input
    x = torch.randn(5, 4)
    x_before = x.clone()
    with torch.no_grad():
        torch.testing.assert_close(gm(x), net(x))
    assert torch.equal(x, x_before)


def test_held_folds_use_the_decoders_centre_not_the_models_parameters():
    import types

    from losstopo.data import EvalData, resolve_loss
    from losstopo.engine import Evaluator

    torch.manual_seed(0)
    model = _randomize_stats(resnet20(skip=True))
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 10, (6,))
    space = ParameterSpace.from_module(model)
    center = space.flatten(model).double().numpy()
    dirs = np.stack([d.double().numpy() for d in random_directions(model, seed=0)])
    slices = space.slices()
    for name in space.names:  # another centre: the BatchNorms' scales and shifts differ
        if "bn" in name or name.endswith("bias"):
            center[slices[name]] += 0.3 * np.random.default_rng(1).standard_normal(
                slices[name].stop - slices[name].start
            )
    decoder = types.SimpleNamespace(center=center, components=dirs)
    fn, loss_name = resolve_loss("cross_entropy")
    data = EvalData.from_any((x, y), loss_name)
    ev = Evaluator(model, space, decoder, data, fn, loss_name, (), torch.device("cpu"))
    ev.prepare(9, strategy={"batch_size": 6, "first_layer_split": True})
    coords = Grid.square(resolution=3, extent=0.5).points()
    proj = types.SimpleNamespace(inverse_transform=lambda c: center + c @ dirs)
    np.testing.assert_allclose(
        ev.evaluate(coords)[:, 0],
        plain_loop(model, proj, Grid.square(resolution=3, extent=0.5), x, y),
        rtol=2e-5,
        atol=1e-6,
    )


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)) + out)
        return self.fc(out.mean((2, 3)))


def _hooked():
    net = _Block()
    net.conv2.register_forward_hook(lambda mod, inp, out: out * 2)  # must still run
    return net


def _parametrized():
    class Scaled(nn.Module):
        def forward(self, w):
            return 0.5 * w

    net = _Block()
    parametrize.register_parametrization(net.conv2, "weight", Scaled())
    return net


class _Untraceable(_Block):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            x = x * 2
        return super().forward(x)


class _WritesInput(_Block):
    def forward(self, x):
        x.mul_(2)  # in place, on the data it is given
        return super().forward(x)


@pytest.mark.parametrize(
    "build, path, folds",
    [
        (_Block, "fx", 2),
        (_hooked, "fx", 1),  # the hooked convolution stays whole, hook included
        (_parametrized, "fx", 1),  # so does the parametrized one
        (_Untraceable, "generic", 0),
        (_WritesInput, "fx", 2),
    ],
)
def test_awkward_models_equal_the_plain_loop(build, path, folds):
    torch.manual_seed(0)
    model = _randomize_stats(build())
    x, y = torch.randn(10, 2, 6, 6), torch.randint(0, 3, (10,))
    field = _run(model, x, y, ignore=None)
    paths = field.attrs["fast_paths"]
    assert paths["path"] == path
    assert f"{folds} BatchNorm(s) folded" in paths["detail"]
    if path == "generic":
        assert "torch.fx cannot trace the model" in paths["detail"]
    if build is _WritesInput:
        assert "writes into its input" in paths["detail"]


def test_untraceable_and_stateful_models_say_why():
    assert trace(_Untraceable())[1].startswith("torch.fx cannot trace the model (TraceError")

    class Counting(_Block):
        def forward(self, x):
            self.calls = getattr(self, "calls", 0) + 1
            return super().forward(x)

    gm, reason = trace(Counting())
    assert gm is None and "Counting.forward assigns attributes" in reason
    hooked = _Block()
    hooked.register_forward_pre_hook(lambda mod, inp: None)
    assert trace(hooked) == (None, "the model itself has hooks or parametrizations")


def test_fold_keeps_layers_whose_output_is_used_twice():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)

        def forward(self, x):
            h = self.conv(x)
            return self.bn(h) + h  # the pre-BatchNorm value is used too

    net = _randomize_stats(Twice())
    gm, _ = trace(net)
    assert fold_graph(gm) == []
    x = torch.randn(2, 1, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), net(x))


def test_tuning_survives_noise_and_prefers_the_reference():
    rng = np.random.default_rng(0)
    cost = {(1024, False): 1.00, (512, False): 0.90, (256, False): 0.95, (128, False): 1.30}

    def noisy(c):
        # other load adds time, up to 3x, on half of the calls
        return lambda: cost[c] * (1 + (rng.random() < 0.5) * 2 * rng.random())

    picks = [choose(list(cost), noisy, n_points=10_000, clock=lambda fn: fn()) for _ in range(20)]
    assert picks.count((512, False)) >= 18
    near = {(1024, False): 1.0, (512, False): 0.99}  # within 2 %: the reference stays
    assert choose(list(near), lambda c: lambda: near[c], 100, clock=lambda fn: fn()) == (
        1024,
        False,
    )
    # a candidate that cannot run (the split does not fit) is skipped
    assert choose([(64, True), (64, False)], lambda c: None if c[1] else (lambda: 1.0), 100) == (
        64,
        False,
    )


def test_tuning_prunes_smaller_batches_and_stops_warming_up_once_settled():
    cost = {
        (1024, True): 0.5,
        (512, True): 0.8,  # slower than its larger batch: 256 and 128 with the split never run
        (256, True): 0.1,
        (128, True): 0.1,
        (1024, False): 1.0,
        (512, False): 0.9,
        (256, False): 0.95,
        (128, False): 1.3,
    }
    calls: dict = {}

    def setup(c):
        def fn():
            calls[c] = calls.get(c, 0) + 1
            return cost[c]

        return fn

    pick = choose(list(cost), setup, n_points=100, reference=(1024, False), clock=lambda fn: fn())
    assert pick == (1024, True)
    assert (256, True) not in calls and (128, True) not in calls
    # a point slower than the warm-up time is warmed up with one call, then screened with one
    assert calls[(128, False)] == 2

    # a cold process alternates fast and slow calls: warm-up goes on until three in a row agree
    times = iter([0.001, 0.006] * 5 + [0.001] * 1000)
    seen = []

    def clock(fn):
        seen.append(next(times))
        return seen[-1]

    choose([(64, False)], lambda c: lambda: None, n_points=100, clock=clock)
    assert len(seen) > 12 and seen[:13].count(0.006) == 5  # the alternation was all warm-up
    # a warm process: three agreeing calls end the warm-up (not WARM_UP seconds of 1 ms points)
    steady: list[float] = []
    choose([(64, False)], lambda c: lambda: None, 100, clock=lambda fn: steady.append(1e-3) or 1e-3)
    assert len(steady) < 40  # 3 warm-up calls, then blocks of 3 (40 warm-up calls before)
    # with a cut, a candidate far slower at screening is not measured again (no rounds at all)
    runs = {2: 0, 1: 0}

    def thread_setup(k):
        def fn():
            runs[k] += 1
            return {2: 1.0, 1: 1.7}[k]

        return fn

    assert choose([2, 1], thread_setup, 100, clock=lambda fn: fn(), cut=1.5) == 2
    assert runs == {2: 2, 1: 2}  # one warm-up call and one screening call each


def test_thread_strategy_applies_during_evaluation_only():
    from losstopo.data import EvalData, resolve_loss
    from losstopo.engine import Evaluator
    from losstopo.engine.decoding import as_decoder

    torch.manual_seed(0)
    model = _randomize_stats(_Block())
    x, y = torch.randn(10, 2, 6, 6), torch.randint(0, 3, (10,))
    proj = PlaneProjector(model, random_directions(model, seed=0)).fit()
    fn, name = resolve_loss("cross_entropy")
    data = EvalData.from_any((x, y), name)
    space = ParameterSpace.from_module(model)
    ev = Evaluator(model, space, as_decoder(proj), data, fn, name, (), torch.device("cpu"))
    seen = []
    ev.net.fc.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    other = 1 if before > 1 else 2
    ev.prepare(4, strategy={"batch_size": 10, "first_layer_split": False, "threads": other})
    assert ev.strategy == {"batch_size": 10, "first_layer_split": False, "threads": other}
    values = ev.evaluate(np.zeros((2, 2)))
    assert torch.get_num_threads() == before and set(seen) == {other}
    assert np.isfinite(values).all()


class _SharedConv(nn.Module):
    """A plain convolution (no BatchNorm) called twice, a hooked one, a residual add."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.hooked = nn.Conv2d(3, 4, 1)
        self.hooked.register_forward_hook(lambda m, i, o: o * 1.0)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        h = torch.relu(self.conv(x)) + x
        h = torch.relu(self.conv(h))
        return self.fc(self.hooked(h).mean((2, 3)))


def _evaluator(model, x, y, ignore="biasbn"):
    from losstopo.data import EvalData, resolve_loss
    from losstopo.engine import Evaluator
    from losstopo.engine.decoding import as_decoder

    proj = PlaneProjector(model, random_directions(model, seed=0, ignore=ignore)).fit()
    fn, name = resolve_loss("cross_entropy")
    data = EvalData.from_any((x, y), name)
    space = ParameterSpace.from_module(model)
    ev = Evaluator(model, space, as_decoder(proj), data, fn, name, (), torch.device("cpu"))
    ev.check_forward()
    return ev, proj


@pytest.mark.parametrize("build", ["resnet20", "resnet20-noskip", "shared"])
@pytest.mark.parametrize("split", [False, True])
def test_channels_last_layout_equals_the_plain_loop(build, split):
    torch.manual_seed(0)
    if build == "shared":
        model, x = _SharedConv().eval(), torch.randn(6, 3, 7, 7)
    else:
        model, x = _randomize_stats(resnet20(skip=build == "resnet20")), torch.randn(6, 3, 8, 8)
    y = torch.randint(0, 5, (6,))
    snap = {k: v.clone() for k, v in model.state_dict().items()}
    ev, proj = _evaluator(model, x, y)
    strategy = {"batch_size": 4, "first_layer_split": split, "channels_last": True}
    ev.prepare(9, strategy=strategy)
    padded = {"padded_linear": True} if build != "shared" else {}  # the ResNets' 10-class head
    assert ev.strategy == {**strategy, **padded}
    assert "convolutions channels-last" in ev.fast_paths["detail"]
    assert "+channels-last" in ev.engine_name
    grid = Grid.square(resolution=3, extent=0.5)
    values = ev.evaluate(grid.points())[:, 0]
    np.testing.assert_allclose(values, plain_loop(model, proj, grid, x, y), rtol=2e-5, atol=1e-6)
    # back to the default layout: the same values as a fresh evaluator's, bit for bit
    ev.prepare(9, strategy={"batch_size": 4, "first_layer_split": split})
    fresh, _ = _evaluator(model, x, y)
    fresh.prepare(9, strategy={"batch_size": 4, "first_layer_split": split})
    np.testing.assert_array_equal(ev.evaluate(grid.points()), fresh.evaluate(grid.points()))
    for k, v in model.state_dict().items():
        assert torch.equal(v, snap[k]), k  # the user's model is never modified


def test_layout_leaves_hooked_and_1d_convolutions_alone():
    from losstopo.engine.layout import LayoutConv, wrap_layers

    net = nn.Sequential(nn.Conv1d(2, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    gm, _ = trace(net)
    assert wrap_layers(gm) == ([], [])
    gm, _ = trace(_SharedConv().eval())
    convolutions, linears = wrap_layers(gm)
    assert linears == []  # Linear(4, 5): too few outputs to pad
    assert len(convolutions) == 1 and isinstance(convolutions[0], LayoutConv)  # one, both calls
    calls = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert calls.count("losstopo_layout_0") == 2 and "hooked" in calls


class _TwoHeads(nn.Module):
    """A shared 10-output head used twice, a hooked one, one of 16 outputs and one of 5."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 16)
        self.head = nn.Linear(16, 10)
        self.hooked = nn.Linear(10, 10)
        self.hooked.register_forward_hook(lambda m, i, o: o * 1.0)
        self.wide, self.narrow = nn.Linear(10, 16), nn.Linear(16, 5, bias=False)

    def forward(self, x):
        h = torch.relu(self.body(x))
        h = self.head(h) + self.head(h * 0.5)
        return self.narrow(torch.relu(self.wide(self.hooked(h))))


def test_padded_linear_outputs_equal_the_plain_loop():
    from losstopo.engine.layout import PaddedLinear, wrap_layers

    gm, _ = trace(_TwoHeads())
    convolutions, linears = wrap_layers(gm)
    assert convolutions == [] and len(linears) == 1 and isinstance(linears[0], PaddedLinear)
    calls = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert calls.count("losstopo_layout_0") == 2  # the shared head, for both calls
    assert {"hooked", "wide", "narrow", "body"} <= set(calls)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 10))
    x, y = torch.randn(7, 6), torch.randint(0, 10, (7,))
    grid = Grid.square(resolution=3, extent=0.5)
    for split in (False, True):
        ev, proj = _evaluator(model, x, y)
        ev.prepare(9, strategy={"batch_size": 4, "first_layer_split": split, "padded_linear": True})
        assert (
            ev.strategy.get("padded_linear")
            and "linear outputs padded to 16" in ev.fast_paths["detail"]
        )
        assert ev.engine_name.endswith("+padded-linear")
        values = ev.evaluate(grid.points())[:, 0]
        np.testing.assert_allclose(
            values, plain_loop(model, proj, grid, x, y), rtol=2e-5, atol=1e-6
        )
    # a user's loss that views the output (the padded head's output is contiguous)
    from losstopo.data import EvalData
    from losstopo.engine import Evaluator
    from losstopo.engine.decoding import as_decoder

    def viewing(out, t):
        return nn.functional.cross_entropy(out.view(-1, 10), t)

    space = ParameterSpace.from_module(model)
    data = EvalData.from_any((x, y), "user")
    ev = Evaluator(model, space, as_decoder(proj), data, viewing, "user", (), torch.device("cpu"))
    ev.prepare(9, strategy={"batch_size": 7, "first_layer_split": False, "padded_linear": True})
    np.testing.assert_allclose(
        ev.evaluate(grid.points())[:, 0], plain_loop(model, proj, grid, x, y), rtol=2e-5, atol=1e-6
    )


def test_vmap_copies_the_data_of_a_model_writing_into_its_input():
    torch.manual_seed(0)
    model = _randomize_stats(_WritesInput())
    x, y = torch.randn(10, 2, 6, 6), torch.randint(0, 3, (10,))
    proj = PlaneProjector(model, random_directions(model, n_components=2, seed=0))
    grid = Grid.square(resolution=3, extent=0.5)
    x_before = x.clone()
    field = evaluate(model, (x, y), "cross_entropy", proj, grid, mode="vmap", progress=False)
    assert torch.equal(x, x_before)
    np.testing.assert_allclose(
        field.values.ravel(), plain_loop(model, proj, grid, x, y), rtol=2e-5, atol=1e-6
    )

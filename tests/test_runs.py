"""Points in blocks and side by side (losstopo.engine.runs), alone and through the Evaluator."""

import threading

import numpy as np
import pytest
import torch
from torch import nn

from losstopo import Grid, ParameterSpace, PlaneProjector, evaluate, random_directions
from losstopo.data import EvalData, resolve_loss
from losstopo.engine import Evaluator, PointFailure
from losstopo.engine.decoding import as_decoder
from losstopo.engine.runs import Copies, copies_for, in_blocks, side_by_side
from losstopo.engine.tuning import choose_parallelism


def squares(s, e):
    return np.arange(s, e, dtype=float)[:, None] ** 2


def failing_at(bad):
    def run(s, e):
        if s <= bad < e:
            raise PointFailure(bad - s, ValueError(f"point {bad}"), squares(s, bad))
        return squares(s, e)

    return run


@pytest.mark.parametrize("n_runs", [1, 2, 3])
@pytest.mark.parametrize("block", [1, 2, 5, 100])
def test_side_by_side_gives_every_point_in_place(n_runs, block):
    out = side_by_side([squares] * n_runs, 23, 1, block)
    np.testing.assert_array_equal(out.ravel(), np.arange(23.0) ** 2)
    np.testing.assert_array_equal(in_blocks(squares, 23, 1, block).ravel(), np.arange(23.0) ** 2)
    assert side_by_side([squares] * n_runs, 0, 1, block).shape == (0, 1)


@pytest.mark.parametrize("bad", [0, 1, 7, 22])
def test_a_failing_point_keeps_every_point_before_it(bad):
    for run in (
        lambda runs: side_by_side(runs, 23, 1, 3),
        lambda runs: in_blocks(runs[0], 23, 1, 3),
    ):
        with pytest.raises(PointFailure) as info:
            run([failing_at(bad), failing_at(bad)])
        assert info.value.position == bad
        assert str(info.value.error) == f"point {bad}"
        np.testing.assert_array_equal(info.value.done.ravel(), np.arange(float(bad)) ** 2)


def test_the_first_of_two_failures_wins_and_other_errors_pass_through():
    def two_bad(s, e):
        for bad in (4, 9):
            if s <= bad < e:
                raise PointFailure(bad - s, ValueError(f"point {bad}"), squares(s, bad))
        return squares(s, e)

    with pytest.raises(PointFailure) as info:
        side_by_side([two_bad, two_bad], 20, 1, 1)
    assert info.value.position == 4 and len(info.value.done) == 4

    def broken(s, e):
        raise KeyError("not a point's failure")

    with pytest.raises(KeyError):
        side_by_side([broken, squares], 20, 1, 2)


def test_threads_each_and_restored_after():
    seen = {}
    before = torch.get_num_threads()

    def record(s, e):
        seen[threading.get_ident()] = torch.get_num_threads()
        return squares(s, e)

    side_by_side([record, record], 40, 1, 1, threads_each=1)
    assert set(seen.values()) == {1}
    assert torch.get_num_threads() == before


def test_copies_are_built_once_and_follow_the_strategy():
    built = []

    class Fake:
        def __init__(self):
            self.strategy = {}
            built.append(self)

        def prepare(self, n_points, strategy):
            self.strategy = dict(strategy)

    copies = Copies(Fake)
    first = copies.get(2, {"batch_size": 8})
    again = copies.get(1, {"batch_size": 4})
    assert len(built) == 2 and again[0] is first[0]
    assert first[0].strategy == {"batch_size": 4} and first[1].strategy == {"batch_size": 8}
    assert copies_for(None, 2**30)[0] == 1
    assert copies_for(2**31, 2**30)[0] == 1  # the copies would not fit in the memory cap


def test_short_points_run_side_by_side_when_there_are_copies():
    assert choose_parallelism(lambda: None, 100, side_by_side=(2, 1)) == (1, 2)
    assert choose_parallelism(lambda: None, 100, side_by_side=(1, 2))[1] == 1
    slow = choose_parallelism(lambda: __import__("time").sleep(0.011), 100, side_by_side=(2, 1))
    assert slow[1] == 1  # a slow point: the threads share it


class WritesIntoInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.b = nn.Linear(8, 3)

    def forward(self, x):
        x.mul_(2.0)  # in place on its input
        return self.b(torch.relu(self.a(x)))


class FailsFarOut(nn.Module):
    """Raises at points whose first weight has moved far from the centre."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.b = nn.Linear(8, 3)
        self.limit = float(self.a.weight[0, 0].detach()) + 0.05

    def forward(self, x):
        if float(self.a.weight[0, 0]) > self.limit:
            raise RuntimeError("too far out")
        return self.b(torch.relu(self.a(x)))


def _mlp():
    return nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )


def _evaluator(model, x, y, strategy, dirs=None):
    dirs = random_directions(model, seed=0) if dirs is None else dirs
    proj = PlaneProjector(model, dirs).fit()
    fn, name = resolve_loss("cross_entropy")
    data = EvalData.from_any((x, y), name)
    space = ParameterSpace.from_module(model)
    ev = Evaluator(
        model, space, as_decoder(proj), data, fn, name, ("accuracy",), torch.device("cpu")
    )
    ev.check_forward()
    ev.prepare(100, strategy=strategy)
    return ev


@pytest.mark.parametrize("build", [_mlp, WritesIntoInput])
@pytest.mark.parametrize("split", [True, False])
def test_copies_side_by_side_equal_one_copy_bit_for_bit(build, split):
    torch.manual_seed(0)
    model = build()
    x, y = torch.randn(40, 6), torch.randint(0, 3, (40,))
    x_before, state = x.clone(), {k: v.clone() for k, v in model.state_dict().items()}
    coords = Grid.square(7, extent=1.0).points()
    one = {"batch_size": 16, "first_layer_split": split, "threads": 1}
    single = _evaluator(model, x, y, one).evaluate(coords)
    ev = _evaluator(model, x, y, {**one, "side_by_side": 2})
    assert ev.strategy["side_by_side"] == 2 and "side-by-side" in ev.engine_name
    both = ev.evaluate(coords)
    np.testing.assert_array_equal(both, single)
    np.testing.assert_array_equal(ev.evaluate(coords[::-1]), single[::-1])  # any order
    assert torch.equal(x, x_before)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_a_point_failing_side_by_side_keeps_the_points_before_it():
    torch.manual_seed(0)
    model = FailsFarOut()
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    dirs = torch.zeros(2, ParameterSpace.from_module(model).n_params)
    dirs[0, 0] = 1.0  # the first coordinate moves the weight the model checks
    dirs[1, -1] = 1.0  # the second one a bias of the last layer
    coords = np.stack([np.linspace(-0.2, 0.2, 30), np.zeros(30)], axis=1)
    bad = int(np.argmax(coords[:, 0] > 0.05))
    one = {"batch_size": 20, "first_layer_split": False, "threads": 1}
    with pytest.raises(PointFailure) as single:
        _evaluator(model, x, y, one, dirs).evaluate(coords)
    with pytest.raises(PointFailure) as both:
        _evaluator(model, x, y, {**one, "side_by_side": 2}, dirs).evaluate(coords)
    assert single.value.position == both.value.position == bad
    np.testing.assert_array_equal(both.value.done, single.value.done)
    assert "too far out" in str(both.value.error)


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs two torch threads")
def test_evaluate_runs_a_small_model_side_by_side(tmp_path):
    torch.manual_seed(0)
    model = _mlp()
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    proj = PlaneProjector(model, random_directions(model, seed=0))
    grid = Grid.square(9, extent=1.0)
    field = evaluate(
        model, (x, y), "cross_entropy", proj, grid, device="cpu", progress=False, chunk_size=8
    )
    assert field.attrs["strategy"]["side_by_side"] == 2, field.attrs["strategy"]
    assert field.attrs["engine"].endswith("+side-by-side")
    plain = evaluate(
        model, (x, y), "cross_entropy", proj, grid, device="cpu", progress=False, batch_size=64
    )
    np.testing.assert_allclose(field.values, plain.values, rtol=1e-5)
    np.testing.assert_allclose(field.metrics["accuracy"], plain.metrics["accuracy"])
    stored = evaluate(
        model,
        (x, y),
        "cross_entropy",
        proj,
        grid,
        store=tmp_path / "f.h5",
        device="cpu",
        progress=False,
    )
    assert stored.attrs["strategy"]["side_by_side"] == 2
    np.testing.assert_allclose(stored.values, plain.values, rtol=1e-5)

"""BatchNorm folding (losstopo.engine.fold) and its use by the evaluation engine."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from losstopo import Grid, PlaneProjector, evaluate, random_directions
from losstopo.engine.fold import fold_batchnorm


def _randomize_stats(net):
    g = torch.Generator().manual_seed(3)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 3 + 0.1)
            if m.affine:
                m.weight.data.copy_(torch.randn(m.num_features, generator=g))
                m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return net.eval()


def _reference(model, proj, grid, x, y):
    ref = copy.deepcopy(model).eval()
    out = []
    for coords in grid.points():
        vec = torch.as_tensor(proj.inverse_transform(coords[None])[0], dtype=torch.float32)
        torch.nn.utils.vector_to_parameters(vec, ref.parameters())
        with torch.no_grad():
            out.append(float(torch.nn.functional.cross_entropy(ref(x), y)))
    return np.array(out)


@pytest.mark.parametrize(
    "net, x",
    [
        (
            nn.Sequential(nn.Conv2d(2, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU()),
            torch.randn(3, 2, 6, 6),
        ),
        (
            nn.Sequential(nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4, affine=False), nn.Tanh()),
            torch.randn(3, 2, 9),
        ),
        (
            nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Sequential(nn.Linear(6, 2))),
            torch.randn(7, 5),
        ),
        (
            nn.Sequential(nn.Sequential(nn.Conv3d(1, 2, 2), nn.BatchNorm3d(2)), nn.Flatten()),
            torch.randn(2, 1, 4, 4, 4),
        ),
    ],
)
def test_folded_network_equals_the_original(net, x):
    torch.manual_seed(0)
    net = _randomize_stats(net)
    folded = fold_batchnorm(net)
    assert folded is not None and len(folded.pairs) == 1
    folded.refresh()
    with torch.no_grad():
        torch.testing.assert_close(folded.net(x), net(x), rtol=1e-5, atol=1e-5)
        # parameters are shared: a change shows after refresh
        first = next(net.parameters())
        first.add_(0.5)
        folded.refresh()
        torch.testing.assert_close(folded.net(x), net(x), rtol=1e-5, atol=1e-5)


def test_nothing_to_fold():
    class Custom(nn.Sequential):
        def forward(self, x):  # its own call order: not rewritten
            return super().forward(x) * 2

    bn_net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert fold_batchnorm(Custom(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).eval()) is None
    assert fold_batchnorm(bn_net.train()) is None  # training mode: batch statistics
    assert fold_batchnorm(nn.Sequential(nn.Linear(2, 2), nn.ReLU()).eval()) is None
    assert fold_batchnorm(nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 2)).eval()) is None


def test_engine_folds_and_matches_the_reference():
    from losstopo.models import SmallCNN

    torch.manual_seed(0)
    model = _randomize_stats(SmallCNN(1, 10, width=4))
    x, y = torch.rand(40, 1, 8, 8), torch.randint(0, 10, (40,))
    # directions through the BatchNorm parameters too
    proj = PlaneProjector(model, random_directions(model, n_components=2, seed=0, ignore=None))
    grid = Grid.square(resolution=5)
    field = evaluate(model, (x, y), "cross_entropy", proj, grid, progress=False)
    assert field.attrs["engine"].endswith("+bn-folded")
    np.testing.assert_allclose(field.values.ravel(), _reference(model, proj, grid, x, y), rtol=1e-5)


def test_first_layer_split_with_a_folded_tail():
    torch.manual_seed(0)
    model = _randomize_stats(
        nn.Sequential(
            nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)
        )
    )
    x, y = torch.randn(30, 6), torch.randint(0, 3, (30,))
    proj = PlaneProjector(model, random_directions(model, n_components=2, seed=1, ignore=None))
    grid = Grid.square(resolution=5)
    field = evaluate(model, (x, y), "cross_entropy", proj, grid, progress=False)
    assert field.attrs["engine"] == "sequential+first-layer-split+bn-folded"
    np.testing.assert_allclose(field.values.ravel(), _reference(model, proj, grid, x, y), rtol=1e-5)


class _StdLinear(nn.Linear):
    """A subclass with its own forward (standardised weights): must not be folded or split."""

    def forward(self, x):
        w = (self.weight - self.weight.mean()) / (self.weight.std() + 1e-5)
        return torch.nn.functional.linear(x, w, self.bias)


def _hooked():
    layer = nn.Linear(6, 8)
    layer.register_forward_pre_hook(lambda mod, inp: (inp[0] * 2,))
    return nn.Sequential(layer, nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def _shared():
    lin, bn = nn.Linear(8, 8), nn.BatchNorm1d(8)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), lin, bn, nn.ReLU(), lin, bn, nn.Linear(8, 3))


@pytest.mark.parametrize(
    "build, x",
    [
        # the model's own in-place ReLU after the first layer must not touch the split's cache
        (lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(inplace=True), nn.Linear(8, 3)), (30, 6)),
        (
            lambda: nn.Sequential(
                nn.Linear(6, 8), nn.LeakyReLU(0.1, inplace=True), nn.Linear(8, 3)
            ),
            (30, 6),
        ),  # fmt: skip
        (_shared, (30, 6)),  # modules used twice stay twice
        (lambda: nn.Sequential(_StdLinear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)), (30, 6)),
        (_hooked, (30, 6)),
        # Linear acts on the last axis, BatchNorm1d on axis 1: no fold on (N, C, L) inputs
        (
            lambda: nn.Sequential(
                nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Flatten(), nn.Linear(16, 3)
            ),
            (30, 4, 4),
        ),  # fmt: skip
    ],
)
def test_engine_matches_reference_on_awkward_models(build, x):
    torch.manual_seed(0)
    model = _randomize_stats(build())
    inputs, targets = torch.randn(*x), torch.randint(0, 3, (x[0],))
    proj = PlaneProjector(model, random_directions(model, n_components=2, seed=0, ignore=None))
    grid = Grid.square(resolution=5)  # odd: includes the centre
    field = evaluate(model, (inputs, targets), "cross_entropy", proj, grid, progress=False)
    expected = _reference(model, proj, grid, inputs, targets)
    np.testing.assert_allclose(field.values.ravel(), expected, rtol=1e-5)


def test_vmap_with_recompute_refused():
    from losstopo.errors import InvalidParameterError

    model = _randomize_stats(nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)))
    proj = PlaneProjector(model, random_directions(model, seed=0))
    data = (torch.randn(20, 6), torch.randint(0, 3, (20,)))
    with pytest.raises(InvalidParameterError, match="vmap"):
        evaluate(model, data, "cross_entropy", proj, Grid.square(3), mode="vmap", bn="recompute")

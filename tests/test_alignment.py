"""Permutation specs, weight and activation matching, apply_permutation, align."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from losstopo.alignment import (
    Permutation,
    PermutationSpec,
    activation_matching,
    align,
    apply_permutation,
    permutation_spec,
    weight_matching,
)
from losstopo.errors import InvalidParameterError, InvalidTypeError, ShapeMismatchError
from losstopo.models import MLP, SmallCNN, resnet20


def _randomise_bn(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so permuting them matters."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=g))
                m.bias.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


ARCHITECTURES = {
    "mlp": (lambda: MLP(8, (6, 5), 3), (4, 8)),
    "cnn_bn": (lambda: SmallCNN(1, 10, width=4), (3, 1, 8, 8)),
    "resnet20": (lambda: resnet20(skip=True), (2, 3, 8, 8)),
    "resnet20_noskip": (lambda: resnet20(skip=False), (2, 3, 8, 8)),
}


def _build(name: str, seed: int) -> tuple[nn.Module, torch.Tensor]:
    make, shape = ARCHITECTURES[name]
    torch.manual_seed(seed)
    model = _randomise_bn(make(), seed)
    return model, torch.randn(*shape, generator=torch.Generator().manual_seed(seed + 100))


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_random_permutation_keeps_outputs_and_weight_matching_recovers_it(name):
    model, x = _build(name, 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = permutation_spec(model)
    shuffled = Permutation.random(spec, seed=3)
    assert shuffled.n_moved > 0
    permuted = apply_permutation(model, shuffled)
    # the input model is untouched, the copy differs but computes the same function
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in permuted.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(permuted.eval()(x), model(x), rtol=1e-5, atol=1e-5)
    found = weight_matching(model, permuted, max_iter=20)
    recovered = apply_permutation(permuted, found)
    distance = sum(
        float((recovered.state_dict()[k].double() - v.double()).abs().max())
        for k, v in model.state_dict().items()
    )
    assert distance == 0.0  # a permutation of exact copies: recovered bit for bit


def test_residual_addition_ties_permutations():
    spec = permutation_spec(resnet20(skip=True))
    # the block's second conv writes into the residual stream opened by the stem
    assert spec.axes["layers.0.conv2.weight"][0] == spec.axes["conv1.weight"][0] == "conv1"
    assert spec.axes["layers.0.bn2.running_mean"] == ("conv1",)
    # a downsampling shortcut: its conv reads the old stream and writes the new one
    assert spec.axes["layers.3.shortcut.0.weight"][:2] == ("layers.3.conv2", "conv1")
    assert spec.axes["fc.weight"] == (None, "layers.6.conv2")
    assert spec.axes["layers.0.bn1.num_batches_tracked"] == ()
    noskip = permutation_spec(resnet20(skip=False))
    assert noskip.axes["layers.0.conv2.weight"][:2] == ("layers.0.conv2", "layers.0.conv1")


def test_weight_matching_one_hidden_layer_equals_one_assignment():
    """Independent reference: for one hidden layer the optimum is a single linear assignment."""
    torch.manual_seed(0)
    a, b = MLP(5, (7,), 3), MLP(5, (7,), 3)
    with torch.no_grad():
        wa = torch.cat([a[1].weight, a[1].bias[:, None], a[3].weight.T], 1).double()
        wb = torch.cat([b[1].weight, b[1].bias[:, None], b[3].weight.T], 1).double()
    _, cols = linear_sum_assignment((wa @ wb.T).numpy(), maximize=True)
    found = weight_matching(a, b)
    np.testing.assert_array_equal(found.perms["1"], cols)
    assert found.attrs["iterations"] <= 2


def test_activation_matching_recovers_a_permuted_copy():
    torch.manual_seed(1)
    model = SmallCNN(1, 10, width=4).eval()  # default BatchNorm: no unit is dead on these inputs
    permuted = apply_permutation(model, Permutation.random(permutation_spec(model), seed=5))
    x = torch.rand(64, 1, 8, 8)
    found = activation_matching(model, permuted, (x, torch.zeros(64, dtype=torch.long)))
    recovered = apply_permutation(permuted, found)
    for k, v in model.state_dict().items():
        assert torch.equal(recovered.state_dict()[k], v), k


def test_align_reports_barriers_and_identical_models_have_none(tiny_data):
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    report = align(a, a, tiny_data, "cross_entropy", n_points=5)
    assert report.barrier_before == 0.0 and report.barrier_after == 0.0
    b = apply_permutation(a, Permutation.random(permutation_spec(a), seed=0))
    report = align(a, b, tiny_data, "cross_entropy", n_points=5, method="activations")
    assert report.barrier_after == pytest.approx(0.0, abs=1e-6)
    assert report.after.loss == pytest.approx(report.after.loss[0], abs=1e-5)


def test_explicit_spec_errors():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ShapeMismatchError, match="'0.wieght', which the model does not have"):
        PermutationSpec.from_axes({"0.wieght": ("h", None)}, model)
    with pytest.raises(ShapeMismatchError, match="gives 1 axes for tensor '0.weight'"):
        PermutationSpec.from_axes({"0.weight": ("h",)}, model)
    with pytest.raises(ShapeMismatchError, match="Permutation 'h' has size 4"):
        PermutationSpec.from_axes({"0.weight": ("h", None), "2.weight": ("h", None)}, model)
    good = PermutationSpec.from_axes(
        {"0.weight": ("h", None), "0.bias": ("h",), "2.weight": (None, "h")}, model
    )
    permuted = apply_permutation(model, Permutation.random(good, seed=0))
    x = torch.randn(3, 2)
    torch.testing.assert_close(permuted(x), model(x))
    with pytest.raises(InvalidParameterError, match="names no activations"):
        activation_matching(model, permuted, (x, x), spec=good)
    with pytest.raises(InvalidTypeError, match="'spec' must be a PermutationSpec"):
        weight_matching(model, permuted, spec={"0.weight": ("h", None)})


class _Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(x))
        return self.out(torch.cat([h, h], 1))


def test_unsupported_operation_names_the_node():
    with pytest.raises(InvalidParameterError, match=r"Graph node 'cat'.*PermutationSpec.from_axes"):
        permutation_spec(_Concat())


def test_different_architectures_are_refused():
    with pytest.raises(ShapeMismatchError, match="differ first at tensor '1.weight'"):
        weight_matching(MLP(4, (8,), 3), MLP(4, (9,), 3))
    with pytest.raises(ShapeMismatchError, match="'2.weight', which only model_b has"):
        weight_matching(
            nn.Sequential(nn.Linear(2, 3)),
            nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3)),
        )


def test_permute_points_matches_apply_permutation_on_every_row():
    from losstopo import ParameterSpace
    from losstopo.alignment import permute_points

    model, _ = _build("cnn_bn", 2)
    other, _ = _build("cnn_bn", 3)
    space = ParameterSpace.from_module(model)
    perm = Permutation.random(permutation_spec(model), seed=4)
    rows = torch.stack([space.flatten(model), space.flatten(other)]).numpy()
    moved = permute_points(model, rows, perm)
    for i, m in enumerate((model, other)):
        expected = space.flatten(apply_permutation(m, perm)).numpy()
        np.testing.assert_array_equal(moved[i], expected)
    with pytest.raises(InvalidParameterError, match="points have 3 parameters"):
        permute_points(model, np.zeros((1, 3)), perm)

"""Losses by name or callable, the target and output checks, and data as users hold it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from losstopo.data import EvalData, as_loader, check_outputs, resolve_loss
from losstopo.errors import DataError


def test_a_callable_named_like_a_builtin_runs_as_given():
    fn, name = resolve_loss(F.cross_entropy)
    assert fn is F.cross_entropy
    assert name == "torch.nn.functional.cross_entropy"

    def cross_entropy(out, y):  # a user's own loss that happens to share the name
        return F.cross_entropy(out, y, label_smoothing=0.1)

    fn, name = resolve_loss(cross_entropy)
    assert fn is cross_entropy and name != "cross_entropy"
    assert resolve_loss("cross_entropy")[1] == "cross_entropy"


@pytest.mark.parametrize("shape", [(6,), (6, 1)])
def test_cross_entropy_refuses_one_output_per_sample(shape):
    with pytest.raises(DataError, match="loss='mse'"):
        check_outputs(torch.zeros(shape), torch.zeros(6, dtype=torch.long), "cross_entropy")
    check_outputs(torch.zeros(shape), torch.zeros(shape), "mse")


@pytest.mark.parametrize(
    "targets",
    [torch.randn(6), torch.randn(6, 1), torch.randn(6, 3), torch.full((6, 3), 0.5)],
)
def test_cross_entropy_refuses_float_targets_that_are_not_probabilities(targets):
    with pytest.raises(DataError, match="mse"):
        EvalData.from_any((torch.zeros(6, 3), targets), "cross_entropy")


def test_cross_entropy_accepts_class_probabilities():
    probs = torch.softmax(torch.randn(6, 3), 1)
    assert EvalData.from_any((torch.zeros(6, 3), probs), "cross_entropy").n_samples == 6


def test_map_style_dataset_is_read_in_batches():
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    data = EvalData.from_any(TensorDataset(x, y), "cross_entropy", batch_size=4)
    assert torch.equal(data.inputs, x) and torch.equal(data.targets, y)
    assert [len(b) for b, _ in as_loader(TensorDataset(x, y), 4)] == [4, 4, 2]
    loader = DataLoader(TensorDataset(x, y), batch_size=3)
    assert as_loader(loader, 4) is loader
    same = EvalData.from_any(loader, "cross_entropy")
    assert same.fingerprint != "" and torch.equal(same.inputs, x)

"""The built-in cross-entropy: precise at small losses, and never less precise than PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losstopo.engine.metrics import (
    Reduction,
    cross_entropy_and_hits,
    cross_entropy_per_sample,
    metrics_by_name,
)


def _logits_at(loss: float, n: int = 1797, c: int = 10, seed: int = 0):
    """float32 logits whose per-sample cross-entropy is about ``loss`` (target is the argmax)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    rest = z.clone()
    rest[torch.arange(n), y] = -torch.inf
    margin = torch.log(torch.expm1(torch.tensor(loss, dtype=torch.float64)))
    z[torch.arange(n), y] = torch.logsumexp(rest, 1) - margin
    return (z + 3.0).float(), y


def _reference(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """float64 cross-entropy of the same float32 logits, in the log1p form (independent code)."""
    z = out.double().numpy()
    zy = z[np.arange(len(z)), y.numpy()]
    d = z - zy[:, None]
    m = d.max(axis=1)
    e = np.exp(d - m[:, None])
    e[np.arange(len(z)), d.argmax(axis=1)] = 0.0
    return torch.from_numpy(m + np.log1p(e.sum(axis=1)))


@pytest.mark.parametrize("loss", [1e-7, 1e-6, 2.7e-6, 6e-5, 1e-3, 0.1, 1.0, 3.0, 10.0])
def test_cross_entropy_matches_float64_and_beats_pytorch(loss):
    out, y = _logits_at(loss)
    ref = _reference(out, y)
    ref_mean = ref.mean().item()
    assert ref_mean == pytest.approx(loss, rel=0.5)  # the batch sits at the intended loss
    ours = cross_entropy_per_sample(out, y).double()
    assert ((ours - ref).abs() / ref).max().item() <= 1e-5
    err = abs(ours.mean().item() / ref_mean - 1)
    fused = cross_entropy_and_hits(out, y)[0].item() / len(y)
    assert abs(fused / ref_mean - 1) <= 1e-5
    torch_err = abs(F.cross_entropy(out, y, reduction="none").double().mean().item() / ref_mean - 1)
    # never less precise than PyTorch's own (up to one float32 rounding of the mean)
    assert err <= torch_err + 1e-7
    # and through the engine's reduction, with and without the fused accuracy
    for metrics in ((), metrics_by_name(["accuracy"])):
        red = Reduction("cross_entropy", None, metrics, n_samples=len(y))
        value = red.point([(lambda x: x, out, y)])[0]
        assert abs(value / ref_mean - 1) <= 1e-5


def test_cross_entropy_where_the_target_is_not_the_prediction():
    g = torch.Generator().manual_seed(1)
    out = torch.randn(500, 7, generator=g) * 8
    y = torch.randint(0, 7, (500,), generator=g)
    ours = cross_entropy_per_sample(out, y).double()
    ref = F.cross_entropy(out.double(), y, reduction="none")
    assert ((ours - ref).abs() / ref).max().item() < 1e-6
    loss, hits = cross_entropy_and_hits(out, y)
    assert int(hits) == int((out.argmax(1) == y).sum())
    # ties between the target and another class: loss log(2) when they share the maximum
    tie = torch.tensor([[5.0, 5.0, -30.0]])
    for target in (0, 1):
        value = cross_entropy_per_sample(tie, torch.tensor([target])).item()
        assert value == pytest.approx(np.log(2.0), rel=1e-6)


def test_infinite_logits_behave_as_pytorch():
    out = torch.tensor([[float("inf"), 0.0], [0.0, float("-inf")]])
    y = torch.tensor([0, 0])
    ours = cross_entropy_per_sample(out, y)
    theirs = F.cross_entropy(out, y, reduction="none")
    assert torch.isnan(ours[0]) and torch.isnan(theirs[0])
    assert ours[1].item() == theirs[1].item() == 0.0

"""The first-layer split's terms: every point's first-layer output, with the partial sums that
consecutive grid points share taken from a cache, equals the terms summed in order."""

import numpy as np
import pytest
import torch

from losstopo.engine.split import SplitTerms

COORDS = [  # rows of a grid (shared leading coefficients), jumps, zeros, and a repeat
    [0.5, -1.0, 0.25],
    [0.5, -1.0, 0.75],
    [0.5, -1.0, 0.0],
    [0.0, 0.0, 2.0],
    [0.0, 0.0, 0.0],
    [0.5, -1.0, 0.75],
    [1.0, 0.0, -0.5],
    [1.0, 0.0, 0.5],
    [0.0, 3.0, 0.5],
]


def _terms(reuse: bool, n_dirs: int) -> SplitTerms:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(10, 6, generator=g)
    extra = [torch.randn(10, 6, generator=g) for _ in range(n_dirs)]
    terms = SplitTerms(base, extra, torch.arange(10))
    terms.reuse = reuse
    return terms


def _in_order(terms: SplitTerms, coords: list[float], sl: slice) -> torch.Tensor:
    out = terms.base[sl].clone()
    for a, term in zip(coords, terms.extra, strict=True):
        if a != 0.0:
            out = torch.add(out, term[sl], alpha=a)
    return out


@pytest.mark.parametrize("reuse", [True, False])
@pytest.mark.parametrize("n_dirs", [1, 2, 3])
def test_cached_partial_sums_give_the_sum_in_order_bit_for_bit(reuse, n_dirs):
    terms = _terms(reuse, n_dirs)
    for batch_size in (10, 4, 10, 3):  # a batch size change drops the cached buffers
        for coords in COORDS:
            c = coords[:n_dirs]
            for start, h, y in terms.batches(np.array(c), batch_size):
                sl = slice(start, start + batch_size)
                assert torch.equal(h, _in_order(terms, c, sl)), (batch_size, c, start)
                assert torch.equal(y, terms.targets[sl])
                h.mul_(0.0)  # the network may overwrite h: no cache may change with it


def test_base_is_never_handed_out():
    terms = _terms(reuse=False, n_dirs=2)
    before = terms.base.clone()
    for _, h, _ in terms.batches(np.zeros(2), 10):
        assert h.data_ptr() != terms.base.data_ptr()
        h.add_(1.0)
    assert torch.equal(terms.base, before)

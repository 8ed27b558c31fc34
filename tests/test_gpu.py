"""CUDA correctness: the engine on a GPU agrees with the CPU (skipped where there is no GPU)."""

import numpy as np
import pytest
import torch

from losstopo import Grid, PlaneProjector, evaluate, random_directions
from losstopo.models import SmallCNN

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]


@pytest.mark.parametrize("mode", ["sequential", "vmap"])
def test_cuda_matches_cpu(mode):
    torch.manual_seed(0)
    model = SmallCNN(1, 10, 8).eval()
    x, y = torch.rand(256, 1, 8, 8), torch.randint(0, 10, (256,))
    proj = PlaneProjector(model, random_directions(model, seed=0))
    grid = Grid.square(9)
    cpu = evaluate(model, (x, y), "cross_entropy", proj, grid, device="cpu", progress=False)
    gpu = evaluate(
        model, (x, y), "cross_entropy", proj, grid, device="cuda", mode=mode, progress=False
    )
    np.testing.assert_allclose(gpu.values, cpu.values, rtol=1e-4)
    assert next(model.parameters()).device.type == "cpu"


def test_points_on_the_default_cuda_device_match_cpu():
    from losstopo import ParameterSpace, evaluate_points
    from losstopo.engine import default_device

    assert default_device().type == "cuda"
    torch.manual_seed(0)
    model = SmallCNN(1, 10, 8).eval()
    x, y = torch.rand(256, 1, 8, 8), torch.randint(0, 10, (256,))
    center = ParameterSpace.from_module(model).flatten(model)
    points = torch.stack([center, 0.9 * center, 1.1 * center])
    cpu = evaluate_points(model, (x, y), "cross_entropy", points, ["accuracy"], device="cpu")
    gpu = evaluate_points(model, (x, y), "cross_entropy", points, ["accuracy"])  # default: CUDA
    np.testing.assert_allclose(gpu.loss, cpu.loss, rtol=1e-4)
    np.testing.assert_allclose(gpu.metrics["accuracy"], cpu.metrics["accuracy"], atol=1 / 256)
    assert next(model.parameters()).device.type == "cpu"

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


@pytest.mark.parametrize("skip", [True, False])
def test_fast_paths_on_cuda_match_cpu(skip):
    """The traced graph's folded BatchNorms, first-layer split and layouts, on the GPU."""
    from losstopo.models import resnet20

    torch.manual_seed(0)
    model = resnet20(skip=skip, in_channels=1).eval()
    x, y = torch.rand(128, 1, 8, 8), torch.randint(0, 10, (128,))
    proj = PlaneProjector(model, random_directions(model, ignore="biasbn", seed=0))
    grid = Grid.square(5)
    cpu = evaluate(model, (x, y), "cross_entropy", proj, grid, device="cpu", progress=False)
    gpu = evaluate(
        model,
        (x, y),
        "cross_entropy",
        proj,
        grid,
        device="cuda",
        mode="sequential",
        progress=False,
    )
    assert "bn-folded" in gpu.attrs["engine"]
    np.testing.assert_allclose(gpu.values, cpu.values, rtol=1e-4)


def test_auto_mode_on_cuda_runs_vmap_only_without_convolutions():
    """``mode="auto"``: vmap for an MLP, sequential for a CNN (vmap's grouped convolutions were
    slower on the GPU); the TF32 settings in force are recorded."""
    from losstopo.models import MLP

    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    for model, mode in ((SmallCNN(1, 10, 8).eval(), "sequential"), (MLP(64, [32], 10), "vmap")):
        proj = PlaneProjector(model, random_directions(model, seed=0))
        field = evaluate(
            model, (x, y), "cross_entropy", proj, Grid.square(3), device="cuda", progress=False
        )
        assert field.attrs["mode"] == mode
        assert set(field.attrs["tf32"]) == {"matmul", "cudnn"}

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


@pytest.fixture
def tiny_data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 6, generator=g)
    y = torch.randint(0, 3, (50,), generator=g)
    return x, y

"""Models and data as a user's own script builds them: plain torch, none of the package's helpers.

The evaluation benchmark measures the engine on these, not on ``losstopo.models``, so that its
fast paths cannot depend on the package's own classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn


def digits_data(images: bool, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits scaled to [0, 1]: (n, 64) or (n, 1, 8, 8) float32, int64."""
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target, dtype=torch.int64)
    if images:
        x = x.view(-1, 1, 8, 8)
    return (x[:n], y[:n]) if n else (x, y)


def cifar_format_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic CIFAR-format data: (n, 3, 32, 32) images, labels from a fixed random teacher."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    teacher = torch.randn(3 * 4 * 4, 10, generator=g)
    y = (F.adaptive_avg_pool2d(x, 4).flatten(1) @ teacher).argmax(1)
    return x, y


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )


def small_cnn(width: int = 16) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1, stride=2, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, 10),
    )


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, skip: bool):
        super().__init__()
        self.skip = skip
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if skip and (stride != 1 or cin != cout):
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.b1(self.c1(x)))
        out = self.b2(self.c2(out))
        if self.skip:
            out = out + (x if self.down is None else self.down(x))
        return F.relu(out)


class ResNet20(nn.Module):
    """He et al.'s CIFAR ResNet-20; ``skip=False``: Li et al.'s no-shortcut variant."""

    def __init__(self, in_channels: int = 3, skip: bool = True):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(Block(cin, cout, stride if i == 0 else 1, skip))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = self.blocks(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def workload(
    name: str, digit_images: int | None = None, cifar_images: int = 32
) -> tuple[nn.Module, torch.Tensor, torch.Tensor, int, int]:
    """``(model, x, y, grid resolution, training steps)`` of a benchmark workload: ``mlp``,
    ``cnn``, ``resnet20[-noskip]-digits`` (the first ``digit_images`` digits, default all) or
    ``resnet20[-noskip]-cifar`` (``cifar_images`` synthetic images); the model untrained."""
    torch.manual_seed(0)
    if name == "mlp":
        x, y = digits_data(images=False)
        return mlp(), x, y, 41, 40
    if name == "cnn":
        x, y = digits_data(images=True)
        return small_cnn(), x, y, 21, 40
    skip = "noskip" not in name
    if name.endswith("digits"):
        x, y = digits_data(images=True, n=digit_images)
        return ResNet20(in_channels=1, skip=skip), x, y, 21, 30
    if name.endswith("cifar"):
        x, y = cifar_format_data(cifar_images)
        return ResNet20(in_channels=3, skip=skip), x, y, 21, 30
    raise ValueError(f"unknown workload {name!r}")


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 0.05):
    """A plain SGD loop on mini-batches of 128; the model ends in eval mode."""
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (min(128, len(x)),))
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model.eval()

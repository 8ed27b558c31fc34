"""Built-in models: an MLP, a small CNN with BatchNorm, CIFAR ResNets and deep residual MLPs with
and without shortcuts (Li et al.'s comparison), and a tanh MLP for physics-informed networks.

Every model is an ``nn.Module``; the MLP, CNN and PINN MLP are ``nn.Sequential`` so the evaluation
engine can use its first-layer fast path.

Examples
--------
>>> import torch
>>> from losstopo.models import MLP, SmallCNN, resnet20
>>> MLP(64, (128, 128), 10)(torch.zeros(2, 64)).shape
torch.Size([2, 10])
>>> SmallCNN(in_channels=1, n_classes=10)(torch.zeros(2, 1, 8, 8)).shape
torch.Size([2, 10])
>>> resnet20(skip=False)(torch.zeros(1, 3, 32, 32)).shape
torch.Size([1, 10])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .errors import InvalidParameterError, validate_choice, validate_int

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
}


class MLP(nn.Sequential):
    """A fully connected network ``in -> hidden... -> out`` (inputs are flattened first).

    >>> sum(p.numel() for p in MLP(64, (128, 128), 10).parameters())
    26122
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] = (128, 128),
        out_features: int = 10,
        activation: str = "relu",
    ):
        validate_int(in_features, "in_features", low=1)
        validate_int(out_features, "out_features", low=1)
        validate_choice(activation, "activation", tuple(_ACTIVATIONS))
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            validate_int(h, "hidden width", low=1)
            layers += [nn.Linear(width, h), _ACTIVATIONS[activation]()]
            width = h
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)


class SmallCNN(nn.Sequential):
    """Two 3x3 convolutions with BatchNorm and ReLU, global average pooling, a linear head.

    Sized for 8x8 digits; works on any image size.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 10, width: int = 16):
        validate_int(in_channels, "in_channels", low=1)
        validate_int(n_classes, "n_classes", low=1)
        validate_int(width, "width", low=1)
        super().__init__(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, stride=2, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, n_classes),
        )


class PINNMLP(nn.Sequential):
    """A tanh MLP for physics-informed networks: ``(x[, t]) -> u``."""

    def __init__(
        self, in_features: int = 1, hidden: Sequence[int] = (32, 32, 32), out_features: int = 1
    ):
        layers: list[nn.Module] = []
        width = validate_int(in_features, "in_features", low=1)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.Tanh()]
            width = h
        layers.append(nn.Linear(width, validate_int(out_features, "out_features", low=1)))
        super().__init__(*layers)


class BasicBlock(nn.Module):
    """He et al.'s CIFAR basic block; ``skip=False`` drops the shortcut (Li et al.'s no-skip nets)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if skip and (stride != 1 or in_planes != planes):
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.skip:
            out = out + self.shortcut(x)
        return torch.relu(out)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images (He et al. 2016), with or without shortcuts.

    Three stages of ``(depth - 2) / 6`` basic blocks with ``width``, ``2 * width`` and
    ``4 * width`` channels (He et al.: 16), the last two halving the image; global average pooling
    makes any image size work (8x8 digits end in 2x2 maps).

    >>> import torch
    >>> net = CifarResNet(8, skip=False, in_channels=1, width=4)
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        depth: int = 20,
        skip: bool = True,
        n_classes: int = 10,
        in_channels: int = 3,
        width: int = 16,
    ):
        super().__init__()
        if not isinstance(depth, int) or (depth - 2) % 6 != 0 or depth < 8:
            raise InvalidParameterError(
                f"A CIFAR ResNet depth must be 6n+2 (8, 14, 20, 32, 44, 56, 110); got {depth}."
            )
        validate_int(n_classes, "n_classes", low=1)
        validate_int(in_channels, "in_channels", low=1)
        validate_int(width, "width", low=1)
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers: list[nn.Module] = []
        in_planes = width
        for planes, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
            for i in range(n):
                layers.append(BasicBlock(in_planes, planes, stride if i == 0 else 1, skip=skip))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.pool(self.layers(out)).flatten(1)
        return self.fc(out)


class ResidualBlock(nn.Module):
    """:class:`BasicBlock` with linear layers: ``relu(x + bn(fc(relu(bn(fc(x))))))``."""

    def __init__(self, width: int, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.fc1 = nn.Linear(width, width, bias=False)
        self.bn1 = nn.BatchNorm1d(width)
        self.fc2 = nn.Linear(width, width, bias=False)
        self.bn2 = nn.BatchNorm1d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.fc2(torch.relu(self.bn1(self.fc1(x)))))
        return torch.relu(out + x if self.skip else out)


class ResidualMLP(nn.Module):
    """A deep residual MLP: a linear stem, ``n_blocks`` :class:`ResidualBlock`, a linear head.

    The CIFAR ResNet's design (two BatchNorm layers per block, a shortcut around them that
    ``skip=False`` drops) on flat inputs, with ``2 * n_blocks + 2`` linear layers: cheap enough
    to compare deep networks with and without shortcuts on a CPU.

    >>> import torch
    >>> net = ResidualMLP(64, width=16, n_blocks=4, skip=False)
    >>> net(torch.zeros(3, 64)).shape, net.depth
    (torch.Size([3, 10]), 10)
    """

    def __init__(
        self,
        in_features: int = 64,
        width: int = 32,
        n_blocks: int = 8,
        out_features: int = 10,
        skip: bool = True,
    ):
        super().__init__()
        validate_int(in_features, "in_features", low=1)
        validate_int(width, "width", low=1)
        self.n_blocks = validate_int(n_blocks, "n_blocks", low=0)
        validate_int(out_features, "out_features", low=1)
        self.skip = skip
        self.stem = nn.Linear(in_features, width, bias=False)
        self.bn = nn.BatchNorm1d(width)
        self.blocks = nn.Sequential(*(ResidualBlock(width, skip) for _ in range(n_blocks)))
        self.fc = nn.Linear(width, out_features)

    @property
    def depth(self) -> int:
        """Number of linear layers."""
        return 2 * self.n_blocks + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn(self.stem(x.flatten(1))))
        return self.fc(self.blocks(out))


def resnet20(skip: bool = True, n_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-20 for CIFAR-10; ``skip=False`` is Li et al.'s ResNet-20-noshort."""
    return CifarResNet(20, skip=skip, n_classes=n_classes, in_channels=in_channels)


def resnet56(skip: bool = True, n_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-56 for CIFAR-10; ``skip=False`` is Li et al.'s ResNet-56-noshort."""
    return CifarResNet(56, skip=skip, n_classes=n_classes, in_channels=in_channels)


#: Name -> factory, as the command line knows them. Image models (:data:`IMAGE_MODELS`) take
#: the number of input channels; the others take no argument.
BUILTIN_MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": lambda: MLP(64, (128, 128), 10),
    "cnn": lambda in_channels=1: SmallCNN(in_channels, 10),
    "resnet20": lambda in_channels=3: resnet20(True, in_channels=in_channels),
    "resnet20-noskip": lambda in_channels=3: resnet20(False, in_channels=in_channels),
    "resnet56": lambda in_channels=3: resnet56(True, in_channels=in_channels),
    "resnet56-noskip": lambda in_channels=3: resnet56(False, in_channels=in_channels),
    "pinn": lambda: PINNMLP(1),
}

#: Built-in models of images, whose first layer takes ``in_channels`` (1 for the 8x8 digits,
#: 3 for CIFAR-10; by default 1 for the CNN and 3 for the ResNets).
IMAGE_MODELS = ("cnn", "resnet20", "resnet20-noskip", "resnet56", "resnet56-noskip")


def build_model(name: str, seed: int = 0, *, in_channels: int | None = None) -> nn.Module:
    """A built-in model by name, initialised deterministically from ``seed``.

    ``in_channels`` sets the input channels of an image model (:data:`IMAGE_MODELS`; default:
    the model's own).

    >>> type(build_model("mlp")).__name__
    'MLP'
    >>> build_model("resnet20-noskip", in_channels=1).conv1.in_channels
    1
    """
    if name not in BUILTIN_MODELS:
        raise InvalidParameterError(
            f"Unknown model {name!r}; choose one of {', '.join(sorted(BUILTIN_MODELS))} or give "
            "'module:function' returning an nn.Module."
        )
    if in_channels is not None and name not in IMAGE_MODELS:
        raise InvalidParameterError(
            f"Model {name!r} does not take images, so 'in_channels' does not apply; leave it "
            f"unset or choose one of {', '.join(IMAGE_MODELS)}."
        )
    torch.manual_seed(seed)
    if in_channels is None:
        return BUILTIN_MODELS[name]()
    return BUILTIN_MODELS[name](validate_int(in_channels, "in_channels", low=1))

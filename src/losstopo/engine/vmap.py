"""``k`` points at once through ``torch.func.functional_call`` and ``vmap`` (meant for GPUs).

The parameters of the ``k`` points are stacked on a leading axis and the network runs once per
batch of data for all of them; buffers (BatchNorm statistics) are shared.

Examples
--------
>>> import torch
>>> from losstopo import ParameterSpace
>>> from losstopo.data import EvalData
>>> from losstopo.engine.metrics import Reduction
>>> _ = torch.manual_seed(0)
>>> net = torch.nn.Linear(3, 2)
>>> space = ParameterSpace.from_module(net)
>>> data = EvalData.from_any((torch.randn(6, 3), torch.randint(0, 2, (6,))), "cross_entropy")
>>> flat = torch.stack([space.flatten(net), 2 * space.flatten(net)])
>>> reduction = Reduction("cross_entropy", None, (), data.n_samples)
>>> values = evaluate_stacked(net, space, flat, data, 4, torch.device("cpu"), reduction)
>>> with torch.no_grad():
...     direct = torch.nn.functional.cross_entropy(net(data.inputs), data.targets)
>>> bool(abs(values[0, 0] - float(direct)) < 1e-6), values.shape
(True, (2, 1))
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data import EvalData
from ..space import ParameterSpace
from .metrics import Reduction

CONVOLUTIONS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def vmap_suits(model: nn.Module) -> bool:
    """Whether ``mode="auto"`` should run ``model`` through vmap on a GPU: not when it has
    convolution layers. vmap runs a convolution whose weight differs per point as one grouped
    convolution, and on an NVIDIA H200 the ResNet-20s ran 1.1-1.6x slower that way than through
    the sequential engine (``docs/benchmarks.md``); an MLP ran 1.15x faster through vmap.

    >>> vmap_suits(torch.nn.Sequential(torch.nn.Linear(4, 3)))
    True
    >>> vmap_suits(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten()))
    False
    """
    return not any(isinstance(m, CONVOLUTIONS) for m in model.modules())


def evaluate_stacked(
    net: nn.Module,
    space: ParameterSpace,
    flat: torch.Tensor,
    data: EvalData,
    batch_size: int,
    device: torch.device,
    reduction: Reduction,
    copy_inputs: bool = False,
) -> np.ndarray:
    """``[loss, metrics...]`` (``(k, 1 + n_metrics)``) at the ``k`` parameter vectors ``flat``
    (``copy_inputs``: the model writes into its input, so each batch is copied first)."""
    from torch.func import functional_call, vmap

    k = flat.shape[0]
    buffers = dict(net.named_buffers())
    params = {
        n: flat[:, o : o + m].reshape(k, *s)
        for n, o, m, s in zip(space.names, space.offsets, space.numels, space.shapes, strict=True)
    }

    def call(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(net, (p, buffers), (x,))

    totals = torch.zeros((k, reduction.n_columns), dtype=torch.float64, device=device)
    with torch.inference_mode():
        for x, y in data.batches(batch_size, device):
            outs = vmap(call, in_dims=(0, None))(params, x.clone() if copy_inputs else x)
            totals += reduction.stacked(outs, y)
    return (totals / reduction.n_samples).cpu().numpy()

"""BatchNorm in the engine: eval-mode folding into the layer before it, and re-estimation.

Folding: in eval mode ``BN(W x + b) = (s W) x + (b - mean) s + beta`` with ``s = gamma / sqrt(var + eps)``:
one layer instead of two passes over the activations. The evaluation engine rebuilds the folded
weights from the current parameters (cheap: a few operations on the weights) before every point,
so the fold is exact up to float rounding and never stale.

Only ``nn.Sequential`` containers (nested ones too) are rewritten: a layer immediately followed by
a BatchNorm with running statistics (and a ReLU right after the pair runs in place, on the folded
layer's fresh output). Modules with their own ``forward`` (residual blocks) are
left as they are.

Re-estimation (``bn="recompute"``): :func:`recompute_batchnorm` resets the running statistics and
averages them over a fixed number of fixed-size batches in training mode.

Examples
--------
>>> import torch
>>> from losstopo.models import SmallCNN
>>> net = SmallCNN(1, 10, width=4).eval()
>>> folded = fold_batchnorm(net)
>>> folded.refresh()
>>> x = torch.randn(5, 1, 8, 8)
>>> bool(torch.allclose(folded.net(x), net(x), atol=1e-5))
True
>>> len(folded.pairs)
2
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_BatchNorm = nn.modules.batchnorm._BatchNorm
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class FoldedLayer(nn.Module):
    """A convolution or linear layer with the BatchNorm after it folded in (eval mode)."""

    def __init__(self, layer: nn.Module, bn: _BatchNorm):
        super().__init__()
        self.layer = layer
        self.bn = bn
        assert bn.running_var is not None and bn.running_mean is not None
        self.inv_std = torch.rsqrt(bn.running_var.detach() + bn.eps)
        self.mean = bn.running_mean.detach().clone()
        weight = layer.weight
        assert isinstance(weight, torch.Tensor)
        self.shape = (-1,) + (1,) * (weight.dim() - 1)
        self.weight = torch.empty_like(weight.detach())
        self.bias = torch.empty_like(self.mean)
        self.scale: torch.Tensor | None = None  # held: the weight's scale, fixed across points

    @torch.no_grad()
    def hold(self) -> None:
        """Compute the scale and the folded bias once, from the current parameters: the points
        to come leave the BatchNorm's affine parameters and the layer's bias as they are, so
        :meth:`refresh` only rescales the weight (one operation, not five)."""
        self.scale = None
        self.refresh()
        gamma = self.bn.weight
        scale = self.inv_std if gamma is None else self.inv_std * gamma
        self.scale = scale.view(self.shape).clone()

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute the folded weight and bias from the current parameters."""
        weight = self.layer.weight
        assert isinstance(weight, torch.Tensor)
        if self.scale is not None:
            torch.mul(weight, self.scale, out=self.weight)
            return
        gamma = self.bn.weight
        scale = self.inv_std if gamma is None else self.inv_std * gamma
        torch.mul(weight, scale.view(self.shape), out=self.weight)
        bias = self.layer.bias
        centred = -self.mean if not isinstance(bias, torch.Tensor) else bias - self.mean
        torch.mul(centred, scale, out=self.bias)
        if self.bn.bias is not None:
            self.bias.add_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.layer, nn.Linear):
            if x.dim() != 2:
                # Linear acts on the last axis, BatchNorm1d on axis 1: only (N, C) inputs fold
                return self.bn(self.layer(x))
            return F.linear(x, self.weight, self.bias)
        return self.layer._conv_forward(x, self.weight, self.bias)  # type: ignore[operator]


@dataclass
class Folded:
    """A network sharing the original's parameters, with BatchNorms folded; call ``refresh``."""

    net: nn.Module
    pairs: list[FoldedLayer]

    def refresh(self) -> None:
        for pair in self.pairs:
            pair.refresh()

    def hold_fixed(self, moving: set[str], named: nn.Module) -> int:
        """:meth:`FoldedLayer.hold` every pair whose BatchNorm affine parameters and layer bias
        no point moves (``moving``: the names, in ``named``, of the parameters the points
        move); how many."""
        ids = {id(p) for name, p in named.named_parameters() if name in moving}
        held = 0
        for pair in self.pairs:
            params = (pair.bn.weight, pair.bn.bias, pair.layer.bias)
            if not any(isinstance(p, torch.Tensor) and id(p) in ids for p in params):
                pair.hold()
                held += 1
        return held


def has_hooks(module: nn.Module) -> bool:
    """Whether ``module`` has forward (pre-)hooks or parametrizations of its own."""
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or getattr(module, "_forward_hooks_with_kwargs", None)
        or getattr(module, "parametrizations", None)
    )


def is_plain_layer(module: nn.Module) -> bool:
    """Exactly ``nn.Linear``/``nn.ConvNd``/``nn.BatchNormNd``: no subclass ``forward``, no hooks,
    no parametrization, so its output can be computed from its weights directly."""
    if type(module) not in (nn.Linear, *_CONV, *_BN):
        return False
    if module._forward_hooks or module._forward_pre_hooks:
        return False
    if getattr(module, "parametrizations", None):
        return False
    from torch.nn.modules import module as module_mod

    return not (module_mod._global_forward_hooks or module_mod._global_forward_pre_hooks)


def foldable(layer: nn.Module, bn: nn.Module) -> bool:
    """Whether eval-mode ``bn`` right after ``layer`` can be folded into it."""
    if not (is_plain_layer(layer) and is_plain_layer(bn)) or type(bn) not in _BN:
        return False
    assert isinstance(bn, _BatchNorm)
    if bn.training or not bn.track_running_stats:
        return False
    if bn.running_mean is None or bn.running_var is None:
        return False
    if isinstance(layer, nn.Linear):
        return layer.out_features == bn.num_features and isinstance(bn, nn.BatchNorm1d)
    if isinstance(layer, _CONV):
        return layer.padding_mode == "zeros" and layer.out_channels == bn.num_features
    return False


def _rewrite(seq: nn.Sequential, pairs: list[FoldedLayer]) -> nn.Sequential:
    mods = list(seq)  # not children(): a module used twice must stay twice
    out: list[nn.Module] = []
    i = 0
    while i < len(mods):
        m = mods[i]
        if i + 1 < len(mods) and foldable(m, mods[i + 1]):
            folded = FoldedLayer(m, mods[i + 1])  # type: ignore[arg-type]
            pairs.append(folded)
            out.append(folded)
            i += 2
            if i < len(mods) and type(mods[i]) is nn.ReLU:
                out.append(nn.ReLU(inplace=True))  # the folded layer's output is a fresh tensor
                i += 1
            continue
        out.append(_rewrite(m, pairs) if type(m) is nn.Sequential else m)
        i += 1
    return nn.Sequential(*out)


def fold_batchnorm(net: nn.Module) -> Folded | None:
    """The folded network for an eval-mode ``nn.Sequential`` (``None`` when nothing folds)."""
    if not isinstance(net, nn.Sequential) or type(net).forward is not nn.Sequential.forward:
        return None  # a subclass with its own forward: its structure is not the call order
    if net.training:
        return None
    pairs: list[FoldedLayer] = []
    rewritten = _rewrite(net, pairs)
    if not pairs:
        return None
    return Folded(rewritten.eval(), pairs)


def batchnorm_modules(net: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm module of ``net`` (any dimension, subclasses too)."""
    return [m for m in net.modules() if isinstance(m, _BatchNorm)]


def has_batch_statistics(net: nn.Module) -> bool:
    """Whether a BatchNorm of ``net`` keeps no running statistics, so that even in eval mode it
    normalises with each batch's own statistics (values then depend on the batch size)."""
    return any(m.running_mean is None for m in batchnorm_modules(net))


def recompute_batchnorm(
    net: nn.Module,
    modules: list[_BatchNorm],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_batches: int,
) -> None:
    """Re-estimate the running statistics of ``modules`` (in ``net``) over the first
    ``n_batches`` of ``batches``: a cumulative average in training mode; ``net`` ends in eval mode.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3)).eval()
    >>> x = torch.randn(8, 2)
    >>> recompute_batchnorm(net, batchnorm_modules(net), [(x, x)], n_batches=4)
    >>> bool(torch.allclose(net[1].running_mean, net[0](x).mean(0).detach()))
    True
    """
    saved = [(m, m.momentum) for m in modules]
    for m in modules:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    net.train()
    with torch.no_grad():
        for i, (x, _) in enumerate(batches):
            if i >= n_batches:
                break
            net(x)
    net.eval()
    for m, momentum in saved:
        m.momentum = momentum


def batchnorm_policy(
    net: nn.Module, bn: str, n_batches: int = 4, batch_size: int = 256, moved: bool = False
) -> str:
    """One phrase saying which BatchNorm statistics a loss of ``net`` was computed with
    (``moved``: a plane of ``dir_type="states"`` directions moves them with the parameters).

    Recorded with every field (``attrs["batchnorm"]``) so that two losses of the same weights
    under different policies are never compared unknowingly.

    Examples
    --------
    >>> import torch
    >>> batchnorm_policy(torch.nn.Linear(2, 2), "eval")
    'none (no BatchNorm layers)'
    >>> batchnorm_policy(torch.nn.BatchNorm1d(2), "recompute", 4, 256)
    'recomputed: statistics re-estimated at every point from 4 batches of 256 samples'
    """
    modules = batchnorm_modules(net)
    if not modules:
        return "none (no BatchNorm layers)"
    if has_batch_statistics(net):
        return "batch: statistics of each evaluation batch (BatchNorm without running statistics)"
    if moved:
        return "moved: running statistics moved with the parameters along the directions"
    if bn == "recompute":
        return (
            f"recomputed: statistics re-estimated at every point from {n_batches} batches of "
            f"{batch_size} samples"
        )
    return "running: the running statistics stored in the model (eval mode)"

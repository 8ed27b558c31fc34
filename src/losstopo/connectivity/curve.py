"""Curves of low loss between two models (Garipov et al. 2018): quadratic Bezier and polychain.

Both endpoints stay fixed; one bend ``theta`` is trained, starting at the midpoint, by sampling
``t`` uniformly for every batch and minimising the loss at the curve's point ``phi(t)``:

- Bezier: ``phi(t) = (1 - t)^2 A + 2 t (1 - t) theta + t^2 B``
- polychain: ``A -> theta`` for ``t <= 1/2``, then ``theta -> B``

Examples
--------
>>> import torch
>>> from losstopo.connectivity import fit_curve
>>> from losstopo.datasets import synthetic_classification
>>> _ = torch.manual_seed(0)
>>> a, b = torch.nn.Linear(16, 3), torch.nn.Linear(16, 3)
>>> data = synthetic_classification(n_samples=64)
>>> curve = fit_curve(a, b, data, "cross_entropy", epochs=2, progress=False)
>>> curve.points(3).shape, curve.kind
((3, 51), 'bezier')
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ..data import EvalData, resolve_loss
from ..engine import resolve_device
from ..errors import (
    CheckpointError,
    InvalidParameterError,
    validate_choice,
    validate_float,
    validate_int,
)
from ..space import ParameterSpace
from .path import BN, buffer_interpolation, check_same_architecture, has_running_stats, path_values
from .profile import PathProfile, validate_n_points

Kind = Literal["bezier", "polychain"]

__all__ = ["Curve", "curve_weights", "fit_curve"]


def curve_weights(kind: str, t: Any) -> np.ndarray:
    """Weights ``(m, 3)`` of ``(A, theta, B)`` at the positions ``t`` of a curve of ``kind``.

    >>> curve_weights("bezier", [0.0, 0.5, 1.0]).tolist()
    [[1.0, 0.0, 0.0], [0.25, 0.5, 0.25], [0.0, 0.0, 1.0]]
    >>> curve_weights("polychain", [0.25]).tolist()
    [[0.5, 0.5, 0.0]]
    """
    tt = np.asarray(t, dtype=np.float64).ravel()
    if kind == "bezier":
        return np.stack([(1 - tt) ** 2, 2 * tt * (1 - tt), tt**2], axis=1)
    first = tt <= 0.5
    s = np.where(first, 2 * tt, 2 * tt - 1)
    return np.stack(
        [np.where(first, 1 - s, 0.0), np.where(first, s, 1 - s), np.where(first, 0.0, s)], axis=1
    )


@dataclass(frozen=True, eq=False)
class Curve:
    """A trained curve between two models: endpoints, bend, and the architecture to evaluate it.

    Attributes
    ----------
    kind : "bezier" or "polychain"
    start, bend, end : flat parameter vectors (float64) of A, the trained bend and B
    model : a copy of model A (architecture and A's buffers); ``end_buffers``: B's buffers
    history : mean training loss of each epoch
    attrs : provenance (epochs, lr, seed, batch size)
    """

    kind: str
    start: np.ndarray
    bend: np.ndarray
    end: np.ndarray
    model: nn.Module
    end_buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    attrs: dict[str, Any] = field(default_factory=dict)

    def points(self, n: int) -> np.ndarray:
        """``n`` parameter vectors ``(n, n_params)`` evenly spaced in ``t`` along the curve."""
        n = validate_n_points(n)
        return self.at(np.linspace(0.0, 1.0, n))

    def at(self, t: Any) -> np.ndarray:
        """The parameter vectors at the positions ``t`` (``(m,)``): ``(m, n_params)``, float64."""
        w = curve_weights(self.kind, t)
        return w[:, :1] * self.start + w[:, 1:2] * self.bend + w[:, 2:] * self.end

    def evaluate(
        self,
        data: Any,
        loss: Any,
        n_points: int = 41,
        metrics: Sequence[str] = ("accuracy",),
        bn: BN = "recompute",
        device: str | torch.device | None = None,
    ) -> PathProfile:
        """Loss and metrics at ``n_points`` positions along the curve, and its barrier.

        BatchNorm statistics are re-estimated at every position (``bn="recompute"``) or
        interpolated linearly between the endpoints' (``"eval"``).
        """
        n_points = validate_n_points(n_points)
        other = copy.deepcopy(self.model)
        other.load_state_dict(self.end_buffers, strict=False)
        return path_values(
            self.model,
            data,
            loss,
            np.linspace(0.0, 1.0, n_points),
            lambda coords: self.at(np.asarray(coords)[:, 0]),
            metrics,
            bn,
            device,
            buffers=buffer_interpolation(self.model, other),
            attrs={"kind": self.kind, **{k: v for k, v in self.attrs.items() if k != "kind"}},
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the curve (tensors only; read back with :meth:`load` and the same architecture)."""
        torch.save(
            {
                "format": "losstopo-curve",
                "kind": self.kind,
                "start": torch.from_numpy(self.start),
                "bend": torch.from_numpy(self.bend),
                "end": torch.from_numpy(self.end),
                "start_buffers": dict(self.model.named_buffers()),
                "end_buffers": dict(self.end_buffers),
                "history": torch.from_numpy(np.asarray(self.history, dtype=np.float64)),
                "attrs": repr(self.attrs),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], model: nn.Module) -> Curve:
        """Read a curve written by :meth:`save`; ``model`` gives the architecture."""
        import ast

        where = Path(path)
        if not where.is_file():
            raise CheckpointError(f"Curve file {where} does not exist; check the path.")
        try:
            obj = torch.load(where, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same mistake
            raise CheckpointError(
                f"{where} cannot be read as a curve ({type(exc).__name__}); pass a file written "
                "by Curve.save."
            ) from exc
        if not isinstance(obj, dict) or obj.get("format") != "losstopo-curve":
            raise CheckpointError(f"{where} is not a curve; pass a file written by Curve.save.")
        n = ParameterSpace.from_module(model).n_params
        if obj["start"].numel() != n:
            raise CheckpointError(
                f"The curve in {where} has {obj['start'].numel()} parameters but the model has "
                f"{n}; pass the architecture the curve was trained on."
            )
        net = copy.deepcopy(model)
        net.load_state_dict(obj["start_buffers"], strict=False)
        return cls(
            obj["kind"],
            obj["start"].numpy(),
            obj["bend"].numpy(),
            obj["end"].numpy(),
            net,
            dict(obj["end_buffers"]),
            obj["history"].numpy(),
            ast.literal_eval(obj["attrs"]),
        )


def fit_curve(
    model_a: nn.Module,
    model_b: nn.Module,
    data: Any,
    loss: Any,
    kind: Kind = "bezier",
    epochs: int = 20,
    lr: float = 0.4,
    seed: int = 0,
    progress: bool = True,
    *,
    batch_size: int = 64,
    momentum: float = 0.9,
    device: str | torch.device | None = None,
) -> Curve:
    """Train the bend of a Bezier curve or polychain between two fixed models.

    Parameters
    ----------
    model_a, model_b : the endpoints, two models of the same architecture (never modified)
    data : training data: an ``(inputs, targets)`` pair (shuffled with ``seed`` every epoch), a
        DataLoader or an iterable of pairs (used as given)
    loss : "cross_entropy", "mse" or a callable
    kind : "bezier" (quadratic Bezier) or "polychain" (one bend)
    epochs, lr, momentum, batch_size : SGD on the bend, one uniform ``t`` per batch; the
        learning rate is ``lr`` for the first half of the epochs, then decays linearly to
        ``lr / 100`` (:func:`lr_factor`). A step on the bend moves the curve's midpoint by a
        quarter of it (the bend's weight there is 1/2, and the gradient carries another 1/2), so
        the default ``lr=0.4`` trains the middle of the curve like SGD at 0.1 trains a model
    seed : seeds the shuffling and the draws of ``t``
    progress : show a progress bar over epochs

    Returns
    -------
    Curve
        Evaluate it with :meth:`Curve.evaluate`; BatchNorm layers run in training mode while the
        bend is trained and have their statistics re-estimated at every evaluated ``t``.
    """
    validate_choice(kind, "kind", ("bezier", "polychain"))
    epochs = validate_int(epochs, "epochs", low=1)
    batch_size = validate_int(batch_size, "batch_size", low=1)
    lr = validate_float(lr, "lr", low=0.0, strict_low=True)
    momentum = validate_float(momentum, "momentum", low=0.0)
    check_same_architecture(model_a, model_b)
    loss_fn, loss_name = resolve_loss(loss)
    dev = resolve_device(device)
    train_data = EvalData.from_any(data, loss_name, dev)
    space = ParameterSpace.from_module(model_a)
    if space.n_params == 0:
        raise InvalidParameterError("The model has no trainable parameters, so no curve to fit.")
    start = space.flatten(model_a).detach().to(dev)
    end = space.flatten(model_b).detach().to(dev)
    bend = ((start + end) / 2).clone().requires_grad_(True)
    net = copy.deepcopy(model_a).to(dev)
    for p in net.parameters():
        p.requires_grad_(False)
    net.train()
    velocity = torch.zeros_like(bend)  # SGD with momentum (torch.optim.SGD's update), by hand
    gen = torch.Generator().manual_seed(seed)
    history = []
    bar = _bar(epochs, progress)
    try:
        for epoch in range(epochs):
            step = lr * lr_factor(epoch, epochs)
            total, count = 0.0, 0
            for x, y in _shuffled(train_data, batch_size, gen, dev):
                t = float(torch.rand((), generator=gen))
                w = curve_weights(kind, [t])[0]
                flat = float(w[0]) * start + float(w[1]) * bend + float(w[2]) * end
                params = space.unflatten(flat)
                value = loss_fn(functional_call(net, params, (x,)), y)
                (grad,) = torch.autograd.grad(value, bend)
                with torch.no_grad():
                    velocity.mul_(momentum).add_(grad)
                    bend.sub_(velocity, alpha=step)
                total += float(value.detach()) * len(x)
                count += len(x)
            history.append(total / max(count, 1))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{history[-1]:.4g}")
    finally:
        if bar is not None:
            bar.close()
    template = copy.deepcopy(model_a).cpu().eval()
    return Curve(
        kind,
        start.cpu().double().numpy(),
        bend.detach().cpu().double().numpy(),
        end.cpu().double().numpy(),
        template,
        {k: v.detach().cpu().clone() for k, v in model_b.named_buffers()},
        np.asarray(history),
        {"kind": kind, "epochs": epochs, "lr": lr, "momentum": momentum, "seed": seed,
         "batch_size": batch_size, "loss": loss_name, "bn_in_training": has_running_stats(net)},
    )  # fmt: skip


def lr_factor(epoch: int, epochs: int) -> float:
    """Garipov et al.'s schedule: 1 for the first half, down linearly to 0.01 at 90%, then 0.01.

    >>> [round(lr_factor(e, 10), 3) for e in range(10)]
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.753, 0.505, 0.257, 0.01]
    """
    frac = epoch / epochs
    if frac <= 0.5:
        return 1.0
    if frac <= 0.9:
        return 1.0 - 0.99 * (frac - 0.5) / 0.4
    return 0.01


def _shuffled(data: EvalData, batch_size: int, gen: torch.Generator, dev: torch.device) -> Any:
    if data.resident:
        assert data.inputs is not None and data.targets is not None
        order = torch.randperm(data.n_samples, generator=gen).to(data.inputs.device)
        for i in range(0, data.n_samples, batch_size):
            idx = order[i : i + batch_size]
            yield data.inputs[idx], data.targets[idx]
    else:
        yield from data.batches(batch_size, dev)


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="epoch", desc="curve")

"""`hvp`: the Hessian of the mean loss over the data as a scipy ``LinearOperator``.

The loss is the one :func:`losstopo.evaluate` reports: the per-batch loss sums of the engine's
reduction, added over every batch of the data and divided by the number of samples, with the
model in eval mode (BatchNorm uses its running statistics). The product ``H v`` is the
derivative of ``grad(L) . v``, differentiated a second time in reverse mode (or, with
``mode="forward-over-reverse"``, ``torch.func.jvp`` of ``torch.func.grad``), batch by batch,
accumulated in float64. When the data fits in one batch, the gradient's graph is built once
per point and kept, so each further product is a single backward pass. The caller's model is never
touched: the operator holds a private eval-mode copy.

Parameters that the loss does not depend on give zero rows and columns of the Hessian.

Examples
--------
>>> import numpy as np, torch
>>> from losstopo import hvp
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
>>> x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
>>> H = hvp(model, (x, y), "cross_entropy")
>>> H.shape
(26, 26)
>>> v = np.ones(26)
>>> bool(np.allclose(H @ v, H.dense() @ v))
True
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import LinearOperator
from torch import nn
from torch.func import functional_call, grad, jvp

from ..data import EvalData, resolve_loss
from ..engine import resolve_device
from ..engine.metrics import Reduction
from ..errors import (
    EvaluationError,
    InvalidParameterError,
    InvalidTypeError,
    ShapeMismatchError,
    validate_choice,
    validate_int,
)
from ..projectors.base import as_points
from ..space import ParameterSpace

__all__ = ["HessianOperator", "hvp"]

#: Samples per batch of a Hessian-vector product (activations are kept for two passes).
DEFAULT_BATCH_SIZE = 2048


class HessianOperator(LinearOperator):
    """``v -> H v`` for the Hessian ``H`` of the mean loss at one point of parameter space.

    Build it with :func:`hvp`. Vectors are flat parameter vectors (the model's
    :class:`~losstopo.ParameterSpace` order), float64 in and out. ``n_hvp`` counts the products
    computed so far; ``dense()`` builds the whole matrix (``n_params`` products: tiny models).
    """

    def __init__(
        self,
        net: nn.Module,
        space: ParameterSpace,
        center: torch.Tensor,
        data: EvalData,
        reduction: Reduction,
        device: torch.device,
        batch_size: int,
        dtype: torch.dtype,
        mode: str = "reverse-over-reverse",
    ):
        n = space.n_params
        super().__init__(dtype=np.float64, shape=(n, n))
        self.net = net
        self.space = space
        self.center = center
        self.data = data
        self.reduction = reduction
        self.device = device
        self.batch_size = batch_size
        self.param_dtype = dtype
        self.n_hvp = 0
        self.mode = mode
        #: keep the gradient's graph between products when the data is one batch (one backward
        #: pass per product instead of a forward and two backward passes)
        self.cache_graph = True
        self._graph: tuple[dict[str, torch.Tensor], tuple[Any, ...]] | None = None
        self._params = self._as_dict(center)

    # ------------------------------------------------------------------ building blocks
    def _as_dict(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.space.unflatten(flat).items()}

    def _batches(self) -> Any:
        for x, y in self.data.batches(self.batch_size, self.device):
            if x.is_floating_point():
                x = x.to(self.param_dtype)
            if y.is_floating_point():
                y = y.to(self.param_dtype)
            yield x, y

    def _batch_loss(self, x: torch.Tensor, y: torch.Tensor) -> Callable[[Any], torch.Tensor]:
        n = self.data.n_samples
        net = self.net

        def loss(params: dict[str, torch.Tensor]) -> torch.Tensor:
            out = functional_call(net, params, (x,), strict=False)
            return differentiable_loss_sum(self.reduction, out, y) / n

        return loss

    def at(self, point: Any) -> HessianOperator:
        """The same operator at another flat parameter vector (shares the model copy and data)."""
        flat = _flat_point(point, self.space.n_params, self.device, self.param_dtype)
        other = copy.copy(self)
        other.center = flat
        other._params = other._as_dict(flat)
        other._graph = None
        other.n_hvp = 0
        return other

    # ------------------------------------------------------------------ quantities
    def loss(self) -> float:
        """The mean loss at the operator's point (eval mode, no gradient)."""
        total = 0.0
        with torch.no_grad():
            for x, y in self._batches():
                total += float(self._batch_loss(x, y)(self._params))
        return total

    def gradient(self) -> np.ndarray:
        """The gradient of the mean loss at the operator's point, float64."""
        out = torch.zeros(self.space.n_params, dtype=torch.float64, device=self.device)
        for x, y in self._batches():
            g = grad(self._batch_loss(x, y))(self._params)
            out += torch.cat([g[k].reshape(-1) for k in self.space.names]).double()
        return out.cpu().numpy()

    def _one_batch(self) -> bool:
        return self.data.resident and self.data.n_samples <= self.batch_size

    def _cached_hv(self, tangent: dict[str, torch.Tensor]) -> torch.Tensor:
        """One backward pass through the gradient's graph, built once for one-batch data."""
        if self._graph is None:
            ((x, y),) = list(self._batches())
            leaves = {k: p.detach().requires_grad_(True) for k, p in self._params.items()}
            with torch.enable_grad():
                value = self._batch_loss(x, y)(leaves)
                grads = torch.autograd.grad(
                    value, list(leaves.values()), create_graph=True, allow_unused=True
                )
            self._graph = (leaves, grads)
        leaves, grads = self._graph
        with torch.enable_grad():
            terms = [
                (g * tangent[k]).sum()
                for g, k in zip(grads, leaves, strict=True)
                if g is not None and g.requires_grad
            ]
            if not terms:
                return torch.zeros(self.space.n_params, dtype=torch.float64, device=self.device)
            hv = torch.autograd.grad(
                torch.stack(terms).sum(), list(leaves.values()), retain_graph=True,
                allow_unused=True,
            )  # fmt: skip
        return torch.cat(
            [
                (h if h is not None else torch.zeros_like(leaves[k])).reshape(-1)
                for h, k in zip(hv, leaves, strict=True)
            ]
        ).double()

    def _hv(self, vec: torch.Tensor) -> torch.Tensor:
        tangent = self._as_dict(vec.to(self.param_dtype))
        if self.mode == "reverse-over-reverse" and self.cache_graph and self._one_batch():
            return self._cached_hv(tangent)
        out = torch.zeros(self.space.n_params, dtype=torch.float64, device=self.device)
        for x, y in self._batches():
            f = self._batch_loss(x, y)
            if self.mode == "forward-over-reverse":
                try:
                    hv = jvp(grad(f), (self._params,), (tangent,))[1]
                except (NotImplementedError, RuntimeError) as exc:
                    if "forward" not in str(exc).lower() and "jvp" not in str(exc).lower():
                        raise
                    self.mode = "reverse-over-reverse"
                    return self._hv(vec)
            else:
                hv = _reverse_hvp(f, self._params, tangent)
            out += torch.cat([hv[k].reshape(-1) for k in self.space.names]).double()
        return out

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        vec = torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(-1), device=self.device)
        self.n_hvp += 1
        return self._hv(vec).cpu().numpy()

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        return np.stack([self._matvec(V[:, j]) for j in range(V.shape[1])], axis=1)

    def _adjoint(self) -> HessianOperator:
        return self  # the Hessian is symmetric

    def dense(self) -> np.ndarray:
        """The full ``(n_params, n_params)`` matrix, one product per column (tiny models only)."""
        return self._matmat(np.eye(self.space.n_params))


def differentiable_loss_sum(
    reduction: Reduction, out: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """The batch's loss sum as the engine defines it, in operations autograd differentiates twice.

    The engine's built-in cross-entropy keeps digits at tiny losses with in-place kernels that
    have no derivative; the same per-sample cross-entropy here is ``F.cross_entropy`` on the
    logits in float64 (equal up to rounding). Other losses are the engine's own.
    """
    if reduction.loss_name == "cross_entropy" and y.dtype == torch.int64 and out.dim() == 2:
        return F.cross_entropy(out.double(), y, reduction="sum")
    return reduction.loss_sum(out, y)


def _reverse_hvp(
    f: Callable[[Any], torch.Tensor],
    params: dict[str, torch.Tensor],
    tangent: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    leaves = {k: p.detach().requires_grad_(True) for k, p in params.items()}
    with torch.enable_grad():
        value = f(leaves)
        grads = torch.autograd.grad(
            value, list(leaves.values()), create_graph=True, allow_unused=True
        )
        dot = sum(
            (g * tangent[k]).sum() for g, k in zip(grads, leaves, strict=True) if g is not None
        )
        if not isinstance(dot, torch.Tensor):  # no parameter reaches the loss
            return {k: torch.zeros_like(p) for k, p in leaves.items()}
        if not dot.requires_grad:
            return {k: torch.zeros_like(p) for k, p in leaves.items()}
        hv = torch.autograd.grad(dot, list(leaves.values()), allow_unused=True)
    return {
        k: (h if h is not None else torch.zeros_like(leaves[k]))
        for k, h in zip(leaves, hv, strict=True)
    }


def _flat_point(
    point: Any, n_params: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    rows = as_points(point, "point")
    if rows.shape != (1, n_params):
        raise ShapeMismatchError(
            f"The point has {rows.shape[-1]} parameters (shape {rows.shape}) but the model has "
            f"{n_params}; pass one flat parameter vector of the model."
        )
    return torch.as_tensor(rows[0], device=device, dtype=dtype)


def hvp(
    model: nn.Module,
    data: Any,
    loss: Any,
    point: Any = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    dtype: torch.dtype | None = None,
    mode: Literal["reverse-over-reverse", "forward-over-reverse"] = "reverse-over-reverse",
) -> HessianOperator:
    """The Hessian of the mean loss of ``model`` on ``data`` as a scipy ``LinearOperator``.

    Parameters
    ----------
    model : the architecture and, unless ``point`` is given, the parameters (never modified)
    data, loss : as for :func:`losstopo.evaluate` (a tensor pair, a DataLoader or pairs; a loss
        name or a callable ``(outputs, targets) -> mean loss``)
    point : a flat parameter vector to take the Hessian at (default: the model's parameters)
    device : where to compute (default :func:`losstopo.engine.default_device`)
    batch_size : samples per product batch (default 2048); the result does not depend on it
        beyond float rounding
    dtype : the parameters' floating type during the products (default the model's; pass
        ``torch.float64`` for reference-grade products on small models)
    mode : how ``H v`` is differentiated: ``"reverse-over-reverse"`` (the gradient's dot product
        with ``v`` differentiated again, the default: measured 1.3-3x faster on CPU, see
        docs/benchmarks.md) or ``"forward-over-reverse"`` (``torch.func.jvp`` of
        ``torch.func.grad``; models whose operations lack forward-mode derivatives fall back)

    Returns
    -------
    HessianOperator: ``(n_params, n_params)``, float64 in and out, with ``n_hvp``, ``loss()``,
    ``gradient()``, ``dense()`` and ``at(point)``.
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"'model' must be a torch.nn.Module; got {type(model).__name__}.")
    loss_fn, loss_name = resolve_loss(loss)
    dev = resolve_device(device)
    batch_size = validate_int(batch_size or DEFAULT_BATCH_SIZE, "batch_size", low=1)
    space = ParameterSpace.from_module(model)
    if space.n_params == 0:
        raise InvalidParameterError(
            "The model has no trainable parameters, so its loss has no Hessian; pass a model "
            "with parameters that require grad."
        )
    net = copy.deepcopy(model).eval()
    ref = next(iter(p for p in net.parameters() if p.requires_grad))
    param_dtype = dtype or ref.dtype
    if not param_dtype.is_floating_point:
        raise InvalidParameterError(f"'dtype' must be a floating type; got {param_dtype}.")
    net = net.to(device=dev, dtype=param_dtype)
    for p in net.parameters():
        p.requires_grad_(False)
    eval_data = EvalData.from_any(data, loss_name, dev)
    reduction = Reduction(loss_name, loss_fn, (), eval_data.n_samples)
    center = (
        space.flatten(net).to(dev, param_dtype)
        if point is None
        else _flat_point(point, space.n_params, dev, param_dtype)
    )
    validate_choice(mode, "mode", ("reverse-over-reverse", "forward-over-reverse"))
    op = HessianOperator(
        net, space, center, eval_data, reduction, dev, batch_size, param_dtype, mode
    )
    _check_differentiable(op)
    return op


def _check_differentiable(op: HessianOperator) -> None:
    """One gradient on a few samples, so a non-differentiable model fails here, in one sentence."""
    x, y = next(iter(op.data.batches(min(op.data.n_samples, 8), op.device)))
    if x.is_floating_point():
        x = x.to(op.param_dtype)
    if y.is_floating_point():
        y = y.to(op.param_dtype)
    leaves = {k: p.detach().requires_grad_(True) for k, p in op._params.items()}
    try:
        with torch.enable_grad():
            out = functional_call(op.net, leaves, (x,), strict=False)
            value = differentiable_loss_sum(op.reduction, out, y)
            if not value.requires_grad:
                raise EvaluationError(
                    "The loss does not depend on the model's parameters through differentiable "
                    "operations (the forward detaches its output or uses only non-differentiable "
                    "operations such as argmax or round); the Hessian needs a differentiable "
                    "forward pass."
                )
            torch.autograd.grad(value, list(leaves.values()), allow_unused=True)
    except (RuntimeError, NotImplementedError) as exc:
        raise EvaluationError(
            f"The model's forward pass cannot be differentiated ({type(exc).__name__}: {exc}); "
            "the Hessian needs every operation between the parameters and the loss to have a "
            "derivative. Replace that operation or evaluate the landscape without Hessians."
        ) from exc

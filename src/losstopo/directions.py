"""Random directions in parameter space, normalized as in Li et al. (2018).

Rows of the returned tensor are flat vectors in the order of
``ParameterSpace.from_module(model, include=...)``.

Examples
--------
>>> import torch
>>> from losstopo import random_directions
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
>>> d = random_directions(model, n_components=2, normalization="filter", ignore="biasbn", seed=0)
>>> d.shape
torch.Size([2, 23])
>>> w = model[0].weight
>>> bool(torch.allclose(d[0, :12].view(3, 4).norm(dim=1), w.norm(dim=1)))
True
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .errors import InvalidParameterError, renamed_parameter, validate_choice, validate_int
from .space import Include, ParameterSpace

Normalization = Literal["filter", "layer", "none", "weight", "dfilter", "dlayer"]
NORMALIZATIONS = ("filter", "layer", "none", "weight", "dfilter", "dlayer")


def random_directions(
    model: nn.Module,
    n_components: int = 2,
    normalization: Normalization = "filter",
    ignore: Literal["biasbn"] | None = "biasbn",
    seed: int = 0,
    include: Include = "all",
    orthogonalize: bool = False,
    *,
    n: int | None = None,
) -> torch.Tensor:
    """Gaussian directions scaled to the model's weights.

    Parameters
    ----------
    model : nn.Module
        The model whose weights set the scale (the centre of the landscape).
    n_components : int
        Number of directions (1 for a 1-D profile, 2 for a plane, 3 for a volume).
    normalization : {"filter", "layer", "none", "weight", "dfilter", "dlayer"}
        ``"filter"``: each filter (row of a linear layer, output channel of a convolution) of
        the direction is scaled to the norm of the same filter of the weights. ``"layer"``: each
        tensor is scaled to the norm of the weight tensor. ``"none"``: raw N(0, 1) entries.
        Li et al.'s other options: ``"weight"`` multiplies the direction by the weights entry
        by entry; ``"dfilter"`` scales each filter of the direction to unit norm; ``"dlayer"``
        scales each tensor of the direction to unit norm (the last two ignore the weights).
    ignore : {"biasbn", None}
        With ``"biasbn"`` the 1-D tensors (biases, BatchNorm scale and shift) get a zero
        direction. With ``None`` and a normalization, they get a copy of the weights (Li et al.).
    seed : int
        Seed of the generator; the same seed gives the same directions.
    include : {"all", "weights"}
        Which tensors form the vector (see :meth:`ParameterSpace.from_module`).
    orthogonalize : bool
        Gram-Schmidt the directions against each other after normalization (keeping each norm).

    Returns
    -------
    torch.Tensor of shape (n_components, n_params), on the model's device and dtype.
    """
    n_components = renamed_parameter(n_components, n, "n_components", "n", 2)
    n = validate_int(n_components, "n_components", low=1)
    validate_choice(normalization, "normalization", NORMALIZATIONS)
    validate_choice(ignore, "ignore", ("biasbn", None))
    seed = validate_int(seed, "seed", low=0)
    space = ParameterSpace.from_module(model, include=include)
    if space.n_params == 0:
        raise InvalidParameterError(
            "The model has no trainable parameters in this space; nothing to perturb."
        )
    weights = space.unflatten(space.flatten(model))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    rows = []
    for _ in range(n):
        parts = []
        for name in space.names:
            w = weights[name]
            d = torch.randn(w.shape, generator=gen, dtype=torch.float64)
            parts.append(
                _normalize(d, w.detach().cpu().double(), normalization, ignore).reshape(-1)
            )
        rows.append(torch.cat(parts))
    out = torch.stack(rows)
    if orthogonalize:
        out = _gram_schmidt(out)
    ref = space.flatten(model)
    result = out.to(device=ref.device, dtype=ref.dtype)
    # How they were drawn, recorded by PlaneProjector.describe() into a field's provenance.
    result.provenance = {  # type: ignore[attr-defined]
        "kind": "random",
        "seed": int(seed),
        "normalization": normalization,
        "ignore": ignore,
        "include": include,
        "orthogonalize": bool(orthogonalize),
    }
    return result


def random_state_directions(
    model: nn.Module,
    n_components: int = 2,
    normalization: Normalization = "filter",
    ignore: Literal["biasbn"] | None = "biasbn",
    seed: int = 0,
) -> list[dict[str, torch.Tensor]]:
    """Li et al.'s ``dir_type="states"``: directions over the parameters *and* the floating-point
    buffers (BatchNorm running statistics), one dict ``name -> tensor`` per direction.

    Each tensor of the state_dict (in its order, integer buffers such as
    ``num_batches_tracked`` left out) gets N(0, 1) entries normalized as in
    :func:`random_directions`; running statistics are 1-D, so ``ignore="biasbn"`` gives them a
    zero direction (Li's usual setting, where only the weights move) and ``ignore=None`` a copy of
    their values. ``PlaneProjector(model, directions)`` then moves the buffers along with the
    parameters at every point (BatchNorm in eval mode).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    >>> d = random_state_directions(model, n_components=2, ignore=None, seed=0)
    >>> len(d), list(d[0])
    (2, ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var'])
    >>> bool(torch.equal(d[0]["1.running_var"], model[1].running_var))  # ignore=None: a copy
    True
    """
    n = validate_int(n_components, "n_components", low=1)
    validate_choice(normalization, "normalization", NORMALIZATIONS)
    validate_choice(ignore, "ignore", ("biasbn", None))
    seed = validate_int(seed, "seed", low=0)
    space = ParameterSpace.from_module(model)
    buffers = dict(model.named_buffers())
    state = {
        k: v
        for k, v in model.state_dict().items()
        if k in space.names or (k in buffers and v.is_floating_point())
    }
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for _ in range(n):
        direction = {}
        for name, w in state.items():
            d = torch.randn(w.shape, generator=gen, dtype=torch.float64)
            normalized = _normalize(d, w.detach().cpu().double(), normalization, ignore)
            direction[name] = normalized.to(device=w.device, dtype=w.dtype)
        out.append(direction)
    return out


def _normalize(
    d: torch.Tensor, w: torch.Tensor, normalization: str, ignore: str | None
) -> torch.Tensor:
    if d.dim() <= 1:
        if ignore == "biasbn":
            return torch.zeros_like(d)
        return w.clone() if normalization != "none" else d
    if normalization == "filter":
        d_flat = d.reshape(d.shape[0], -1)
        w_flat = w.reshape(w.shape[0], -1)
        scale = w_flat.norm(dim=1) / (d_flat.norm(dim=1) + 1e-10)
        return (d_flat * scale[:, None]).reshape(d.shape)
    if normalization == "layer":
        return d * (w.norm() / (d.norm() + 1e-10))
    if normalization == "weight":
        return d * w
    if normalization == "dfilter":
        d_flat = d.reshape(d.shape[0], -1)
        return (d_flat / (d_flat.norm(dim=1, keepdim=True) + 1e-10)).reshape(d.shape)
    if normalization == "dlayer":
        return d / (d.norm() + 1e-10)
    return d


def _gram_schmidt(rows: torch.Tensor) -> torch.Tensor:
    out: list[torch.Tensor] = []
    for r in rows:
        norm = r.norm()
        v = r.clone()
        for u in out:
            v = v - (v @ u) / (u @ u) * u
        if v.norm() == 0:
            raise InvalidParameterError(
                "The directions are linearly dependent, so they cannot be orthogonalized; use "
                "another seed or fewer directions."
            )
        out.append(v * (norm / v.norm()))
    return torch.stack(out)


def normalize_directions(
    directions: Any,
    model: nn.Module,
    normalization: Normalization = "filter",
    ignore: Literal["biasbn"] | None = None,
    include: Include = "all",
) -> torch.Tensor:
    """Rescale given flat directions to the model's weights, as :func:`random_directions` does.

    Each row of ``directions`` (``(k, n_params)``, e.g. Hessian eigenvectors) is split into the
    model's tensors and normalised per filter or per layer (``"none"`` leaves it as is).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> d = normalize_directions(torch.ones(1, 8), model, "layer")
    >>> w = model.weight.detach()
    >>> bool(torch.isclose(d[0, :6].norm(), w.norm().double()))
    True
    """
    validate_choice(normalization, "normalization", ("filter", "layer", "none"))
    validate_choice(ignore, "ignore", ("biasbn", None))
    space = ParameterSpace.from_module(model, include=include)
    rows = torch.as_tensor(np.asarray(directions, dtype=np.float64))
    if rows.dim() == 1:
        rows = rows[None]
    if rows.dim() != 2 or rows.shape[1] != space.n_params:
        raise InvalidParameterError(
            f"The directions have shape {tuple(rows.shape)} but the model has {space.n_params} "
            "parameters; pass (k, n_params) rows of this model's parameter space."
        )
    weights = space.unflatten(space.flatten(model).detach().cpu().double())
    out = []
    for row in rows:
        parts = space.unflatten(row)
        out.append(
            torch.cat(
                [
                    (
                        _normalize(parts[n], weights[n], normalization, ignore)
                        if parts[n].dim() > 1 or ignore == "biasbn"
                        else parts[n]
                    ).reshape(-1)
                    for n in space.names
                ]
            )
        )
    return torch.stack(out)

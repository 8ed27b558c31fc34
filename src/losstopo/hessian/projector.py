"""`HessianProjector`: a landscape on the top Hessian eigenvectors at the model.

The plane (or volume) through the model along the directions of largest curvature, Landscaper's
choice of directions: the sharpest cross-section of the minimum. A linear projector like
:class:`~losstopo.PlaneProjector`, so :func:`~losstopo.evaluate`'s fast paths apply.

Examples
--------
>>> import torch
>>> from losstopo import Grid, HessianProjector, evaluate
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
>>> data = (torch.randn(32, 3), torch.randint(0, 2, (32,)))
>>> proj = HessianProjector(model, data, "cross_entropy", n_components=2, device="cpu").fit()
>>> proj.components_.shape, proj.eigenvalues_.shape
((2, 26), (2,))
>>> field = evaluate(model, data, "cross_entropy", proj, Grid.square(resolution=3), progress=False)
>>> field.values.shape
(3, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..directions import normalize_directions
from ..errors import InvalidTypeError, validate_choice, validate_int
from ..projectors.linear import LinearProjector
from ..space import ParameterSpace
from .operator import hvp
from .spectrum import extreme_eigenpairs


class HessianProjector(LinearProjector):
    """Directions of the ``n_components`` largest Hessian eigenvalues, centred at the model.

    Parameters
    ----------
    model, data, loss : as for :func:`~losstopo.hvp` (the Hessian is taken at the model)
    n_components : 1, 2 or 3
    normalization : ``"none"`` (unit eigenvectors, the default), ``"filter"`` or ``"layer"``
        (rescaled to the weights like Li et al.'s random directions, then no longer orthogonal)
    tol, seed : Lanczos tolerance and start-vector seed
    device, batch_size : for the Hessian-vector products

    Attributes
    ----------
    center_, components_, eigenvalues_ (descending), n_hvp_
    """

    def __init__(
        self,
        model: Any,
        data: Any,
        loss: Any = "cross_entropy",
        n_components: int = 2,
        normalization: str = "none",
        tol: float = 1e-3,
        seed: int = 0,
        device: Any = None,
        batch_size: int | None = None,
    ):
        self.model = model
        self.data = data
        self.loss = loss
        self.n_components = n_components
        self.normalization = normalization
        self.tol = tol
        self.seed = seed
        self.device = device
        self.batch_size = batch_size

    def fit(self, X: Any = None, y: Any = None) -> HessianProjector:
        """Compute the top eigenvectors at the model (``X`` is ignored); returns self."""
        k = validate_int(self.n_components, "n_components", low=1, high=3)
        validate_choice(self.normalization, "normalization", ("none", "filter", "layer"))
        if not hasattr(self.model, "named_parameters"):
            raise InvalidTypeError(
                f"HessianProjector needs the torch.nn.Module to take the Hessian of; got "
                f"{type(self.model).__name__}."
            )
        op = hvp(self.model, self.data, self.loss, device=self.device, batch_size=self.batch_size)
        spec = extreme_eigenpairs(op, k=k, which="largest", tol=self.tol, seed=self.seed)
        space = ParameterSpace.from_module(self.model)
        center = space.flatten(self.model).detach().cpu().double().numpy()
        comps = spec.eigenvectors
        if self.normalization != "none":
            comps = normalize_directions(comps, self.model, self.normalization).numpy()  # type: ignore[arg-type]
        self.eigenvalues_ = spec.eigenvalues
        self.n_hvp_ = spec.n_hvp
        self._set_basis(center, np.asarray(comps, dtype=np.float64))
        return self

    def describe(self) -> dict[str, Any]:
        return {
            "name": "HessianProjector",
            "n_components": int(self.n_components_),
            "normalization": self.normalization,
            "eigenvalues": [float(v) for v in self.eigenvalues_],
            "tol": float(self.tol),
            "seed": int(self.seed),
        }

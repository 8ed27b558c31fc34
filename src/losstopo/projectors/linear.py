"""Linear projectors: a plane of given directions, and trajectory PCA (Li et al. 2018).

Examples
--------
>>> import numpy as np
>>> from losstopo import PCAProjector
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(10, 50))
>>> pca = PCAProjector(n_components=2).fit(X)
>>> coords = pca.transform(X)
>>> coords.shape
(10, 2)
>>> np.allclose(pca.transform(pca.inverse_transform(coords)), coords)
True
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..errors import InvalidParameterError, ShapeMismatchError, validate_choice, validate_int
from ..space import ParameterSpace
from ._common import check_n_components
from .base import LinearDecoder, Projector, as_points
from .per_tensor import flatten_directions, is_per_tensor


def _flat(value: Any, name: str) -> np.ndarray:
    if isinstance(value, nn.Module):
        value = ParameterSpace.from_module(value).flatten(value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


class LinearProjector(Projector):
    """``point = center_ + coords @ components_``; ``transform`` is the least-squares inverse."""

    linear = True
    decodes = True
    center_: np.ndarray
    components_: np.ndarray

    def _set_basis(self, center: np.ndarray, components: np.ndarray) -> None:
        self.center_ = center
        self.components_ = components
        self.n_components_ = components.shape[0]
        self.n_params_ = components.shape[1]
        c64 = components.astype(np.float64)
        # Least-squares solve through the Gram matrix: (C C^T) a = C (p - c).
        self._gram_inv = np.linalg.inv(c64 @ c64.T)

    def transform(self, X: Any) -> np.ndarray:
        """Least-squares coordinates of the points in the projector's affine subspace."""
        points = self._points_to_transform(X)
        diff = points.astype(np.float64) - self.center_.astype(np.float64)
        return (diff @ self.components_.astype(np.float64).T) @ self._gram_inv.T

    def inverse_transform(self, coords: Any) -> np.ndarray:
        """Parameters at latent coordinates: ``center_ + coords @ components_`` (float64)."""
        self.check_fitted()
        return LinearDecoder(self.center_, self.components_)(coords)


class PlaneProjector(LinearProjector):
    """A landscape spanned by given directions around a centre (Li et al.'s random plane).

    Fitted on construction: the constructor validates the centre and the directions and builds
    the basis (``center_``, ``components_``), so there is nothing to learn. ``fit()`` is allowed
    and only validates again; ``set_params`` rebuilds the basis.

    Parameters
    ----------
    center : nn.Module or 1-D array/tensor
        The model (or its flat parameter vector) at the origin of the plane.
    directions : 2-D array/tensor (n_components, n_params), a sequence of flat vectors, or
        directions held per tensor (with ``center`` the model): each a dict keyed by parameter
        name or a list with one array per ``model.parameters()`` entry, as Li et al.'s code
        writes them (frozen parameters' entries are dropped). For example the output of
        :func:`losstopo.random_directions`.

    Examples
    --------
    >>> import torch
    >>> from losstopo import PlaneProjector, random_directions
    >>> model = torch.nn.Linear(3, 2)
    >>> proj = PlaneProjector(model, random_directions(model, n_components=2, ignore=None))
    >>> proj.components_.shape
    (2, 8)
    >>> proj.transform(proj.inverse_transform([[0.5, -1.0]])).round(6)
    array([[ 0.5, -1. ]])
    """

    def __init__(self, center: Any, directions: Any):
        self.center = center
        self.directions = directions
        self.fit()

    def fit(self, X: Any = None, y: Any = None) -> PlaneProjector:
        """Validate the centre and directions and build the basis (no learning); returns self."""
        center = _flat(self.center, "center").ravel()
        directions = self.directions
        self.buffer_names_: tuple[str, ...] = ()
        if is_per_tensor(directions):
            per_tensor = flatten_directions(self.center, directions)
            directions = per_tensor.rows
            if per_tensor.buffer_names:
                self._set_buffers(self.center, per_tensor.buffer_names, per_tensor.buffer_rows)
        elif isinstance(directions, (list, tuple)):
            directions = np.stack([_flat(d, "directions").ravel() for d in directions])
        comps = _flat(directions, "directions")
        if comps.ndim == 1:
            comps = comps[None, :]
        if comps.ndim != 2 or comps.shape[1] != center.size:
            raise ShapeMismatchError(
                f"The directions have shape {comps.shape} but the centre has {center.size} "
                "parameters; build them from the same model (random_directions(model, ...))."
            )
        validate_int(comps.shape[0], "number of directions", low=1, high=3)
        if not np.all(np.isfinite(center)) or not np.all(np.isfinite(comps)):
            raise InvalidParameterError("The centre or the directions contain NaN or inf.")
        norms = np.linalg.norm(comps.astype(np.float64), axis=1)
        for i, nrm in enumerate(norms):
            if nrm == 0:
                raise InvalidParameterError(
                    f"Direction {i} has zero norm, so it spans nothing; draw it again (another "
                    "seed) or use ignore=None so biases are not the only perturbed tensors."
                )
        if comps.shape[0] > 1 and np.linalg.matrix_rank(comps.astype(np.float64)) < comps.shape[0]:
            raise InvalidParameterError(
                "The directions are linearly dependent; use different directions (another seed)."
            )
        dtype = center.dtype
        self._set_basis(center.astype(dtype), comps.astype(dtype))
        return self

    def _set_buffers(self, model: nn.Module, names: tuple[str, ...], rows: np.ndarray) -> None:
        buffers = dict(model.named_buffers())
        self.buffer_names_ = names
        self.buffer_center_ = np.concatenate(
            [buffers[n].detach().cpu().double().numpy().reshape(-1) for n in names]
        )
        self.buffer_components_ = rows.astype(np.float64)

    def decoder(self) -> LinearDecoder:
        """The linear map, with the buffers it moves for ``dir_type="states"`` directions."""
        self.check_fitted()
        buffers = None
        if self.buffer_names_:
            buffers = (self.buffer_names_, self.buffer_center_, self.buffer_components_)
        return LinearDecoder(self.center_, self.components_, buffers)

    def fingerprint(self) -> str:
        base = super().fingerprint()
        if not self.buffer_names_:
            return base
        h = hashlib.sha256(base.encode() + ",".join(self.buffer_names_).encode())
        h.update(np.ascontiguousarray(self.buffer_center_).tobytes())
        h.update(np.ascontiguousarray(self.buffer_components_).tobytes())
        return h.hexdigest()[:16]

    def set_params(self, **params: Any) -> PlaneProjector:
        """Set ``center`` and/or ``directions`` and rebuild the basis from them."""
        super().set_params(**params)
        return self.fit()

    def describe(self) -> dict[str, Any]:
        return {
            "name": "PlaneProjector",
            "n_components": int(self.n_components_),
            # how the directions were drawn (random_directions records it on its tensor)
            "directions": dict(getattr(self.directions, "provenance", None) or {"kind": "given"}),
            **({"moves_buffers": list(self.buffer_names_)} if self.buffer_names_ else {}),
        }


class PCAProjector(LinearProjector):
    """Principal directions of a training trajectory (Li et al. 2018).

    Parameters
    ----------
    n_components : int in [1, 3]
    center : {"last", "mean"}
        Origin of the landscape: the final checkpoint (Li et al.) or the trajectory mean. The
        directions are the principal components of the checkpoints either way.
    ignore : {None, "biasbn"}
        ``"biasbn"`` (Li et al.'s option): the 1-D tensors (biases, BatchNorm scale and shift)
        take no part in the PCA and get zero components, so the plane moves only the weights.
        Needs a :class:`~losstopo.Trajectory` (its tensor names and shapes) to fit on.

    Examples
    --------
    >>> import numpy as np
    >>> from losstopo import Trajectory
    >>> rng = np.random.default_rng(0)
    >>> traj = Trajectory(rng.normal(size=(6, 8)), np.arange(6), ["r"] * 6,
    ...                   names=("weight", "bias"), shapes=((2, 3), (2,)))
    >>> pca = PCAProjector(2, ignore="biasbn").fit(traj)
    >>> bool(np.all(pca.components_[:, 6:] == 0))
    True

    Attributes
    ----------
    center_, components_ (orthonormal rows), explained_variance_, explained_variance_ratio_
    """

    def __init__(
        self,
        n_components: int = 2,
        center: Literal["last", "mean"] = "last",
        ignore: Literal["biasbn"] | None = None,
    ):
        self.n_components = n_components
        self.center = center
        self.ignore = ignore

    def describe(self) -> dict[str, Any]:
        """Name, parameters and, once fitted, each component's share of the variance."""
        out = super().describe()
        if hasattr(self, "explained_variance_ratio_"):
            out["explained_variance_ratio"] = [float(v) for v in self.explained_variance_ratio_]
        return out

    def fit(self, X: Any, y: Any = None) -> PCAProjector:
        k = check_n_components(self.n_components, type(self).__name__)
        validate_choice(self.center, "center", ("last", "mean"))
        validate_choice(self.ignore, "ignore", ("biasbn", None))
        raw = as_points(X)
        n = raw.shape[0]
        points = _without_1d_tensors(X, raw) if self.ignore == "biasbn" else raw
        if n < 2:
            raise InvalidParameterError(
                f"PCAProjector needs at least 2 checkpoints to find a direction; got {n}. Record "
                "more checkpoints (train(..., record_every=1))."
            )
        mean = points.mean(axis=0, dtype=np.float64)
        centered = points.astype(np.float64) - mean
        gram = centered @ centered.T
        evals, evecs = np.linalg.eigh(gram)
        order = np.argsort(evals)[::-1]
        evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
        rank = int(np.sum(evals > evals[0] * 1e-12)) if evals[0] > 0 else 0
        if rank < k:
            raise InvalidParameterError(
                f"The checkpoints span only {rank} dimension(s), fewer than n_components={k}; "
                "use fewer components or more distinct checkpoints."
            )
        comps = (evecs[:, :k].T @ centered) / np.sqrt(evals[:k])[:, None]
        # Sign convention: the largest-magnitude entry of each component is positive.
        signs = np.sign(comps[np.arange(k), np.argmax(np.abs(comps), axis=1)])
        comps *= signs[:, None]
        if self.ignore == "biasbn":
            mean = raw.mean(axis=0, dtype=np.float64)  # the centre keeps every tensor's values
        center = raw[-1].astype(np.float64) if self.center == "last" else mean
        self.mean_ = mean
        self.explained_variance_ = evals[:k] / max(n - 1, 1)
        total = evals.sum()
        self.explained_variance_ratio_ = evals[:k] / total
        self._set_basis(center, comps)
        return self


def _without_1d_tensors(X: Any, points: np.ndarray) -> np.ndarray:
    """``points`` with the entries of 1-D tensors held at the last checkpoint's values."""
    names, shapes = getattr(X, "names", ()), getattr(X, "shapes", ())
    if not names:
        raise InvalidParameterError(
            "PCAProjector(ignore='biasbn') needs to know which entries are biases and "
            "BatchNorm parameters; fit it on a Trajectory (which holds the tensor names and "
            "shapes), not on a bare array."
        )
    mask = np.concatenate([np.full(int(np.prod(s)), len(s) <= 1) for s in shapes])
    if mask.size != points.shape[1]:
        raise ShapeMismatchError(
            f"The trajectory's tensor shapes cover {mask.size} entries but its rows have "
            f"{points.shape[1]}; rebuild the trajectory from its model."
        )
    out = points.copy()
    out[:, mask] = points[-1, mask]
    return out

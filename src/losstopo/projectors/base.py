"""The projector contract shared by every projection of parameter space.

A projector maps points of parameter space (rows of an ``(n_points, n_params)`` array or a
:class:`~losstopo.Trajectory`) to low-dimensional coordinates (``transform``) and, where it can,
coordinates back to parameters (``inverse_transform``). It follows scikit-learn's estimator
conventions: ``__init__`` stores parameters, ``fit`` validates and learns, fitted attributes end in
``_``, and using a projector before ``fit`` raises :class:`~losstopo.errors.NotFittedError`.

Linear projectors (a centre plus directions) expose ``center_`` and ``components_``; the evaluation
engine uses them for its fast paths.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from ..errors import InvalidParameterError, InvalidTypeError, NotFittedError, ShapeMismatchError
from ._common import check_n_params


def as_points(X: Any, name: str = "X") -> np.ndarray:
    """Coerce a Trajectory, tensor or array to a finite 2-D float array ``(n_points, n_params)``.

    float32 input stays float32 (no copy of a large trajectory); anything else becomes float64.
    """
    points = getattr(X, "points", X)
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    try:
        arr = np.asarray(points)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise InvalidTypeError(
            f"{name} must be a Trajectory or an array; got {type(X).__name__}."
        ) from exc
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ShapeMismatchError(
            f"{name} must be 2-D (n_points, n_params); got shape {arr.shape}. Stack flat parameter "
            "vectors as rows."
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise InvalidParameterError(
            f"{name} has NaN or inf in row {bad}; a diverged checkpoint cannot be projected. "
            "Drop it (e.g. trajectory[:k]) or fix the training run."
        )
    return arr


def as_coords(coords: Any, n_components: int, name: str = "coords") -> np.ndarray:
    """Coerce latent coordinates to a float64 array ``(n, n_components)``."""
    arr = np.asarray(
        coords.detach().cpu() if isinstance(coords, torch.Tensor) else coords, dtype=np.float64
    )
    if arr.ndim == 1 and n_components == 1:
        arr = arr[:, None]
    if arr.ndim == 1 and arr.size == n_components:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n_components:
        raise ShapeMismatchError(
            f"{name} must have shape (n, {n_components}) for this {n_components}-component "
            f"projector; got {arr.shape}."
        )
    return arr


class Projector:
    """Base class: the scikit-learn style contract and provenance helpers."""

    #: Whether the projector is ``center_ + coords @ components_``.
    linear: bool = False
    _n_params: int

    def fit(self, X: Any, y: Any = None) -> Projector:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse_transform(self, coords: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X, y).transform(X)

    # ------------------------------------------------------------------ helpers
    def _check_is_fitted(self, attribute: str = "n_components_") -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call 'fit' with the "
                "trajectory before using it."
            )

    def _points_to_transform(self, X: Any) -> np.ndarray:
        """``X`` as points of the fitted parameter space, after checking the projector is fitted."""
        self._check_is_fitted()
        points = as_points(X)
        check_n_params(points, self._n_params, type(self).__name__)
        return points

    @property
    def n_params_(self) -> int:
        self._check_is_fitted()
        return int(self._n_params)

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (scikit-learn's ``get_params``)."""
        import inspect

        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self" and hasattr(self, k)}

    def describe(self) -> dict[str, Any]:
        """Provenance: the projector's name and parameters, JSON-able."""
        params: dict[str, Any] = {}
        for k, v in self.get_params().items():
            if isinstance(v, (int, float, str, bool)) or v is None:
                params[k] = v
            elif isinstance(v, (list, tuple)) and all(isinstance(x, (int, float, str)) for x in v):
                params[k] = list(v)
            else:
                params[k] = type(v).__name__
        return {"name": type(self).__name__, **params}

    def fingerprint(self) -> str:
        """A hash identifying the fitted map (used to refuse resuming with another projector)."""
        self._check_is_fitted()
        h = hashlib.sha256()
        h.update(type(self).__name__.encode())
        if self.linear:
            h.update(np.ascontiguousarray(self.center_).tobytes())  # type: ignore[attr-defined]
            h.update(np.ascontiguousarray(self.components_).tobytes())  # type: ignore[attr-defined]
        else:
            probe = np.linspace(-1.0, 1.0, 5 * self.n_components_)  # type: ignore[attr-defined]
            coords = probe.reshape(5, self.n_components_)  # type: ignore[attr-defined]
            h.update(
                np.ascontiguousarray(self.inverse_transform(coords), dtype=np.float64).tobytes()
            )
        return h.hexdigest()[:16]

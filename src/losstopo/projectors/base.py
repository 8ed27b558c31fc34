"""The projector contract shared by every projection of parameter space.

A projector maps points of parameter space (rows of an ``(n_points, n_params)`` array or a
:class:`~losstopo.Trajectory`) to low-dimensional coordinates (``transform``) and, where it can
(``decodes``), coordinates back to parameters (``inverse_transform``). Projectors are scikit-learn
estimators (:class:`sklearn.base.BaseEstimator`, :class:`sklearn.base.TransformerMixin`):
``__init__`` stores parameters, ``fit`` validates and learns, fitted attributes end in ``_``, and
``sklearn.base.clone``, ``get_params``, ``set_params`` and
``sklearn.utils.validation.check_is_fitted`` work. Using a projector before ``fit`` raises
:class:`~losstopo.errors.NotFittedError`.

The evaluation engine does not use a projector itself but its :meth:`Projector.decoder`: a
:class:`LinearDecoder` (``center + coords @ components``, for the engine's fast paths) for linear
projectors, the bound ``inverse_transform`` for the others.

Examples
--------
>>> import numpy as np
>>> from sklearn.base import clone
>>> from losstopo.projectors import PCAProjector, is_fitted
>>> X = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 2.0, 1.0], [1.0, 2.0, 1.0]])
>>> pca = PCAProjector(n_components=2)
>>> is_fitted(pca), is_fitted(pca.fit(X))
(False, True)
>>> is_fitted(clone(pca)), clone(pca).get_params()["n_components"]
(False, 2)
>>> decode = pca.decoder()  # a LinearDecoder over pca.center_ and pca.components_
>>> np.allclose(decode(pca.transform(X)), X)
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError as SklearnNotFitted
from sklearn.utils.validation import check_is_fitted

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


@dataclass(frozen=True)
class LinearDecoder:
    """The affine map ``coords -> center + coords @ components`` of a linear projector.

    Holds the projector's own arrays (no copies); the engine uses them for its fast paths.

    Examples
    --------
    >>> import numpy as np
    >>> dec = LinearDecoder(np.zeros(3), np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    >>> dec(np.array([[1.0, 1.0]]))
    array([[1., 2., 0.]])
    """

    center: np.ndarray  # (n_params,)
    components: np.ndarray  # (n_components, n_params)
    #: Floating-point buffers moved with the parameters (``dir_type="states"`` planes):
    #: ``(names, center (n_entries,), components (n_components, n_entries))``, else ``None``.
    buffers: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None = None

    def __call__(self, coords: np.ndarray) -> np.ndarray:
        """Parameters ``(m, n_params)`` (float64) at the coordinates ``(m, n_components)``."""
        a = as_coords(coords, self.components.shape[0])
        return self.center.astype(np.float64) + a @ self.components.astype(np.float64)


#: What :meth:`Projector.decoder` returns: a linear map, or any callable from coordinates
#: ``(m, n_components)`` to parameters ``(m, n_params)``, both float64.
Decoder = LinearDecoder | Callable[[np.ndarray], np.ndarray]


class Projector(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Base class: the scikit-learn estimator contract plus decoding and provenance.

    Class attributes: ``linear`` (the map is ``center_ + coords @ components_``) and ``decodes``
    (``inverse_transform`` exists, so the projector can give a landscape).
    """

    #: Whether the projector is ``center_ + coords @ components_``.
    linear: bool = False
    #: Whether latent coordinates can be decoded back to parameters.
    decodes: bool = False
    n_components_: int
    n_params_: int

    def fit(self, X: Any, y: Any = None) -> Projector:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse_transform(self, coords: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ fitted state
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_components_")

    def check_fitted(self) -> None:
        """Raise :class:`~losstopo.errors.NotFittedError` unless the projector is fitted."""
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call 'fit' with the "
                "trajectory before using it."
            )

    def _points_to_transform(self, X: Any) -> np.ndarray:
        """``X`` as points of the fitted parameter space, after checking the projector is fitted."""
        self.check_fitted()
        points = as_points(X)
        check_n_params(points, self.n_params_, type(self).__name__)
        return points

    # ------------------------------------------------------------------ decoding
    def decoder(self) -> Decoder:
        """The map from latent coordinates to parameters, for the evaluation engine.

        A :class:`LinearDecoder` over ``center_`` and ``components_`` (not copied) for linear
        projectors, the bound ``inverse_transform`` otherwise.
        """
        self.check_fitted()
        if self.linear:
            return LinearDecoder(self.center_, self.components_)  # type: ignore[attr-defined]
        return self.inverse_transform

    # ------------------------------------------------------------------ provenance
    def describe(self) -> dict[str, Any]:
        """Provenance: the projector's name and parameters, JSON-able."""
        params: dict[str, Any] = {}
        for k, v in self.get_params(deep=False).items():
            if isinstance(v, (int, float, str, bool)) or v is None:
                params[k] = v
            elif isinstance(v, (list, tuple)) and all(isinstance(x, (int, float, str)) for x in v):
                params[k] = list(v)
            else:
                params[k] = type(v).__name__
        return {"name": type(self).__name__, **params}

    def fingerprint(self) -> str:
        """A hash identifying the fitted map (used to refuse resuming with another projector)."""
        self.check_fitted()
        h = hashlib.sha256()
        h.update(type(self).__name__.encode())
        if self.linear:
            h.update(np.ascontiguousarray(self.center_).tobytes())  # type: ignore[attr-defined]
            h.update(np.ascontiguousarray(self.components_).tobytes())  # type: ignore[attr-defined]
        else:
            probe = np.linspace(-1.0, 1.0, 5 * self.n_components_)
            coords = probe.reshape(5, self.n_components_)
            h.update(
                np.ascontiguousarray(self.inverse_transform(coords), dtype=np.float64).tobytes()
            )
        return h.hexdigest()[:16]


def is_fitted(projector: Any) -> bool:
    """Whether ``projector`` has been fitted (any scikit-learn style estimator).

    Examples
    --------
    >>> from losstopo.projectors import PCAProjector, is_fitted
    >>> is_fitted(PCAProjector())
    False
    """
    probe = getattr(projector, "__sklearn_is_fitted__", None)
    if callable(probe):
        return bool(probe())
    try:
        check_is_fitted(projector)
    except SklearnNotFitted:
        return False
    return True

"""UMAP projector (umap-learn), with umap-learn's ``inverse_transform``.

A baseline of Neuro-Visualizer and GlobScope. UMAP keeps neighbourhoods, not distances, and its
inverse interpolates between fitted checkpoints inside the embedding's triangulation, so decoded
landscapes are coarse; use it to compare, not to measure.

Examples
--------
>>> import numpy as np
>>> from losstopo.projectors import UMAPProjector
>>> X = np.cumsum(np.random.default_rng(0).normal(size=(20, 30)), axis=0)
>>> up = UMAPProjector(n_components=2, random_state=0).fit(X)  # doctest: +SKIP
>>> up.transform(X).shape  # doctest: +SKIP
(20, 2)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, validate_float, validate_int
from ._common import (
    center_scale,
    check_min_points,
    check_n_components,
    check_random_state,
)
from .base import Projector, as_coords, as_points


class UMAPProjector(Projector):
    """UMAP embedding of the checkpoints and umap-learn's inverse map.

    Parameters
    ----------
    n_components : int in [1, 3]
    n_neighbors : int >= 2 (capped at ``n_checkpoints - 1``)
    min_dist : float
    random_state : int or None
        Seed; a seeded UMAP runs single-threaded and is deterministic.

    Attributes
    ----------
    umap_ : umap.UMAP
    embedding_ : (n_checkpoints, n_components) coordinates of the fitted checkpoints
    mean_, scale_ : centring and global scale applied before UMAP
    """

    decodes = True

    def __init__(
        self,
        n_components: int = 2,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        random_state: int | None = None,
    ):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> UMAPProjector:
        name = type(self).__name__
        k = check_n_components(self.n_components, name)
        n_neighbors = validate_int(self.n_neighbors, "n_neighbors", low=2)
        min_dist = validate_float(self.min_dist, "min_dist", low=0.0)
        seed = check_random_state(self.random_state, name)
        points = as_points(X)
        check_min_points(len(points), max(4, k + 2), name, "to build a neighbour graph")
        try:
            import umap
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise InvalidParameterError(
                "UMAPProjector needs the umap-learn package; install losstopo[projectors]."
            ) from exc
        mean, scale = center_scale(points)
        Z = (points.astype(np.float64) - mean) / scale
        model = umap.UMAP(
            n_components=k,
            n_neighbors=min(n_neighbors, len(points) - 1),
            min_dist=min_dist,
            random_state=seed,
            init="spectral" if len(points) > k + 2 else "random",
            n_jobs=1,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.embedding_ = np.asarray(model.fit_transform(Z), dtype=np.float64)
        self.umap_ = model
        self.mean_ = mean
        self.scale_ = scale
        self._fit_points = points
        self.n_params_ = points.shape[1]
        self.n_components_ = k
        return self

    def transform(self, X: Any) -> np.ndarray:
        """UMAP coordinates; the fitted checkpoints get their own embedding exactly."""
        points = self._points_to_transform(X)
        if points.shape == self._fit_points.shape and np.array_equal(points, self._fit_points):
            return self.embedding_.copy()
        Z = (points.astype(np.float64) - self.mean_) / self.scale_
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.umap_.transform(Z), dtype=np.float64)

    def inverse_transform(self, coords: Any) -> np.ndarray:
        """Parameters at latent coordinates (umap-learn's inverse), float64."""
        self.check_fitted()
        a = as_coords(coords, self.n_components_)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Z = np.asarray(self.umap_.inverse_transform(a), dtype=np.float64)
        return Z * self.scale_ + self.mean_

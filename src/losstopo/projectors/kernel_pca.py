"""Kernel-PCA projector (scikit-learn's ``KernelPCA`` with an RBF kernel and a learned inverse).

A baseline of Neuro-Visualizer and GlobScope: the embedding is non-linear, and the decoder is the
kernel ridge regression scikit-learn fits from the embedding back to the checkpoints
(``fit_inverse_transform=True``), so landscapes can be evaluated on its latent grid.

Examples
--------
>>> import numpy as np
>>> from losstopo.projectors import KernelPCAProjector
>>> X = np.cumsum(np.random.default_rng(0).normal(size=(12, 40)), axis=0)
>>> kp = KernelPCAProjector(n_components=2).fit(X)
>>> kp.transform(X).shape, kp.inverse_transform(kp.transform(X)).shape
((12, 2), (12, 40))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import validate_float
from ._common import center_scale, check_min_points, check_n_components
from .base import Projector, as_coords, as_points


class KernelPCAProjector(Projector):
    """Kernel-PCA of the checkpoints (RBF kernel) with scikit-learn's learned inverse map.

    Parameters
    ----------
    n_components : int in [1, 3]
    gamma : float or None
        RBF width on the checkpoints after centring and scaling to unit RMS distance;
        ``None`` uses 1 / (median squared pairwise distance).
    alpha : float
        Ridge of the inverse map (small: close reconstruction of the fitted checkpoints).
    random_state : int or None
        Unused by the dense solver; kept for a uniform interface.

    Attributes
    ----------
    kpca_ : sklearn.decomposition.KernelPCA
    mean_, scale_ : centring and global scale applied before the kernel
    gamma_ : the kernel width used
    """

    decodes = True

    def __init__(
        self,
        n_components: int = 2,
        gamma: float | None = None,
        alpha: float = 1e-4,
        random_state: int | None = None,
    ):
        self.n_components = n_components
        self.gamma = gamma
        self.alpha = alpha
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> KernelPCAProjector:
        from sklearn.decomposition import KernelPCA

        name = type(self).__name__
        k = check_n_components(self.n_components, name)
        alpha = validate_float(self.alpha, "alpha", low=0.0, strict_low=True)
        points = as_points(X)
        check_min_points(len(points), k + 1, name, f"for {k} kernel components")
        mean, scale = center_scale(points)
        Z = (points.astype(np.float64) - mean) / scale
        if self.gamma is None:
            sq = np.sum(Z**2, axis=1)
            d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * Z @ Z.T, 0.0)
            off = d2[np.triu_indices(len(Z), 1)]
            med = float(np.median(off)) if off.size else 1.0
            gamma = 1.0 / med if med > 0 else 1.0
        else:
            gamma = validate_float(self.gamma, "gamma", low=0.0, strict_low=True)
        kpca = KernelPCA(
            n_components=k,
            kernel="rbf",
            gamma=gamma,
            fit_inverse_transform=True,
            alpha=alpha,
            eigen_solver="dense",
            random_state=self.random_state,
        )
        kpca.fit(Z)
        self.kpca_ = kpca
        self.mean_ = mean
        self.scale_ = scale
        self.gamma_ = gamma
        self.n_params_ = points.shape[1]
        self.n_components_ = k
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Kernel-PCA coordinates of the points."""
        points = self._points_to_transform(X)
        Z = (points.astype(np.float64) - self.mean_) / self.scale_
        return np.asarray(self.kpca_.transform(Z), dtype=np.float64)

    def inverse_transform(self, coords: Any) -> np.ndarray:
        """Parameters at latent coordinates (scikit-learn's kernel ridge pre-image), float64."""
        self.check_fitted()
        a = as_coords(coords, self.n_components_)
        return (
            np.asarray(self.kpca_.inverse_transform(a), dtype=np.float64) * self.scale_ + self.mean_
        )

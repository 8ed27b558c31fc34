"""PHATE projector (the ``phate`` package): an embedding of training trajectories, no decoder.

PHATE (diffusion potentials + metric MDS, cosine distance by default as in "Visualizing
high-dimensional trajectories on the loss-landscape of ANNs") shows how runs move and separate,
but it has no map from the embedding back to parameters (``decodes = False``). So there is no
landscape *grid* for PHATE: the picture is the trajectory points coloured by the loss at each
checkpoint, from :func:`losstopo.fidelity.embed_with_loss` (a mapping run ->
:class:`~losstopo.ProjectedPath`, the same type as ``LossField.paths``). ``inverse_transform`` and
``decoder`` raise :class:`~losstopo.errors.NoInverseError`, and so does :func:`losstopo.evaluate`
with a PHATE projector, naming the projectors that can decode.

Examples
--------
>>> import numpy as np
>>> from losstopo.projectors import PHATEProjector
>>> X = np.cumsum(np.random.default_rng(0).normal(size=(20, 30)), axis=0)
>>> ph = PHATEProjector(n_components=2, random_state=0).fit(X)  # doctest: +SKIP
>>> ph.transform(X).shape  # doctest: +SKIP
(20, 2)
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, NoInverseError, validate_choice, validate_int
from ._common import check_min_points, check_n_components, check_random_state
from .base import Decoder, Projector, as_points


class PHATEProjector(Projector):
    """PHATE embedding of the checkpoints (embedding only; no ``inverse_transform``).

    Parameters
    ----------
    n_components : int in [1, 3]
    knn : int >= 2 (capped at ``n_checkpoints - 1``)
    decay : float or None (alpha-decay kernel exponent)
    knn_dist : distance between checkpoints, ``"cosine"`` (default, as in the PHATE-trajectories
        paper) or ``"euclidean"``
    t : int or "auto" (diffusion time)
    random_state : int or None

    Attributes
    ----------
    phate_ : phate.PHATE
    embedding_ : (n_checkpoints, n_components)
    """

    decodes = False

    def __init__(
        self,
        n_components: int = 2,
        knn: int = 5,
        decay: float | None = 40,
        knn_dist: str = "cosine",
        t: int | str = "auto",
        random_state: int | None = None,
    ):
        self.n_components = n_components
        self.knn = knn
        self.decay = decay
        self.knn_dist = knn_dist
        self.t = t
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> PHATEProjector:
        name = type(self).__name__
        k = check_n_components(self.n_components, name)
        knn = validate_int(self.knn, "knn", low=2)
        validate_choice(self.knn_dist, "knn_dist", ("cosine", "euclidean"))
        if self.t != "auto":
            validate_int(self.t, "t", low=1)
        seed = check_random_state(self.random_state, name)
        points = as_points(X)
        check_min_points(len(points), max(4, k + 2), name, "to build a diffusion graph")
        try:
            import phate
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise InvalidParameterError(
                "PHATEProjector needs the phate package; install losstopo[projectors]."
            ) from exc
        model = phate.PHATE(
            n_components=k,
            knn=min(knn, len(points) - 2),
            decay=self.decay,
            knn_dist=self.knn_dist,
            t=self.t,
            random_state=seed,
            n_jobs=1,
            verbose=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.embedding_ = np.asarray(
                model.fit_transform(points.astype(np.float64)), dtype=np.float64
            )
        self.phate_ = model
        self._fit_points = points
        self.n_params_ = points.shape[1]
        self.n_components_ = k
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The embedding of the fitted checkpoints, or PHATE's out-of-sample extension."""
        points = self._points_to_transform(X)
        if points.shape == self._fit_points.shape and np.array_equal(points, self._fit_points):
            return self.embedding_.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.phate_.transform(points.astype(np.float64)), dtype=np.float64)

    def inverse_transform(self, coords: Any) -> np.ndarray:
        """Always raises :class:`~losstopo.errors.NoInverseError`: PHATE cannot decode."""
        raise self._no_inverse()

    def decoder(self) -> Decoder:
        """Always raises :class:`~losstopo.errors.NoInverseError`: PHATE cannot decode."""
        raise self._no_inverse()

    def _no_inverse(self) -> NoInverseError:
        # Imported here: the registry imports this module to list PHATEProjector.
        from .registry import decoding_projectors

        return NoInverseError(
            "PHATEProjector cannot decode latent coordinates back to parameters, so it has no "
            "landscape grid; use one of " + ", ".join(decoding_projectors()) + " to evaluate a "
            "landscape, or losstopo.fidelity.embed_with_loss(model, data, loss, projector, "
            "trajectory) to draw the checkpoints coloured by their loss."
        )

    def fingerprint(self) -> str:
        """A hash of the fitted embedding (PHATE has no decoder to probe)."""
        self.check_fitted()
        h = hashlib.sha256(b"PHATEProjector")
        h.update(np.ascontiguousarray(self.embedding_).tobytes())
        return h.hexdigest()[:16]

"""Input layouts of the auto-encoder: the checkpoints' affine span, or standardised coordinates.

Both expose ``coords`` (the fitted checkpoints in the layout), ``weights`` (squared parameter
units per layout unit, per coordinate), ``dim``, ``project(points) -> (coords, squared distance
to the layout)`` and ``decode(coords) -> parameters``.

Examples
--------
>>> import numpy as np
>>> X = np.cumsum(np.random.default_rng(0).normal(size=(5, 40)), axis=0)
>>> span = SpanBasis(X)
>>> span.dim, bool(np.allclose(span.decode(span.project(X)[0]), X))
(4, True)
"""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 16  # parameter columns per chunk in the span basis


class SpanBasis:
    """Orthonormal basis of the checkpoints' affine span, kept implicitly as ``(X - mean)^T A``."""

    def __init__(self, points: np.ndarray):
        self.points = points  # a reference, not a copy
        n, p = points.shape
        self.mean = points.mean(axis=0, dtype=np.float64)
        gram = np.zeros((n, n))
        for s in range(0, p, CHUNK):
            block = points[:, s : s + CHUNK].astype(np.float64) - self.mean[s : s + CHUNK]
            gram += block @ block.T
        evals, evecs = np.linalg.eigh(gram)
        order = np.argsort(evals)[::-1]
        evals, evecs = evals[order], evecs[:, order]
        top = max(float(evals[0]), 0.0)
        keep = evals > max(top * 1e-12, 1e-300)
        self.rank = int(keep.sum())
        self.evals = evals[keep]
        # C order, as a field file gives them back: the products round the same after a reload
        self.A = np.ascontiguousarray(evecs[:, keep] / np.sqrt(self.evals))  # (n, r)
        self.coords = np.ascontiguousarray(evecs[:, keep] * np.sqrt(self.evals))  # checkpoints
        self.weights = np.ones(self.rank)

    @classmethod
    def from_arrays(
        cls,
        points: np.ndarray,
        mean: np.ndarray,
        A: np.ndarray,
        evals: np.ndarray,
        coords: np.ndarray,
    ) -> SpanBasis:
        """The basis as stored in a field file (no eigen-decomposition: bitwise the same)."""
        out = cls.__new__(cls)
        out.points, out.mean, out.A, out.evals, out.coords = points, mean, A, evals, coords
        out.rank = int(A.shape[1])
        out.weights = np.ones(out.rank)
        return out

    @property
    def dim(self) -> int:
        return self.rank

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Span coordinates (m, r) and squared distance of each point to the span (m,)."""
        n, p = self.points.shape
        cross = np.zeros((n, len(pts)))
        sq = np.zeros(len(pts))
        for s in range(0, p, CHUNK):
            block = self.points[:, s : s + CHUNK].astype(np.float64) - self.mean[s : s + CHUNK]
            diff = pts[:, s : s + CHUNK].astype(np.float64) - self.mean[s : s + CHUNK]
            cross += block @ diff.T
            sq += np.einsum("ij,ij->i", diff, diff)
        y = cross.T @ self.A
        return y, np.maximum(sq - np.einsum("ij,ij->i", y, y), 0.0)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Parameters ``mean + Q y`` (m, n_params), float64."""
        w = self.A @ y.T  # (n, m)
        out = np.empty((len(y), self.points.shape[1]))
        shift = 1.0 - w.sum(axis=0)
        for s in range(0, self.points.shape[1], CHUNK):
            block = self.points[:, s : s + CHUNK].astype(np.float64)
            out[:, s : s + CHUNK] = w.T @ block + shift[:, None] * self.mean[s : s + CHUNK]
        return out


class DenseBasis:
    """Coordinates standardised one by one (constant coordinates are only centred)."""

    def __init__(self, points: np.ndarray):
        x = points.astype(np.float64)
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        self.coords = (x - self.mean) / self.std
        self.weights = self.std**2  # squared parameter units per standardised unit

    @classmethod
    def from_arrays(cls, mean: np.ndarray, std: np.ndarray) -> DenseBasis:
        """The layout as stored in a field file (``coords`` of the checkpoints not kept)."""
        out = cls.__new__(cls)
        out.mean, out.std, out.weights = mean, std, std**2
        out.coords = np.zeros((0, mean.size))
        return out

    @property
    def dim(self) -> int:
        return int(self.mean.size)

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (pts.astype(np.float64) - self.mean) / self.std, np.zeros(len(pts))

    def decode(self, y: np.ndarray) -> np.ndarray:
        return self.mean + y * self.std


#: Either layout.
Layout = SpanBasis | DenseBasis

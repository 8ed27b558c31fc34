"""Lanczos tridiagonalisation with full reorthogonalisation, for spectra and curvature maps.

``m`` steps of Lanczos on a symmetric operator give the tridiagonal ``T`` whose eigenvalues (Ritz
values) approximate the operator's extreme eigenvalues, and whose eigenvectors' first entries
give the Gauss quadrature weights of the spectral density seen from the start vector
(stochastic Lanczos quadrature). Every new vector is reorthogonalised against all previous ones,
so no spurious copies of converged eigenvalues appear.

Examples
--------
>>> import numpy as np
>>> A = np.diag([3.0, 1.0, -2.0, 0.5])
>>> run = lanczos(lambda v: A @ v, 4, steps=4, seed=0)
>>> np.round(run.ritz_values(), 6)
array([-2. ,  0.5,  1. ,  3. ])
>>> round(float(run.weights().sum()), 12)
1.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh_tridiagonal

from ..errors import validate_int

__all__ = ["LanczosRun", "lanczos", "rademacher"]


def rademacher(n: int, rng: np.random.Generator) -> np.ndarray:
    """A vector of independent +-1 entries (float64)."""
    return rng.integers(0, 2, size=n).astype(np.float64) * 2.0 - 1.0


@dataclass(frozen=True)
class LanczosRun:
    """The tridiagonal matrix of one Lanczos run: diagonal ``alpha`` and off-diagonal ``beta``."""

    alpha: np.ndarray
    beta: np.ndarray
    n_matvec: int

    def ritz_values(self) -> np.ndarray:
        """Eigenvalues of the tridiagonal matrix, ascending."""
        if self.alpha.size == 1:
            return self.alpha.copy()
        return eigh_tridiagonal(self.alpha, self.beta, eigvals_only=True)

    def weights(self) -> np.ndarray:
        """Quadrature weights of the Ritz values (squared first entries of their eigenvectors)."""
        if self.alpha.size == 1:
            return np.ones(1)
        _, vecs = eigh_tridiagonal(self.alpha, self.beta)
        return vecs[0] ** 2


def lanczos(
    matvec: Callable[[np.ndarray], np.ndarray],
    n: int,
    steps: int,
    seed: int = 0,
    start: np.ndarray | None = None,
) -> LanczosRun:
    """``steps`` Lanczos steps on the symmetric operator ``matvec`` of size ``n``.

    The start vector is ``start`` (normalised) or a Rademacher vector from ``seed``. Stops early
    when the Krylov space is invariant (then the Ritz values are exact eigenvalues).
    """
    steps = validate_int(steps, "steps", low=1)
    steps = min(steps, n)
    v = rademacher(n, np.random.default_rng(seed)) if start is None else np.array(start, float)
    v = v / np.linalg.norm(v)
    basis = np.empty((steps, n))
    alpha: list[float] = []
    beta: list[float] = []
    n_matvec = 0
    for j in range(steps):
        basis[j] = v
        w = np.asarray(matvec(v), dtype=np.float64)
        n_matvec += 1
        a = float(w @ v)
        alpha.append(a)
        # full reorthogonalisation (twice is enough: "twice is enough", Parlett)
        for _ in range(2):
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        b = float(np.linalg.norm(w))
        if j == steps - 1 or b <= 1e-12 * max(abs(a), 1.0):
            break
        beta.append(b)
        v = w / b
    return LanczosRun(np.asarray(alpha), np.asarray(beta[: len(alpha) - 1]), n_matvec)

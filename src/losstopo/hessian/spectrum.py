"""Eigenvalues, trace and spectral density of the parameter-space Hessian.

- :func:`hessian_eigenvalues`: extreme eigenpairs by implicitly restarted Lanczos (scipy's
  ``eigsh``, ARPACK) on the :func:`~losstopo.hvp` operator. ``"smallest"`` runs Lanczos on the
  shifted operator ``lambda_max I - H``, so the most negative eigenvalues are found to ``tol``
  relative to the spectral scale ``lambda_max - lambda_min`` rather than to their own (tiny) size.
- :func:`hessian_trace`: Hutchinson's estimator with Rademacher vectors, with its standard error.
- :func:`hessian_density`: stochastic Lanczos quadrature (Ghorbani et al. 2019; PyHessian's
  density), Gaussian-smoothed on a grid.

Examples
--------
>>> import torch
>>> from losstopo import hessian_eigenvalues, hessian_trace
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
>>> data = (torch.randn(32, 3), torch.randint(0, 2, (32,)))
>>> spec = hessian_eigenvalues(model, data, "cross_entropy", k=2, device="cpu")
>>> spec.eigenvalues.shape, spec.eigenvectors.shape
((2,), (2, 26))
>>> bool(spec.eigenvalues[0] >= spec.eigenvalues[1])
True
>>> tr = hessian_trace(model, data, "cross_entropy", n_samples=20, device="cpu")
>>> bool(tr.stderr > 0)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from ..errors import EvaluationError, InvalidParameterError, validate_choice, validate_int
from .lanczos import lanczos, rademacher
from .operator import HessianOperator, hvp

__all__ = [
    "HessianSpectrum",
    "HessianTrace",
    "SpectralDensity",
    "extreme_eigenpairs",
    "hessian_density",
    "hessian_eigenvalues",
    "hessian_trace",
]

Which = Literal["largest", "smallest", "both"]

#: Below this many parameters the Hessian is built densely (``n_params`` products) and solved
#: exactly when ARPACK cannot be used (it needs ``k < n_params``).
DENSE_LIMIT = 64


@dataclass(frozen=True)
class HessianSpectrum:
    """Extreme eigenpairs of the Hessian at one point.

    Attributes
    ----------
    eigenvalues : (k,) or (2k,) float64, descending
    eigenvectors : (len(eigenvalues), n_params) float64, unit rows in the model's flat parameter
        order (usable as directions: ``PlaneProjector(model, spec.eigenvectors[:2])``)
    n_hvp : Hessian-vector products the computation took
    which : ``"largest"``, ``"smallest"`` or ``"both"``
    attrs : the loss at the point, the tolerance, the product mode
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    n_hvp: int
    which: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[0])

    @property
    def lambda_min(self) -> float:
        return float(self.eigenvalues[-1])

    def to_dict(self) -> dict[str, Any]:
        """Eigenvalues and counts as plain JSON types (eigenvectors left out)."""
        return {
            "eigenvalues": [float(v) for v in self.eigenvalues],
            "n_hvp": int(self.n_hvp),
            "which": self.which,
            **{k: v for k, v in self.attrs.items()},
        }


@dataclass(frozen=True)
class HessianTrace:
    """Hutchinson's estimate of ``tr(H)``: ``value`` +- ``stderr`` from ``samples``."""

    value: float
    stderr: float
    samples: np.ndarray
    n_hvp: int
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace": float(self.value),
            "stderr": float(self.stderr),
            "n_samples": int(self.samples.size),
            "n_hvp": int(self.n_hvp),
            **self.attrs,
        }


@dataclass(frozen=True)
class SpectralDensity:
    """A smoothed eigenvalue density ``density`` on ``grid`` (integrates to 1).

    ``nodes`` and ``weights`` (``(n_runs, steps)``) are the Gauss quadrature of each Lanczos run;
    ``sigma`` the Gaussian kernel width.
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float
    n_hvp: int
    attrs: dict[str, Any] = field(default_factory=dict)

    def moment(self, p: int) -> float:
        """``E[lambda^p]`` of the quadrature (``tr(H^p) / n_params`` in expectation)."""
        return float(np.mean(np.sum(self.weights * self.nodes**p, axis=1)))


def _check_k(k: int, n: int) -> int:
    k = validate_int(k, "k", low=1)
    if k > n:
        raise InvalidParameterError(
            f"k={k} eigenvalues were asked for but the model has only {n} parameters; the "
            f"maximum is k={n}."
        )
    return k


def _eigsh(op: LinearOperator, k: int, tol: float, v0: np.ndarray, max_hvp: int) -> tuple:
    n = op.shape[0]
    ncv = min(n, max(2 * k + 1, 20))
    maxiter = max(1, max_hvp // max(ncv - k, 1))
    try:
        vals, vecs = eigsh(op, k=k, which="LA", tol=tol, v0=v0, ncv=ncv, maxiter=maxiter)
    except ArpackNoConvergence as exc:
        raise EvaluationError(
            f"Lanczos did not reach tol={tol:g} within max_hvp={max_hvp} Hessian-vector products "
            f"({len(exc.eigenvalues)} of {k} eigenvalues converged); raise max_hvp or tol."
        ) from exc
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order].T


def extreme_eigenpairs(
    op: HessianOperator,
    k: int = 5,
    which: Which = "largest",
    tol: float = 1e-3,
    seed: int = 0,
    max_hvp: int = 5000,
) -> HessianSpectrum:
    """:func:`hessian_eigenvalues` on an operator already built with :func:`~losstopo.hvp`."""
    validate_choice(which, "which", ("largest", "smallest", "both"))
    n = op.shape[0]
    k = _check_k(k, n)
    if not (isinstance(tol, (int, float)) and 0 <= tol < 1):
        raise InvalidParameterError(f"'tol' must be a relative tolerance in [0, 1); got {tol!r}.")
    start = op.n_hvp
    rng = np.random.default_rng(seed)
    if (which == "both" and 2 * k > n) or k >= n - 1 or (n <= DENSE_LIMIT and k > n // 2):
        dense = op.dense()
        vals, vecs = np.linalg.eigh((dense + dense.T) / 2)
        vals, vecs = vals[::-1], vecs[:, ::-1].T
        parts = []
        if which in ("largest", "both"):
            parts.append(np.arange(k))
        if which in ("smallest", "both"):
            parts.append(np.arange(n - k, n))
        idx = np.unique(np.concatenate(parts))
        eigenvalues, eigenvectors = vals[idx], vecs[idx]
        method = "dense"
    else:
        eigenvalues, eigenvectors = np.empty(0), np.empty((0, n))
        if which in ("largest", "both"):
            eigenvalues, eigenvectors = _eigsh(op, k, tol, rademacher(n, rng), max_hvp)
        if which in ("smallest", "both"):
            top = (
                eigenvalues[0]
                if eigenvalues.size
                else _eigsh(op, 1, tol, rademacher(n, rng), max_hvp)[0][0]
            )
            shift = max(float(top), 0.0)
            shifted = LinearOperator(
                shape=op.shape, dtype=np.float64, matvec=lambda v: shift * v - op.matvec(v)
            )
            mu, low_vecs = _eigsh(shifted, k, tol, rademacher(n, rng), max_hvp)
            low = shift - mu
            order = np.argsort(low)[::-1]
            eigenvalues = np.concatenate([eigenvalues, low[order]])
            eigenvectors = np.concatenate([eigenvectors, low_vecs[order]])
        method = "lanczos"
    signs = np.sign(eigenvectors[np.arange(len(eigenvectors)), np.argmax(abs(eigenvectors), 1)])
    eigenvectors = eigenvectors * np.where(signs == 0, 1.0, signs)[:, None]
    return HessianSpectrum(
        eigenvalues=np.asarray(eigenvalues, dtype=np.float64),
        eigenvectors=np.asarray(eigenvectors, dtype=np.float64),
        n_hvp=op.n_hvp - start,
        which=which,
        attrs={"tol": float(tol), "method": method, "product": op.mode, "n_params": n},
    )


def hessian_eigenvalues(
    model: Any,
    data: Any,
    loss: Any,
    k: int = 5,
    which: Which = "largest",
    tol: float = 1e-3,
    seed: int = 0,
    *,
    point: Any = None,
    device: Any = None,
    batch_size: int | None = None,
    dtype: Any = None,
    max_hvp: int = 5000,
) -> HessianSpectrum:
    """The ``k`` largest and/or most negative eigenvalues (and eigenvectors) of the Hessian.

    ``which="smallest"`` returns the most negative eigenvalues: a point is a true minimum when
    they are not below zero (beyond ``tol`` of the spectral scale). ``which="both"`` returns
    ``2k`` values, the ``k`` largest then the ``k`` smallest, descending. ``point``, ``device``,
    ``batch_size`` and ``dtype`` as for :func:`~losstopo.hvp`; ``max_hvp`` bounds the products.
    """
    op = hvp(model, data, loss, point=point, device=device, batch_size=batch_size, dtype=dtype)
    spec = extreme_eigenpairs(op, k=k, which=which, tol=tol, seed=seed, max_hvp=max_hvp)
    spec.attrs["loss"] = op.loss()
    return spec


def trace_estimate(
    op: HessianOperator, n_samples: int = 100, seed: int = 0, rtol: float | None = None
) -> HessianTrace:
    """:func:`hessian_trace` on an operator already built with :func:`~losstopo.hvp`."""
    n_samples = validate_int(n_samples, "n_samples", low=2)
    rng = np.random.default_rng(seed)
    start = op.n_hvp
    samples: list[float] = []
    for i in range(n_samples):
        z = rademacher(op.shape[0], rng)
        samples.append(float(z @ op.matvec(z)))
        if rtol is not None and i >= 9:
            arr = np.asarray(samples)
            if arr.std(ddof=1) / np.sqrt(arr.size) <= rtol * abs(arr.mean()):
                break
    arr = np.asarray(samples)
    return HessianTrace(
        value=float(arr.mean()),
        stderr=float(arr.std(ddof=1) / np.sqrt(arr.size)),
        samples=arr,
        n_hvp=op.n_hvp - start,
        attrs={"estimator": "hutchinson-rademacher", "seed": int(seed)},
    )


def hessian_trace(
    model: Any,
    data: Any,
    loss: Any,
    n_samples: int = 100,
    seed: int = 0,
    rtol: float | None = None,
    *,
    point: Any = None,
    device: Any = None,
    batch_size: int | None = None,
    dtype: Any = None,
) -> HessianTrace:
    """Hutchinson's estimate of the Hessian's trace: the mean of ``z^T H z`` over Rademacher ``z``.

    ``stderr`` is the standard error of that mean. With ``rtol`` the estimate stops early (after
    at least 10 samples) once ``stderr <= rtol * |value|``.
    """
    op = hvp(model, data, loss, point=point, device=device, batch_size=batch_size, dtype=dtype)
    return trace_estimate(op, n_samples=n_samples, seed=seed, rtol=rtol)


def density_estimate(
    op: HessianOperator,
    steps: int = 64,
    n_runs: int = 4,
    n_grid: int = 512,
    sigma: float | None = None,
    seed: int = 0,
) -> SpectralDensity:
    """:func:`hessian_density` on an operator already built with :func:`~losstopo.hvp`."""
    n_runs = validate_int(n_runs, "n_runs", low=1)
    n_grid = validate_int(n_grid, "n_grid", low=8)
    start = op.n_hvp
    runs = [lanczos(op.matvec, op.shape[0], steps, seed=seed + r) for r in range(n_runs)]
    m = min(len(r.alpha) for r in runs)
    nodes = np.stack([r.ritz_values()[-m:] if len(r.alpha) == m else _pad(r, m)[0] for r in runs])
    weights = np.stack([r.weights()[-m:] if len(r.alpha) == m else _pad(r, m)[1] for r in runs])
    lo, hi = float(nodes.min()), float(nodes.max())
    width = max(hi - lo, 1e-12)
    sigma = float(sigma) if sigma is not None else 0.01 * width
    if sigma <= 0:
        raise InvalidParameterError(f"'sigma' must be positive; got {sigma}.")
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, n_grid)
    kernel = np.exp(-0.5 * ((grid[None, None, :] - nodes[..., None]) / sigma) ** 2)
    kernel /= sigma * np.sqrt(2 * np.pi)
    density = np.mean(np.sum(weights[..., None] * kernel, axis=1), axis=0)
    return SpectralDensity(
        grid=grid,
        density=density,
        nodes=nodes,
        weights=weights,
        sigma=sigma,
        n_hvp=op.n_hvp - start,
        attrs={"steps": int(steps), "n_runs": n_runs, "seed": int(seed)},
    )


def _pad(run: Any, m: int) -> tuple[np.ndarray, np.ndarray]:
    # a run that stopped early (invariant subspace): merge its extra nodes into m slots is not
    # needed; keep its m largest-weight nodes, renormalised
    vals, w = run.ritz_values(), run.weights()
    keep = np.sort(np.argsort(w)[::-1][:m])
    return vals[keep], w[keep] / w[keep].sum()


def hessian_density(
    model: Any,
    data: Any,
    loss: Any,
    steps: int = 64,
    n_runs: int = 4,
    n_grid: int = 512,
    sigma: float | None = None,
    seed: int = 0,
    *,
    point: Any = None,
    device: Any = None,
    batch_size: int | None = None,
    dtype: Any = None,
) -> SpectralDensity:
    """The Hessian's eigenvalue density by stochastic Lanczos quadrature.

    ``n_runs`` Lanczos runs of ``steps`` products from Rademacher start vectors; each run's Ritz
    values and quadrature weights are smoothed with a Gaussian of width ``sigma`` (default 1% of
    the spectrum's range) and averaged. Plot it with :func:`losstopo.plot.plot_spectral_density`.
    """
    op = hvp(model, data, loss, point=point, device=device, batch_size=batch_size, dtype=dtype)
    return density_estimate(op, steps=steps, n_runs=n_runs, n_grid=n_grid, sigma=sigma, seed=seed)

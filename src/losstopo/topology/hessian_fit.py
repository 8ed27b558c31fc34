"""Hessians of a grid field by a local quadratic least-squares fit, in physical axis units.

At a vertex the fit uses the ``3^d`` window of grid points around it. At the boundary the window
is shifted inward (one-sided: it still holds 3 points along every axis of at least 3 points), so the
quadratic model ``f(x) = c + g.x + x^T H x / 2`` stays determined. Non-finite values in the window
are left out of the fit; a window with too few finite points gives NaN eigenvalues.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ._order import morse_code


def _design(x: np.ndarray) -> np.ndarray:
    """Design matrix (..., w, p) of the quadratic model for coordinates x (..., w, d)."""
    d = x.shape[-1]
    cols = [np.ones(x.shape[:-1])]
    cols += [x[..., k] for k in range(d)]
    for k in range(d):
        for m in range(k, d):
            cols.append(0.5 * x[..., k] ** 2 if k == m else x[..., k] * x[..., m])
    return np.stack(cols, axis=-1)


def fit_hessian(
    values: np.ndarray,
    axes: Sequence[np.ndarray],
    flat_index: np.ndarray,
    *,
    chunk: int = 65536,
) -> np.ndarray:
    """Hessians (m, d, d) of ``values`` at the flat C-order indices ``flat_index``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 5)
    >>> X, Y = np.meshgrid(x, x, indexing="ij")
    >>> H = fit_hessian(X**2 + 3 * Y**2, (x, x), np.array([12]))
    >>> np.round(H[0], 6) + 0.0
    array([[2., 0.],
           [0., 6.]])
    """
    shape = values.shape
    d = values.ndim
    flat_index = np.asarray(flat_index, dtype=np.int64).ravel()
    m_all = flat_index.size
    out = np.full((m_all, d, d), np.nan)
    if m_all == 0:
        return out
    win = [min(3, s) for s in shape]
    rel = np.array(list(itertools.product(*[range(w) for w in win])), dtype=np.int64)  # (w, d)
    h = np.array([np.mean(np.diff(a)) for a in axes])
    p = 1 + d + d * (d + 1) // 2
    flat_vals = values.ravel()
    for lo in range(0, m_all, chunk):
        idx = flat_index[lo : lo + chunk]
        centre = np.stack(np.unravel_index(idx, shape), axis=1)  # (m, d)
        start = np.clip(centre - 1, 0, np.array(shape) - np.array(win))
        pts = start[:, None, :] + rel[None, :, :]  # (m, w, d)
        x = np.empty(pts.shape)
        for k in range(d):
            x[..., k] = (axes[k][pts[..., k]] - axes[k][centre[:, k]][:, None]) / h[k]
        f = flat_vals[np.ravel_multi_index(tuple(pts[..., k] for k in range(d)), shape)]
        ok = np.isfinite(f)
        wts = ok.astype(np.float64)
        A = _design(x) * wts[..., None]
        b = np.where(ok, f, 0.0) * wts
        sv = np.linalg.svd(A, compute_uv=False)
        good = (
            (ok.sum(axis=1) >= p) & (sv[:, -1] > 1e-9 * sv[:, 0])
            if sv.shape[1] >= p
            else (np.zeros(idx.size, dtype=bool))
        )
        coef = np.einsum("mpw,mw->mp", np.linalg.pinv(A), b)
        H = np.empty((idx.size, d, d))
        c = 1 + d
        for k in range(d):
            for m in range(k, d):
                H[:, k, m] = H[:, m, k] = coef[:, c] / (h[k] * h[m])
                c += 1
        H[~good] = np.nan
        out[lo : lo + chunk] = H
    return out


def classify_hessians(
    hessians: np.ndarray, *, rtol: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues (m, d), TTK type from the Morse index (-1 if near-degenerate) and a degenerate flag.

    An eigenvalue counts as zero when ``|lambda| <= rtol * max|lambda|``; a Hessian with such an
    eigenvalue (or a NaN one) is near-degenerate and gets type -1.
    """
    m, d = hessians.shape[0], hessians.shape[-1]
    eig = np.full((m, d), np.nan)
    finite = np.all(np.isfinite(hessians.reshape(m, -1)), axis=1)
    if np.any(finite):
        eig[finite] = np.linalg.eigvalsh(hessians[finite])
    scale = np.nanmax(np.abs(eig), axis=1, initial=0.0) if m else np.zeros(0)
    with np.errstate(invalid="ignore"):
        small = np.abs(eig) <= rtol * scale[:, None]
    degenerate = ~finite | np.any(small, axis=1) | (scale == 0)
    index = np.sum(eig < 0, axis=1)
    htype = np.array([morse_code(int(k), d) for k in index], dtype=np.int64)
    htype[degenerate] = -1
    return eig, htype, degenerate

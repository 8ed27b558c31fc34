"""Value scales shared by the figures and the exports (one transform, so they agree).

Examples
--------
>>> import numpy as np
>>> log_loss_values(np.array([1.0, 10.0, np.nan]))
array([ 0.,  1., nan])
"""

from __future__ import annotations

import numpy as np

__all__ = ["finite_range", "log_loss_values", "log_shift"]


def finite_range(values: np.ndarray) -> tuple[float, float] | None:
    """``(min, max)`` of the finite entries of ``values``, or None when there are none.

    >>> finite_range(np.array([2.0, np.nan, -1.0, np.inf]))
    (-1.0, 2.0)
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return None
    return float(finite.min()), float(finite.max())


def log_shift(values: np.ndarray) -> float:
    """The shift :func:`log_loss_values` adds before ``log10``: 0 when every finite value is
    positive, else ``1e-4 * range - min`` (``1 - min`` for a constant field).

    >>> log_shift(np.array([0.0, 1.0]))
    0.0001
    """
    rng = finite_range(values)
    if rng is None:
        return 0.0
    lo, hi = rng
    return 0.0 if lo > 0 else -lo + ((hi - lo) * 1e-4 if hi > lo else 1.0)


def log_loss_values(values: np.ndarray) -> np.ndarray:
    """``log10`` of a loss array, shifted when it has values <= 0; NaN/inf stay NaN.

    Positive losses map to ``log10(v)``. If the smallest finite value is not positive, the values
    are shifted by :func:`log_shift` first, so the lowest point stays finite. The plots and the
    ``log_loss`` export array both use this transform.

    >>> log_loss_values(np.array([-1.0, 0.0, 1.0])).round(3)
    array([-3.699,  0.   ,  0.301])
    """
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    out = np.full(v.shape, np.nan)
    if not finite.any():
        return out
    out[finite] = np.log10(v[finite] + log_shift(v))
    return out

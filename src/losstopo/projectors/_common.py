"""Validation and small numeric helpers shared by the projectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidParameterError, ShapeMismatchError


def check_n_components(value: Any, owner: str, low: int = 1, high: int = 3) -> int:
    """``n_components`` as an int in ``[low, high]``, in scikit-learn's wording."""
    ok = (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and low <= value <= high
    )
    if not ok:
        raise InvalidParameterError(
            f"The 'n_components' parameter of {owner} must be an int in the range [{low}, {high}]. "
            f"Got {value!r} instead."
        )
    return int(value)


def check_min_points(n: int, need: int, owner: str, why: str) -> None:
    """Refuse fitting on fewer than ``need`` checkpoints, saying why."""
    if n < need:
        raise InvalidParameterError(
            f"{owner} needs at least {need} checkpoints {why}; got {n}. Record more checkpoints "
            "(train(..., record_every=1)) or fit on several runs together."
        )


def check_n_params(points: np.ndarray, n_params: int, owner: str) -> None:
    if points.shape[1] != n_params:
        raise ShapeMismatchError(
            f"The points have {points.shape[1]} parameters but this {owner} was fitted on "
            f"{n_params}; use points of the same model."
        )


def check_random_state(value: Any, owner: str) -> int | None:
    """``None`` or a non-negative int seed."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise InvalidParameterError(
        f"The 'random_state' parameter of {owner} must be None or an int >= 0. Got {value!r} "
        "instead."
    )


def center_scale(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Column mean (float64) and the RMS distance of the points to it (1.0 when all coincide)."""
    mean = points.mean(axis=0, dtype=np.float64)
    sq = 0.0
    for row in points:
        d = row.astype(np.float64) - mean
        sq += float(d @ d)
    scale = float(np.sqrt(sq / max(len(points), 1)))
    return mean, scale if scale > 0 else 1.0

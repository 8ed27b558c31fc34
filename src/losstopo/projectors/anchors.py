"""Latent layouts of the auto-encoder: anchor presets and user anchors, and the PCA start."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, validate_choice

CORNER = 0.8  # anchor magnitude inside the tanh box


def resolve_anchors(
    spec: Any, k: int, n: int, runs: np.ndarray, coords: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Anchor indices ``(m,)`` and latent positions ``(m, k)`` from the ``anchors`` parameter.

    ``runs`` holds each checkpoint's run id and ``coords`` the checkpoints in parameter units
    (for the path length along which ``"diagonal"`` spaces its anchors).
    """
    if spec is None:
        return np.zeros(0, dtype=np.int64), np.zeros((0, k))
    if isinstance(spec, str):
        validate_choice(spec, "anchors", ("corners", "diagonal", "circle"))
        one = np.full(k, CORNER)
        if spec == "corners":
            return np.array([0, n - 1]), np.stack([-one, one])
        if spec == "diagonal":
            idx = np.flatnonzero(runs == runs[0])
            steps = np.linalg.norm(np.diff(coords[idx], axis=0), axis=1)
            t = np.concatenate([[0.0], np.cumsum(steps)])
            t = t / t[-1] if t[-1] > 0 else np.linspace(0, 1, len(idx))
            return idx, (-1 + 2 * t)[:, None] * one[None]
        # circle: last checkpoint of each run evenly around it (one run: first and last)
        run_ids = list(dict.fromkeys(runs.tolist()))
        if len(run_ids) == 1:
            idx = np.array([0, n - 1])
        else:
            idx = np.array([np.flatnonzero(runs == r)[-1] for r in run_ids])
        angles = math.pi / 4 + 2 * math.pi * np.arange(len(idx)) / len(idx)
        pos = np.zeros((len(idx), k))
        pos[:, 0] = CORNER * np.cos(angles)
        if k > 1:
            pos[:, 1] = CORNER * np.sin(angles)
        return idx, pos
    try:
        pairs = list(spec)
    except TypeError:
        pairs = None
    if pairs is None or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
        raise InvalidParameterError(
            "The 'anchors' parameter must be None, 'corners', 'diagonal', 'circle' or a list "
            f"of (index, position) pairs. Got {spec!r} instead."
        )
    idx_list, pos_list = [], []
    for index, position in pairs:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise InvalidParameterError(f"Anchor index {index!r} must be an int.")
        if not -n <= index < n:
            raise InvalidParameterError(
                f"Anchor index {index} is beyond the trajectory of {n} checkpoints; use an "
                f"index in [{-n}, {n - 1}]."
            )
        vec = np.asarray(position, dtype=np.float64).ravel()
        if vec.size != k or not np.all(np.isfinite(vec)) or np.any(np.abs(vec) >= 1):
            raise InvalidParameterError(
                f"Anchor position {position!r} for checkpoint {index} must be {k} finite "
                "numbers inside the open latent box (-1, 1)."
            )
        idx_list.append(int(index) % n)
        pos_list.append(vec)
    return np.asarray(idx_list, dtype=np.int64), np.asarray(pos_list).reshape(-1, k)


def pca_layout(target: np.ndarray, k: int) -> np.ndarray:
    """First ``k`` principal coordinates of the rows, scaled into ``[-0.8, 0.8]``."""
    centered = target - target.mean(axis=0)
    u, s, _ = np.linalg.svd(centered, full_matrices=False)
    lay = np.zeros((len(target), k))
    m = min(k, u.shape[1])
    lay[:, :m] = u[:, :m] * s[:m]
    peak = np.abs(lay).max(axis=0)
    peak = np.where(peak > 0, peak, 1.0)
    return CORNER * lay / peak

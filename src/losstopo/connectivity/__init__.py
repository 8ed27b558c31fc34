"""Mode connectivity: loss barriers along straight paths and trained curves between two models.

- :func:`interpolate`: the loss along ``(1 - t) A + t B`` and its barrier (Frankle et al. 2020).
- :func:`fit_curve`: a quadratic Bezier curve or one-bend polychain of low loss between two
  models (Garipov et al. 2018); :class:`Curve` evaluates, samples and saves it.
- :class:`PathProfile`: loss and metrics along a path, its barrier; HDF5 and CSV.
- :func:`connecting_plane` / :func:`plane_landscape`: the plane through A, B and the bend, with
  both paths drawn in its landscape.

Examples
--------
>>> import torch
>>> from losstopo.connectivity import interpolate
>>> from losstopo.datasets import synthetic_classification
>>> model = torch.nn.Linear(16, 3)
>>> interpolate(model, model, synthetic_classification(), "cross_entropy", n_points=3).barrier
0.0
"""

from .curve import Curve, curve_weights, fit_curve
from .path import (
    buffer_interpolation,
    check_same_architecture,
    has_running_stats,
    interpolate,
    path_values,
)
from .plane import connecting_plane, plane_landscape, plane_paths
from .profile import PROFILE_FORMAT, PathProfile, barrier_of, validate_n_points

__all__ = [
    "PROFILE_FORMAT",
    "Curve",
    "PathProfile",
    "barrier_of",
    "buffer_interpolation",
    "check_same_architecture",
    "connecting_plane",
    "curve_weights",
    "fit_curve",
    "has_running_stats",
    "interpolate",
    "path_values",
    "plane_landscape",
    "plane_paths",
    "validate_n_points",
]

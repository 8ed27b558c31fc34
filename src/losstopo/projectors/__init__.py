"""Projections of parameter space to 1-3 dimensional coordinates (scikit-learn style)."""

from .base import Projector, as_coords, as_points
from .linear import LinearProjector, PCAProjector, PlaneProjector

__all__ = [
    "LinearProjector",
    "PCAProjector",
    "PlaneProjector",
    "Projector",
    "as_coords",
    "as_points",
]

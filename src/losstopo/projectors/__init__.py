"""Projections of parameter space to 1-3 dimensional coordinates (scikit-learn style).

Linear: :class:`PlaneProjector` (given directions), :class:`PCAProjector` (trajectory PCA).
Non-linear, decoding: :class:`KernelPCAProjector`, :class:`UMAPProjector`,
:class:`AutoEncoderProjector` (Neuro-Visualizer). Embedding only: :class:`PHATEProjector`.
"""

from .autoencoder import AutoEncoderProjector
from .base import Projector, as_coords, as_points
from .kernel_pca import KernelPCAProjector
from .linear import LinearProjector, PCAProjector, PlaneProjector
from .phate_projector import NoInverseError, PHATEProjector
from .umap_projector import UMAPProjector

# HessianProjector (top Hessian eigen-directions as a LinearProjector) comes with the Hessian
# issue: add `from .hessian import HessianProjector` here and to __all__.

__all__ = [
    "AutoEncoderProjector",
    "KernelPCAProjector",
    "LinearProjector",
    "NoInverseError",
    "PCAProjector",
    "PHATEProjector",
    "PlaneProjector",
    "Projector",
    "UMAPProjector",
    "as_coords",
    "as_points",
]

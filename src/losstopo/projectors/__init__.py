"""Projections of parameter space to 1-3 dimensional coordinates (scikit-learn estimators).

Linear: :class:`PlaneProjector` (given directions), :class:`PCAProjector` (trajectory PCA).
Non-linear, decoding: :class:`KernelPCAProjector`, :class:`UMAPProjector`,
:class:`AutoEncoderProjector` (Neuro-Visualizer). Embedding only: :class:`PHATEProjector`.
:data:`PROJECTORS` names them all; :func:`make_projector` builds one by name.
"""

from ..errors import NoInverseError
from .autoencoder import AutoEncoderProjector
from .base import Decoder, LinearDecoder, Projector, as_coords, as_points, is_fitted
from .kernel_pca import KernelPCAProjector
from .linear import LinearProjector, PCAProjector, PlaneProjector
from .phate_projector import PHATEProjector
from .registry import PROJECTORS, decoding_projectors, make_projector
from .umap_projector import UMAPProjector

# HessianProjector (top Hessian eigen-directions as a LinearProjector) comes with the Hessian
# issue: add `from .hessian import HessianProjector` here, to PROJECTORS and to __all__.

__all__ = [
    "PROJECTORS",
    "AutoEncoderProjector",
    "Decoder",
    "KernelPCAProjector",
    "LinearDecoder",
    "LinearProjector",
    "NoInverseError",
    "PCAProjector",
    "PHATEProjector",
    "PlaneProjector",
    "Projector",
    "UMAPProjector",
    "as_coords",
    "as_points",
    "decoding_projectors",
    "is_fitted",
    "make_projector",
]

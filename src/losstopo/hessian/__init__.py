"""The Hessian of the loss in the network's own parameter space.

- :mod:`.operator`: :func:`hvp`, Hessian-vector products as a scipy ``LinearOperator``
- :mod:`.lanczos`: Lanczos with full reorthogonalisation
- :mod:`.spectrum`: :func:`hessian_eigenvalues`, :func:`hessian_trace`, :func:`hessian_density`
- :mod:`.projector`: :class:`HessianProjector` (landscapes on the top eigenvectors)
- :mod:`.curvature_map`: :func:`hessian_map` (Li et al.'s ``|lambda_min / lambda_max|`` map)
- :mod:`.checks`: :func:`check_critical_points` (a picture's critical points in the full space)
"""

from __future__ import annotations

from .checks import CriticalCheck, check_critical_points, decoder_jacobian, plane_hessian
from .curvature_map import hessian_map
from .lanczos import LanczosRun, lanczos
from .operator import HessianOperator, hvp
from .projector import HessianProjector
from .spectrum import (
    HessianSpectrum,
    HessianTrace,
    SpectralDensity,
    density_estimate,
    extreme_eigenpairs,
    hessian_density,
    hessian_eigenvalues,
    hessian_trace,
    trace_estimate,
)

__all__ = [
    "CriticalCheck",
    "HessianProjector",
    "check_critical_points",
    "decoder_jacobian",
    "hessian_map",
    "plane_hessian",
    "HessianOperator",
    "HessianSpectrum",
    "HessianTrace",
    "LanczosRun",
    "SpectralDensity",
    "density_estimate",
    "extreme_eigenpairs",
    "hessian_density",
    "hessian_eigenvalues",
    "hessian_trace",
    "hvp",
    "lanczos",
    "trace_estimate",
]

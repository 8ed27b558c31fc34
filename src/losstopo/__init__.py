"""losstopo: loss landscapes of neural networks, measured."""

from __future__ import annotations

from ._version import __version__
from .alignment import (
    AlignmentReport,
    Permutation,
    PermutationSpec,
    activation_matching,
    align,
    apply_permutation,
    permutation_spec,
    weight_matching,
)
from .connectivity import Curve, PathProfile, connecting_plane, fit_curve, interpolate
from .data import resolve_loss
from .directions import random_directions
from .errors import LosstopoError
from .evaluate import PointValues, evaluate, evaluate_points
from .fidelity import FidelityReport, FidelityTable, compare_projectors, embed_with_loss, fidelity
from .field import LossField, ProjectedPath
from .grid import Grid
from .hessian import (
    CriticalCheck,
    HessianProjector,
    HessianSpectrum,
    HessianTrace,
    SpectralDensity,
    check_critical_points,
    hessian_density,
    hessian_eigenvalues,
    hessian_map,
    hessian_trace,
    hvp,
)
from .projectors import (
    AutoEncoderProjector,
    KernelPCAProjector,
    PCAProjector,
    PHATEProjector,
    PlaneProjector,
    UMAPProjector,
)
from .space import ParameterSpace
from .topology import (
    TopologySummary,
    analyze,
    basins,
    bottleneck_distance,
    critical_points,
    merge_tree,
    persistence_diagram,
    wasserstein_distance,
)
from .trajectory import Trajectory, TrajectoryRecorder, train
from .verify import TopologyCheck, verify_topology

__all__ = [
    "AlignmentReport",
    "Curve",
    "PathProfile",
    "Permutation",
    "PermutationSpec",
    "activation_matching",
    "align",
    "apply_permutation",
    "connecting_plane",
    "fit_curve",
    "interpolate",
    "permutation_spec",
    "weight_matching",
    "CriticalCheck",
    "HessianProjector",
    "HessianSpectrum",
    "HessianTrace",
    "SpectralDensity",
    "check_critical_points",
    "hessian_density",
    "hessian_eigenvalues",
    "hessian_map",
    "hessian_trace",
    "hvp",
    "AutoEncoderProjector",
    "FidelityReport",
    "FidelityTable",
    "KernelPCAProjector",
    "PHATEProjector",
    "UMAPProjector",
    "compare_projectors",
    "fidelity",
    "Grid",
    "LossField",
    "LosstopoError",
    "PCAProjector",
    "ParameterSpace",
    "PlaneProjector",
    "PointValues",
    "ProjectedPath",
    "TopologySummary",
    "Trajectory",
    "TrajectoryRecorder",
    "__version__",
    "analyze",
    "basins",
    "bottleneck_distance",
    "critical_points",
    "embed_with_loss",
    "evaluate",
    "evaluate_points",
    "merge_tree",
    "persistence_diagram",
    "random_directions",
    "resolve_loss",
    "train",
    "wasserstein_distance",
    "TopologyCheck",
    "verify_topology",
]

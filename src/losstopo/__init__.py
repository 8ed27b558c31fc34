"""losstopo: loss landscapes of neural networks, measured.

The names below are imported on first use (``from losstopo import evaluate`` works as always), so
``import losstopo`` and the ``losstopo`` command start without loading the heavy parts.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
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
    from .compare import Comparison, compare
    from .connectivity import (
        Curve,
        PathProfile,
        connecting_plane,
        fit_curve,
        interpolate,
    )
    from .data import resolve_loss
    from .directions import random_directions, random_state_directions
    from .errors import LosstopoError
    from .evaluate import PointValues, evaluate, evaluate_points
    from .fidelity import (
        FidelityReport,
        FidelityTable,
        compare_projectors,
        embed_with_loss,
        fidelity,
    )
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
    from .verify import (
        TopologyCheck,
        verify_topology,
    )

#: Public name -> the submodule that defines it, imported on first access.
_EXPORTS: dict[str, str] = {
    "AlignmentReport": "alignment",
    "Permutation": "alignment",
    "PermutationSpec": "alignment",
    "activation_matching": "alignment",
    "align": "alignment",
    "apply_permutation": "alignment",
    "permutation_spec": "alignment",
    "weight_matching": "alignment",
    "Curve": "connectivity",
    "PathProfile": "connectivity",
    "connecting_plane": "connectivity",
    "fit_curve": "connectivity",
    "interpolate": "connectivity",
    "CriticalCheck": "hessian",
    "HessianProjector": "hessian",
    "HessianSpectrum": "hessian",
    "HessianTrace": "hessian",
    "SpectralDensity": "hessian",
    "check_critical_points": "hessian",
    "hessian_density": "hessian",
    "hessian_eigenvalues": "hessian",
    "hessian_map": "hessian",
    "hessian_trace": "hessian",
    "hvp": "hessian",
    "TopologyCheck": "verify",
    "verify_topology": "verify",
    "resolve_loss": "data",
    "random_directions": "directions",
    "random_state_directions": "directions",
    "LosstopoError": "errors",
    "PointValues": "evaluate",
    "evaluate": "evaluate",
    "evaluate_points": "evaluate",
    "FidelityReport": "fidelity",
    "FidelityTable": "fidelity",
    "compare_projectors": "fidelity",
    "Comparison": "compare",
    "compare": "compare",
    "embed_with_loss": "fidelity",
    "fidelity": "fidelity",
    "LossField": "field",
    "ProjectedPath": "field",
    "Grid": "grid",
    "AutoEncoderProjector": "projectors",
    "KernelPCAProjector": "projectors",
    "PCAProjector": "projectors",
    "PHATEProjector": "projectors",
    "PlaneProjector": "projectors",
    "UMAPProjector": "projectors",
    "ParameterSpace": "space",
    "TopologySummary": "topology",
    "analyze": "topology",
    "basins": "topology",
    "bottleneck_distance": "topology",
    "critical_points": "topology",
    "merge_tree": "topology",
    "persistence_diagram": "topology",
    "wasserstein_distance": "topology",
    "Trajectory": "trajectory",
    "TrajectoryRecorder": "trajectory",
    "train": "trajectory",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        try:  # a submodule as an attribute (losstopo.plot), as after an eager import
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """The package module: a name that is both a submodule and the function it exports
    (``evaluate``, ``fidelity``) stays the function when the submodule is imported."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            isinstance(value, types.ModuleType)
            and _EXPORTS.get(name) == name
            and value.__name__ == f"{__name__}.{name}"
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "AlignmentReport",
    "Permutation",
    "PermutationSpec",
    "activation_matching",
    "align",
    "apply_permutation",
    "permutation_spec",
    "weight_matching",
    "Curve",
    "PathProfile",
    "connecting_plane",
    "fit_curve",
    "interpolate",
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
    "TopologyCheck",
    "verify_topology",
    "AutoEncoderProjector",
    "FidelityReport",
    "FidelityTable",
    "KernelPCAProjector",
    "PHATEProjector",
    "UMAPProjector",
    "compare_projectors",
    "Comparison",
    "compare",
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
    "random_state_directions",
    "resolve_loss",
    "train",
    "wasserstein_distance",
]

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

#: Public name -> the submodule that defines it, imported on first access.
_EXPORTS: dict[str, str] = {
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
    "random_state_directions",
    "resolve_loss",
    "train",
    "wasserstein_distance",
]

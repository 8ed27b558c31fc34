"""losstopo: loss landscapes of neural networks, measured."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import LosstopoError
from .field import LossField, ProjectedPath
from .grid import Grid

__all__ = ["Grid", "LossField", "LosstopoError", "ProjectedPath", "__version__"]

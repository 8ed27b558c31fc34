"""The projectors by name: one registry for the command line, comparisons and error messages.

Examples
--------
>>> from losstopo.projectors import PROJECTORS, decoding_projectors, make_projector
>>> sorted(PROJECTORS)
['autoencoder', 'kpca', 'pca', 'phate', 'plane', 'umap']
>>> decoding_projectors()
['PlaneProjector', 'PCAProjector', 'KernelPCAProjector', 'UMAPProjector', 'AutoEncoderProjector']
>>> make_projector("kpca", n_components=3, random_state=1)
KernelPCAProjector(n_components=3, random_state=1)
>>> make_projector("pca", random_state=1)  # PCA has no random_state: not passed
PCAProjector()
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import InvalidParameterError
from .autoencoder import AutoEncoderProjector
from .base import Projector
from .kernel_pca import KernelPCAProjector
from .linear import PCAProjector, PlaneProjector
from .phate_projector import PHATEProjector
from .umap_projector import UMAPProjector

#: Every built-in projector class by its short name.
PROJECTORS: dict[str, type[Projector]] = {
    "plane": PlaneProjector,
    "pca": PCAProjector,
    "kpca": KernelPCAProjector,
    "umap": UMAPProjector,
    "phate": PHATEProjector,
    "autoencoder": AutoEncoderProjector,
}


def decoding_projectors() -> list[str]:
    """Class names of the registered projectors that decode (``decodes = True``), in order."""
    return [cls.__name__ for cls in PROJECTORS.values() if cls.decodes]


def make_projector(
    name: str, n_components: int = 2, random_state: int | None = 0, **kw: Any
) -> Projector:
    """A fresh, unfitted projector of the registered kind ``name``.

    ``n_components``, ``random_state`` and the keyword arguments ``kw`` go to the class's
    constructor; those it does not take (e.g. ``random_state`` for PCA) are left out, so one
    call configures every kind. ``"plane"`` is refused: a plane is built from a model and
    directions, with ``PlaneProjector(model, random_directions(model))``.
    """
    if name == "plane":
        raise InvalidParameterError(
            "make_projector cannot build a 'plane' projector: it needs a centre and directions; "
            "use PlaneProjector(model, random_directions(model)) instead."
        )
    if name not in PROJECTORS:
        valid = ", ".join(repr(k) for k in PROJECTORS if k != "plane")
        raise InvalidParameterError(f"Unknown projector {name!r}; choose one of {valid}.")
    cls = PROJECTORS[name]
    accepted = inspect.signature(cls.__init__).parameters
    given = {"n_components": n_components, "random_state": random_state, **kw}
    return cls(**{k: v for k, v in given.items() if k in accepted})

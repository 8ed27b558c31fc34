"""The ``/projector`` group of a field file: a fitted projector's arrays and JSON, no pickle.

Layout (``docs/format.md``): attribute ``class`` (the projector's import path, always one of
losstopo's), attribute ``meta_json`` (its parameters, fitted scalars, fingerprint, ``stored``),
and one dataset per fitted array, named as in :class:`~losstopo.projectors.state.ProjectorState`.

Examples
--------
>>> import io, h5py, numpy as np
>>> from losstopo.projectors import PCAProjector
>>> from losstopo.projectors.state import projector_state
>>> pca = PCAProjector(n_components=2).fit(np.random.default_rng(0).normal(size=(5, 8)))
>>> with h5py.File(io.BytesIO(), "w") as f:
...     write_projector_group(f.create_group("projector"), projector_state(pca))
...     back = read_projector_group(f["projector"])
>>> back.name, back.stored, back.live is None
('PCAProjector', True, True)
"""

from __future__ import annotations

import json

import h5py

from ..jsonable import to_jsonable
from ..projectors.state import ProjectorState


def write_projector_group(g: h5py.Group, state: ProjectorState) -> None:
    """Write ``state`` into the empty group ``g``."""
    g.attrs["class"] = state.cls
    g.attrs["meta_json"] = json.dumps(to_jsonable(state.meta))
    for name, arr in state.arrays.items():  # uncompressed: a store rewrites them at every flush,
        g.create_dataset(name, data=arr)  # and trained weights and directions hardly compress


def read_projector_group(g: h5py.Group) -> ProjectorState:
    """The state written by :func:`write_projector_group` (raises on a damaged group)."""
    meta = json.loads(g.attrs["meta_json"])
    if not isinstance(meta, dict):
        raise ValueError(f"its projector metadata is a JSON {type(meta).__name__}, not an object")
    arrays = {name: ds[()] for name, ds in g.items() if isinstance(ds, h5py.Dataset)}
    return ProjectorState(str(g.attrs["class"]), arrays, meta)

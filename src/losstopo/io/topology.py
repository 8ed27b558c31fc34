"""HDF5 form of a :class:`~losstopo.topology.TopologySummary`: arrays as datasets.

:func:`write_topology` stores the summary's tree (:meth:`TopologySummary.as_tree`) in an HDF5
group: nested dicts become sub-groups, arrays datasets (segmentations, pairs, critical points;
gzip-compressed when large), scalars and strings attributes, lists sub-groups with items
``"0"``, ``"1"``, ... and an ``__list__`` attribute holding their count, and every ``attrs``
(provenance) a JSON string attribute ``attrs_json``. :func:`read_topology` reads it back into a
summary equal to the one written (:meth:`TopologySummary.equals`).

Examples
--------
>>> import numpy as np, tempfile, os, h5py
>>> from losstopo.topology import analyze
>>> x = np.linspace(-2, 2, 41)
>>> summary = analyze((x**2 - 1) ** 2, min_persistence=0.1)
>>> path = os.path.join(tempfile.mkdtemp(), "topo.h5")
>>> with h5py.File(path, "w") as f:
...     write_topology(f.create_group("topology"), summary)
>>> with h5py.File(path, "r") as f:
...     read_topology(f["topology"]).equals(summary)
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import h5py
import numpy as np

from ..errors import FieldFormatError, InvalidTypeError
from ..jsonable import to_jsonable
from ..topology import TopologySummary

__all__ = ["read_topology", "write_topology"]

#: Arrays with at least this many entries are stored gzip-compressed.
COMPRESS_FROM = 4096
LIST = "__list__"
ATTRS = "attrs_json"


def write_topology(group: h5py.Group, summary: TopologySummary) -> None:
    """Store ``summary`` in the (empty) HDF5 ``group``; :func:`read_topology` reads it back."""
    if not isinstance(summary, TopologySummary):
        raise InvalidTypeError(
            "write_topology needs a losstopo.topology.TopologySummary (from analyze); "
            f"got {type(summary).__name__}."
        )
    _write(group, summary.as_tree())


def read_topology(group: h5py.Group) -> TopologySummary:
    """The :class:`TopologySummary` stored in ``group`` by :func:`write_topology`."""
    try:
        tree = _read(group)
        if not isinstance(tree, Mapping) or "schema" not in tree:
            raise KeyError("schema")
        return TopologySummary.from_dict(tree)
    except (KeyError, ValueError, TypeError) as exc:
        raise FieldFormatError(
            f"The topology group {group.name} of {group.file.filename} is damaged ({exc!r}); "
            "recompute it with losstopo topology --save or analyze()."
        ) from exc


def _write(group: h5py.Group, tree: Mapping[str, Any] | list[Any]) -> None:
    items = tree.items() if isinstance(tree, Mapping) else enumerate(tree)
    if isinstance(tree, list):
        group.attrs[LIST] = len(tree)
    for key, value in items:
        name = str(key)
        if name == "attrs":
            group.attrs[ATTRS] = json.dumps(to_jsonable(value))
        elif isinstance(value, (Mapping, list, tuple)):
            _write(group.create_group(name), value if isinstance(value, Mapping) else list(value))
        elif isinstance(value, np.ndarray):
            big = value.size >= COMPRESS_FROM
            group.create_dataset(name, data=value, compression="gzip" if big else None)
        elif value is None or not isinstance(value, (str, bool, int, float, np.generic)):
            raise InvalidTypeError(f"Cannot store {name}={value!r} in HDF5.")
        else:
            group.attrs[name] = value


def _read(group: h5py.Group) -> dict[str, Any] | list[Any]:
    out: dict[str, Any] = {}
    for key, value in group.attrs.items():
        if key == ATTRS:
            out["attrs"] = json.loads(value)
        elif key != LIST:
            out[key] = _python(value)
    for key, obj in group.items():
        out[key] = _read(obj) if isinstance(obj, h5py.Group) else obj[()]
    if LIST in group.attrs:
        return [out[str(i)] for i in range(int(group.attrs[LIST]))]
    return out


def _python(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value

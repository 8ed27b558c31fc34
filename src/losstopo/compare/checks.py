"""Whether landscapes can be compared: same grid, extent, directions, loss and data.

Examples
--------
>>> from losstopo.testing import analytic_field
>>> differences(analytic_field("bowl"), analytic_field("bowl", resolution=21))
['grid shape (41, 41) vs (21, 21)']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidParameterError, ShapeMismatchError

__all__ = ["check_comparable", "differences", "provenance"]

_MISSING = "not recorded"


def provenance(field: Any) -> dict[str, Any]:
    """What makes two landscapes comparable, read from a field's grid and ``attrs``.

    ``normalization`` comes from the recorded directions (``attrs["projector"]["directions"]``)
    or ``attrs["normalization"]``; ``data`` is the data's hash when recorded, else its
    description; absent entries read ``"not recorded"``.
    """
    attrs = dict(field.attrs)
    proj: dict[str, Any] = attrs.get("projector") or {}
    drawn: dict[str, Any] = proj.get("directions") or {} if isinstance(proj, dict) else {}
    if not isinstance(drawn, dict):
        drawn = {}
    norm = drawn.get("normalization", attrs.get("normalization", _MISSING))
    data = attrs.get("data", _MISSING)
    if isinstance(data, dict):
        data = data.get("hash", data)
    extent = tuple(
        (round(float(np.min(a)), 12), round(float(np.max(a)), 12)) for a in field.grid.axes.values()
    )
    return {
        "grid shape": tuple(field.grid.shape),
        "axis names": tuple(field.grid.names),
        "extent": extent,
        "direction normalisation": norm,
        "loss": attrs.get("loss", _MISSING),
        "data": data,
    }


def differences(a: Any, b: Any) -> list[str]:
    """What differs between two fields' :func:`provenance`, one ``"what A vs B"`` per item."""
    pa, pb = provenance(a), provenance(b)
    return [f"{k} {_show(pa[k])} vs {_show(pb[k])}" for k in pa if pa[k] != pb[k]]


def _show(v: Any) -> str:
    if isinstance(v, tuple) and v and isinstance(v[0], tuple):
        return "x".join(f"[{lo:g}, {hi:g}]" for lo, hi in v)
    return str(v)


def check_comparable(fields: Sequence[Any], labels: Sequence[str], force: bool = False) -> None:
    """Refuse fields of different dimensions always, and fields that differ in grid, extent,
    direction normalisation, loss or data unless ``force``; the sentence names what differs."""
    first = fields[0]
    for f, label in zip(fields[1:], labels[1:], strict=True):
        if f.grid.ndim != first.grid.ndim:
            raise ShapeMismatchError(
                f"Cannot compare {labels[0]!r}, a {first.grid.ndim}D field, with {label!r}, a "
                f"{f.grid.ndim}D field: persistence diagrams and basins of different dimensions "
                "do not compare; compare landscapes of the same number of directions."
            )
    if force:
        return
    for f, label in zip(fields[1:], labels[1:], strict=True):
        diff = differences(first, f)
        if diff:
            raise InvalidParameterError(
                f"Landscapes {labels[0]!r} and {label!r} are not comparable: "
                + "; ".join(diff)
                + "; evaluate them alike, or pass force=True (--force) to compare them anyway."
            )

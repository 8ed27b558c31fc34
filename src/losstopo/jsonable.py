"""The one encoder of losstopo values to JSON: non-finite floats become strings.

JSON has no ``inf`` or ``nan``; Python's :mod:`json` writes ``Infinity``/``NaN``, which strict
readers refuse. :func:`to_jsonable` turns them into the strings ``"inf"``, ``"-inf"`` and
``"nan"`` (``float("inf")`` reads them back), numpy arrays and scalars into lists and Python
numbers, tuples into lists and mapping keys into strings. Topology summaries, field provenance,
reports and the command line all go through it.

Examples
--------
>>> import numpy as np
>>> from losstopo.jsonable import to_jsonable
>>> to_jsonable({"pairs": np.array([[0.0, np.inf]]), 1: (np.int64(2), float("nan"))})
{'pairs': [[0.0, 'inf']], '1': [2, 'nan']}
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["to_jsonable"]


def _number(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types, with non-finite floats as ``"inf"``, ``"-inf"``, ``"nan"``.

    Mappings become dicts with string keys; lists, tuples and numpy arrays become lists; numpy
    scalars become Python numbers; paths become strings; any other object becomes ``str(obj)``.

    >>> to_jsonable([1.5, float("-inf"), np.float32(2.0), True, None])
    [1.5, '-inf', 2.0, True, None]
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        return _number(float(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj] if obj.ndim else to_jsonable(obj.item())
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)

"""Reading result classes back from their trees (JSON lists or HDF5 arrays) and comparing them.

A result's *tree* (``as_tree()``) is a nested dict of strings, Python scalars, numpy arrays and
lists of arrays. :func:`array` rebuilds an array of a known dtype and trailing shape from either
form (JSON gives lists, with non-finite floats as strings; an empty list keeps its trailing
shape); :func:`same` compares two trees exactly (dtype, shape, values, NaN equal to NaN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..jsonable import to_jsonable


def array(x: Any, dtype: Any, tail: Sequence[int] = ()) -> np.ndarray:
    """``x`` (a list or an array) as a C-contiguous array of ``dtype`` shaped ``(-1, *tail)``."""
    a = np.asarray(x, dtype=dtype)
    if tail or a.size == 0:
        a = a.reshape(-1, *tail)
    return np.ascontiguousarray(a)


def grid_array(x: Any, dtype: Any, shape: Sequence[int]) -> np.ndarray:
    """``x`` as an array of ``dtype`` with the grid ``shape``."""
    return np.ascontiguousarray(np.asarray(x, dtype=dtype).reshape(tuple(shape)))


def same(a: Any, b: Any) -> bool:
    """Whether two trees are equal: same keys, types, dtypes, shapes and values (NaN == NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        nan = a.dtype.kind in "fc"
        return bool(np.array_equal(a, b, equal_nan=nan))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) != set(b):
            return False
        return all(
            to_jsonable(a[k]) == to_jsonable(b[k]) if k == "attrs" else same(a[k], b[k]) for k in a
        )
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return type(a) is type(b) and bool(a == b)

"""Helpers for testing pipelines built on losstopo: analytic fields with known critical points,
and a field comparison with a readable failure message.

Examples
--------
>>> from losstopo.testing import analytic_field, assert_field_allclose
>>> f = analytic_field("himmelblau", resolution=81)
>>> f.attrs["minima"], f.attrs["saddles"], f.attrs["maxima"]
(4, 4, 1)
>>> assert_field_allclose(f, f)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import InvalidParameterError
from .field import LossField
from .grid import Grid

#: name -> (function of the coordinate arrays, axes ranges, known minima, saddles, maxima)
ANALYTIC_FIELDS: dict[
    str, tuple[Callable[..., np.ndarray], tuple[tuple[float, float], ...], int, int, int]
] = {
    "bowl": (lambda x, y: x**2 + 2 * y**2, ((-1, 1), (-1, 1)), 1, 0, 0),
    "double_well": (lambda x, y: (x**2 - 1) ** 2 + y**2, ((-2, 2), (-1, 1)), 2, 1, 0),
    "himmelblau": (
        lambda x, y: (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2,
        ((-5, 5), (-5, 5)),
        4,
        4,
        1,
    ),
    "bowl3d": (lambda x, y, z: x**2 + y**2 + z**2, ((-1, 1), (-1, 1), (-1, 1)), 1, 0, 0),
}


def analytic_field(name: str, resolution: int = 41) -> LossField:
    """A field sampled from an analytic function whose critical points are known.

    ``attrs`` holds the number of interior ``minima``, ``saddles`` and ``maxima``.
    """
    if name not in ANALYTIC_FIELDS:
        raise InvalidParameterError(
            f"Unknown analytic field {name!r}; choose one of {', '.join(ANALYTIC_FIELDS)}."
        )
    fn, ranges, n_min, n_saddle, n_max = ANALYTIC_FIELDS[name]
    names = ("x", "y", "z")[: len(ranges)]
    grid = Grid(
        {n: np.linspace(lo, hi, resolution) for n, (lo, hi) in zip(names, ranges, strict=True)}
    )
    mesh = np.meshgrid(*grid.axes.values(), indexing="ij")
    return LossField(
        fn(*mesh),
        grid,
        attrs={"analytic": name, "minima": n_min, "saddles": n_saddle, "maxima": n_max},
    )


def assert_field_allclose(
    actual: LossField, expected: LossField, rtol: float = 1e-6, atol: float = 0.0
) -> None:
    """Assert two fields have the same grid and values (and metrics) within tolerance.

    NaN equals NaN; the first differing point is named with its coordinates.
    """
    if actual.grid != expected.grid:
        raise AssertionError(f"grids differ: {actual.grid!r} vs {expected.grid!r}")
    pairs = [("loss", actual.values, expected.values)]
    if set(actual.metrics) != set(expected.metrics):
        raise AssertionError(
            f"metrics differ: {sorted(actual.metrics)} vs {sorted(expected.metrics)}"
        )
    pairs += [(k, actual.metrics[k], expected.metrics[k]) for k in sorted(actual.metrics)]
    for name, a, b in pairs:
        close = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        if not close.all():
            flat = int(np.flatnonzero(~close.ravel())[0])
            coords = actual.grid.coords_of(flat)[0]
            where = ", ".join(
                f"{n}={c:.6g}" for n, c in zip(actual.grid.names, coords, strict=True)
            )
            raise AssertionError(
                f"{name} differs at {np.count_nonzero(~close)} of {a.size} points; first at {where}: "
                f"{a.ravel()[flat]!r} vs {b.ravel()[flat]!r}"
            )

"""Regular grids of coordinates in a projection's latent space.

A :class:`Grid` is a tuple of named, strictly increasing 1-D axes. Its points are enumerated in
C order (last axis fastest), which is the flat index used everywhere in losstopo: evaluation
stores, topology results and exports.

Examples
--------
>>> from losstopo import Grid
>>> g = Grid.square(resolution=5, extent=1.0, n_components=2)
>>> g.shape
(5, 5)
>>> g.points()[:2]
array([[-1. , -1. ],
       [-1. , -0.5]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InvalidParameterError, renamed_parameter, validate_float, validate_int

DEFAULT_AXIS_NAMES = ("x", "y", "z")


def _axis_names(dims: int) -> tuple[str, ...]:
    if dims <= 3:
        return DEFAULT_AXIS_NAMES[:dims]
    return tuple(f"x{i}" for i in range(dims))


def validate_axis(values: object, name: str) -> np.ndarray:
    """Return ``values`` as a float64 1-D array that is finite and strictly increasing."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise InvalidParameterError(
            f"Axis {name!r} must be a 1-D array of at least 2 coordinates; got shape {arr.shape}. "
            "Pass e.g. numpy.linspace(-1, 1, 41)."
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"Axis {name!r} contains NaN or inf; use finite coordinates.")
    if not np.all(np.diff(arr) > 0):
        raise InvalidParameterError(
            f"Axis {name!r} must be strictly increasing; sort it and remove duplicates."
        )
    return arr


@dataclass(frozen=True, init=False, eq=False)
class Grid:
    """A regular (rectilinear) grid with named axes, in any number of dimensions.

    Parameters
    ----------
    axes : mapping of str to 1-D array
        Axis name -> strictly increasing coordinates. The order of the mapping is the order of
        the grid dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> g = Grid(axes={"x": np.linspace(-1, 1, 3), "y": np.linspace(0, 1, 2)})
    >>> g.shape, g.size, g.names
    ((3, 2), 6, ('x', 'y'))
    """

    axes: dict[str, np.ndarray]

    def __init__(self, axes: Mapping[str, Sequence[float] | np.ndarray]):
        if not isinstance(axes, Mapping) or len(axes) == 0:
            raise InvalidParameterError(
                "Grid needs a non-empty mapping of axis name -> coordinates, e.g. "
                "Grid(axes={'x': numpy.linspace(-1, 1, 41)})."
            )
        checked: dict[str, np.ndarray] = {}
        for name, values in axes.items():
            arr = validate_axis(values, str(name))
            arr.setflags(write=False)
            checked[str(name)] = arr
        object.__setattr__(self, "axes", checked)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def square(
        cls,
        resolution: int = 41,
        extent: float = 1.0,
        n_components: int = 2,
        names: Sequence[str] | None = None,
        *,
        dims: int | None = None,
    ) -> Grid:
        """Each of ``n_components`` axes spans ``[-extent, extent]`` with ``resolution`` points.

        With an odd resolution the centre (the model itself) is a grid point. ``dims`` is the
        old name of ``n_components``.

        >>> Grid.square(resolution=3, extent=2.0, n_components=1).axes["x"]
        array([-2.,  0.,  2.])
        """
        resolution = validate_int(resolution, "resolution", low=2)
        extent = validate_float(extent, "extent", low=0.0, strict_low=True)
        n_components = renamed_parameter(n_components, dims, "n_components", "dims", 2)
        dims = validate_int(n_components, "n_components", low=1)
        names = tuple(names) if names is not None else _axis_names(dims)
        if len(names) != dims:
            raise InvalidParameterError(f"Got {len(names)} axis names for {dims} dimensions.")
        # linspace computes each coordinate directly: no accumulated rounding.
        axis = np.linspace(-extent, extent, resolution)
        if resolution % 2 == 1:
            axis[resolution // 2] = 0.0
        return cls({n: axis.copy() for n in names})

    @classmethod
    def around(
        cls,
        coords: np.ndarray,
        resolution: int = 41,
        margin: float = 0.2,
        names: Sequence[str] | None = None,
    ) -> Grid:
        """A grid covering the bounding box of ``coords`` (n, d), widened by ``margin`` of its size.

        >>> import numpy as np
        >>> g = Grid.around(np.array([[0.0, 0.0], [1.0, 2.0]]), resolution=3, margin=0.5)
        >>> g.axes["x"]
        array([-0.5,  0.5,  1.5])
        """
        resolution = validate_int(resolution, "resolution", low=2)
        margin = validate_float(margin, "margin", low=0.0)
        pts = np.atleast_2d(np.asarray(coords, dtype=np.float64))
        if pts.size == 0 or not np.all(np.isfinite(pts)):
            raise InvalidParameterError(
                "Grid.around needs at least one finite point; got an empty or non-finite array."
            )
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = np.maximum(hi - lo, 1e-12)
        span = np.where(hi - lo > 0, span, np.maximum(np.abs(hi), 1.0))
        lo, hi = lo - margin * span, hi + margin * span
        dims = pts.shape[1]
        names = tuple(names) if names is not None else _axis_names(dims)
        return cls({n: np.linspace(lo[i], hi[i], resolution) for i, n in enumerate(names)})

    # ------------------------------------------------------------------ properties
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes.values())

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def origin(self) -> np.ndarray:
        """First coordinate of each axis."""
        return np.array([a[0] for a in self.axes.values()])

    @property
    def spacing(self) -> np.ndarray:
        """Mean step of each axis (exact for uniform axes)."""
        return np.array([(a[-1] - a[0]) / (a.size - 1) for a in self.axes.values()])

    def is_uniform(self, rtol: float = 1e-6) -> bool:
        """True when every axis has equal steps."""
        return all(
            np.allclose(np.diff(a), (a[-1] - a[0]) / (a.size - 1), rtol=rtol, atol=0)
            for a in self.axes.values()
        )

    def points(self) -> np.ndarray:
        """All grid points as an ``(size, ndim)`` array in C order (last axis fastest)."""
        mesh = np.meshgrid(*self.axes.values(), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def unravel(self, flat_index: np.ndarray | int) -> tuple[np.ndarray, ...]:
        """Grid indices of C-order flat indices."""
        return np.unravel_index(flat_index, self.shape)

    def coords_of(self, flat_index: np.ndarray | int) -> np.ndarray:
        """Coordinates (in axis units) of C-order flat indices, shape ``(n, ndim)``."""
        idx = self.unravel(np.atleast_1d(flat_index))
        return np.stack([a[i] for a, i in zip(self.axes.values(), idx, strict=True)], axis=1)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        return self.names == other.names and all(
            np.array_equal(a, b)
            for a, b in zip(self.axes.values(), other.axes.values(), strict=True)
        )

    def __hash__(self) -> int:
        return hash((self.names, self.shape))

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}=[{a[0]:g}..{a[-1]:g}]x{a.size}" for n, a in self.axes.items())
        return f"Grid({parts})"

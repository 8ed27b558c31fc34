"""Shared pieces of the figures: new or given Axes, input checks, colours, saving.

Examples
--------
>>> import os, tempfile
>>> fig, ax = new_axes(None)
>>> _ = ax.plot([0, 1], [1, 0])
>>> save_figure(fig, os.path.join(tempfile.mkdtemp(), "line.png")).suffix
'.png'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import InvalidParameterError, InvalidTypeError, validate_output_path
from ..field import LossField
from ..topology.values import log_loss_values

__all__ = [
    "FORMATS",
    "MAX_LABELS",
    "TYPE_STYLE",
    "axis_label",
    "check_field",
    "smooth_for_display",
    "log_loss_values",
    "masked",
    "new_axes",
    "path_colors",
    "save_figure",
]

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
TYPE_STYLE = {  # TTK critical types -> (marker, colour, name)
    0: ("v", "#1f77b4", "minimum"),
    1: ("X", "#2ca02c", "1-saddle"),
    2: ("D", "#9467bd", "2-saddle"),
    3: ("^", "#d62728", "maximum"),
}
MAX_LABELS = 5  # value labels on a contour map: the most persistent few


def new_axes(
    ax: Axes | None, projection: str | None = None, figsize: tuple[float, float] = (6.4, 4.8)
) -> tuple[Figure, Axes]:
    """A new Figure and Axes, or the Figure of the given ``ax`` (checked) and ``ax`` itself."""
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot(projection=projection)
    if not isinstance(ax, Axes):
        raise InvalidTypeError(
            f"The 'ax' parameter must be a matplotlib Axes or None. Got {type(ax).__name__} instead."
        )
    if projection == "3d" and getattr(ax, "name", "") != "3d":
        raise InvalidParameterError(
            "plot_surface needs a 3D Axes; create it with fig.add_subplot(projection='3d') "
            "or pass ax=None."
        )
    root = ax.get_figure(root=True)
    if not isinstance(root, Figure):
        raise InvalidParameterError("The 'ax' parameter must belong to a matplotlib Figure.")
    return root, ax


def axis_label(field: LossField, i: int) -> str:
    """What axis ``i`` of ``field`` is, from the projector recorded in its attrs.

    ``"direction 1 (filter-normalized)"`` for a plane of random directions, ``"PC1 (73% var.)"``
    for trajectory PCA, ``"latent 1"`` for a non-linear projector; the grid's own axis name when
    the field records no projector.

    Examples
    --------
    >>> from losstopo import Grid, LossField
    >>> import numpy as np
    >>> g = Grid.square(3)
    >>> pca = {"name": "PCAProjector", "explained_variance_ratio": [0.734, 0.2]}
    >>> axis_label(LossField(np.zeros((3, 3)), g, attrs={"projector": pca}), 0)
    'PC1 (73% var.)'
    >>> axis_label(LossField(np.zeros((3, 3)), g), 1)
    'y'
    """
    name = field.grid.names[i]
    proj = field.attrs.get("projector")
    if not isinstance(proj, dict):
        return name
    kind = proj.get("name")
    if kind == "PlaneProjector":
        dirs = proj.get("directions") if isinstance(proj.get("directions"), dict) else {}
        norm = (dirs or {}).get("normalization", field.attrs.get("normalization"))
        if field.attrs.get("interpolation"):
            return f"{name} ({field.attrs['interpolation']})"
        return f"direction {i + 1}" + (f" ({norm}-normalized)" if norm and norm != "none" else "")
    if kind == "PCAProjector":
        ratios = proj.get("explained_variance_ratio") or []
        share = f" ({100 * float(ratios[i]):.0f}% var.)" if i < len(ratios) else ""
        return f"PC{i + 1}{share}"
    return f"latent {i + 1}"


def smooth_for_display(
    xa: np.ndarray, ya: np.ndarray, values: np.ndarray, min_points: int = 121
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A finer grid for drawing a coarse 2D field: a cubic spline through every grid value,
    clipped to the values' range, so contour lines are smooth; the field itself is untouched
    (with evenly spaced axes the grid's points are points of the finer grid).

    Returned unchanged when the grid is already fine, has fewer than 4 points on an axis, or
    holds non-finite values (a spline would smear them).

    Examples
    --------
    >>> import numpy as np
    >>> x = y = np.linspace(-1, 1, 9)
    >>> v = np.add.outer(x**2, y**2)
    >>> fx, fy, fv = smooth_for_display(x, y, v)
    >>> fv.shape, bool(np.allclose(fv[::15, ::15], v)), bool(fv.min() >= v.min())
    ((121, 121), True, True)
    """
    xa, ya = np.asarray(xa, dtype=np.float64), np.asarray(ya, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    n = max(len(xa), len(ya))
    if n >= min_points or min(len(xa), len(ya)) < 4 or not np.all(np.isfinite(v)):
        return xa, ya, v
    from scipy.interpolate import RectBivariateSpline

    factor = -(-(min_points - 1) // (n - 1))  # the grid's nodes stay nodes of the finer grid
    fx = np.linspace(xa[0], xa[-1], (len(xa) - 1) * factor + 1)
    fy = np.linspace(ya[0], ya[-1], (len(ya) - 1) * factor + 1)
    fine = RectBivariateSpline(xa, ya, v, kx=3, ky=3, s=0)(fx, fy)
    return fx, fy, np.clip(fine, v.min(), v.max())


def check_field(field: Any, dims: Sequence[int], func: str, hint: str) -> LossField:
    """``field`` if it is a LossField of one of the dimensions ``dims``, else one clear error."""
    if not isinstance(field, LossField):
        raise InvalidTypeError(
            f"{func} needs a losstopo.LossField. Got {type(field).__name__} instead."
        )
    if field.grid.ndim not in dims:
        raise InvalidParameterError(
            f"{func} draws {'/'.join(str(d) for d in dims)}D fields; this field is "
            f"{field.grid.ndim}D. {hint}"
        )
    return field


def masked(values: np.ndarray) -> np.ma.MaskedArray:
    """``values`` as float64 with NaN/inf masked."""
    return np.ma.masked_invalid(np.asarray(values, dtype=np.float64))


def path_colors(n: int) -> list[Any]:
    """``n`` distinct colours (tab10, or tab20 above 10)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` as PNG, SVG or PDF, chosen by the extension.

    Creates nothing but ``path`` itself: the directory must exist.

    >>> import tempfile, os
    >>> fig = Figure()
    >>> _ = fig.add_subplot().plot([0, 1])
    >>> out = save_figure(fig, os.path.join(tempfile.mkdtemp(), "line.svg"))
    >>> out.suffix
    '.svg'
    """
    if not isinstance(fig, Figure):
        raise InvalidTypeError(
            f"save_figure needs a matplotlib Figure. Got {type(fig).__name__} instead."
        )
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidParameterError(
            f"Cannot save a figure as {path.name!r}: the extension must be one of "
            f"{', '.join(FORMATS)}; rename the output file."
        )
    validate_output_path(path, path.name)
    fig.savefig(path, format=fmt, dpi=dpi)
    return path

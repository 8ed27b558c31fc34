"""Figures of loss fields: contour maps with trajectories and critical points, surfaces, profiles.

Examples
--------
>>> import numpy as np
>>> from losstopo import Grid, LossField
>>> g = Grid.square(resolution=21, n_components=2)
>>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
>>> fig = plot_contour(LossField(x**2 + y**2, g), title="bowl")
>>> fig.axes[0].get_title()
'bowl'
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import InvalidParameterError, InvalidTypeError
from ..field import LossField
from ..topology import CriticalPoints, TopologySummary
from ..verify import TopologyCheck
from .axes import (
    MAX_LABELS,
    TYPE_STYLE,
    axis_label,
    check_field,
    log_loss_values,
    masked,
    new_axes,
    path_colors,
    smooth_for_display,
)

__all__ = ["draw_critical_points", "plot_contour", "plot_profile", "plot_surface"]


def plot_contour(
    field: LossField,
    ax: Axes | None = None,
    *,
    paths: bool = True,
    critical_points: CriticalPoints | TopologySummary | None = None,
    log: bool = False,
    levels: int = 30,
    title: str | None = None,
) -> Figure:
    """Filled contour map of a 2D field with its trajectories and critical points.

    Parameters
    ----------
    field : LossField
        A 2D field; non-finite values are left blank.
    ax : matplotlib Axes, optional
        Where to draw; a new Figure when omitted.
    paths : bool
        Draw every ``field.paths`` entry (circle at the start, star at the end, one colour per run).
    critical_points : CriticalPoints or TopologySummary, optional
        Markers by type (0 min, 1 saddle, 3 max). With a summary, its persistent points, the
        most persistent labelled with their value and persistence.
    log : bool
        Colour by ``log10`` of the loss (see :func:`log_loss_values`).
    levels : int
        Number of contour levels.
    title : str, optional
        Axes title.

    Examples
    --------
    >>> import numpy as np
    >>> from losstopo import Grid, LossField, ProjectedPath
    >>> g = Grid.square(resolution=21, n_components=2)
    >>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    >>> p = ProjectedPath(coords=[[0.8, 0.8], [0.1, 0.0]], step=[0, 10], run="sgd")
    >>> field = LossField(x**2 + y**2, g).with_paths({"sgd": p})
    >>> fig = plot_contour(field, log=True)
    """
    check_field(
        field, (2,), "plot_contour", "Use plot_profile for 1D fields; export 3D fields to ParaView."
    )
    levels = int(levels)
    if levels < 2:
        raise InvalidParameterError(f"The 'levels' parameter must be an int >= 2. Got {levels}.")
    fig, ax = new_axes(ax)
    (xn, xa), (yn, ya) = field.grid.axes.items()
    X, Y = np.meshgrid(xa, ya, indexing="ij")
    V = log_loss_values(field.values) if log else field.values
    Vm = masked(V)
    label = "log10 loss" if log else "loss"
    if Vm.count() >= 2 and float(Vm.max()) > float(Vm.min()):
        # a coarse grid is drawn through a spline of its values (display only)
        fx, fy, fv = smooth_for_display(xa, ya, np.ma.filled(Vm, np.nan))
        FX, FY = np.meshgrid(fx, fy, indexing="ij")
        Fm = masked(fv) if fv.shape != Vm.shape else Vm
        cf = ax.contourf(FX, FY, Fm, levels=levels, cmap="viridis")
        ax.contour(FX, FY, Fm, levels=levels, colors="k", linewidths=0.3, alpha=0.5)
        fig.colorbar(cf, ax=ax, label=label)
    else:  # constant or almost empty field: contour would fail
        im = ax.pcolormesh(X, Y, Vm, cmap="viridis", shading="auto")
        fig.colorbar(im, ax=ax, label=label)
    if paths and field.paths:
        _draw_paths(ax, field)
    if critical_points is not None:
        draw_critical_points(ax, critical_points)
    ax.set_xlabel(axis_label(field, 0))
    ax.set_ylabel(axis_label(field, 1))
    ax.set_xlim(xa[0], xa[-1])
    ax.set_ylim(ya[0], ya[-1])
    if title is not None:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small", framealpha=0.8)
    return fig


def _draw_paths(ax: Axes, field: LossField) -> None:
    """Each path with a circle at its start and a star at its end, explained once in the legend;
    a path that collapses to one point (of this plot's resolution) gets no legend entry."""
    colors = path_colors(len(field.paths))
    span = max(float(np.ptp(a)) for a in field.grid.axes.values()) or 1.0
    drawn = False
    for color, path in zip(colors, field.paths.values(), strict=True):
        c = np.asarray(path.coords)
        if len(c) == 0 or c.shape[1] < 2:
            continue
        moves = float(np.ptp(c[:, :2], axis=0).max()) > 1e-3 * span
        ax.plot(c[:, 0], c[:, 1], "-", color=color, lw=1.5, label=path.run if moves else None)
        ax.plot(c[0, 0], c[0, 1], "o", color=color, mec="k", ms=6)
        ax.plot(c[-1, 0], c[-1, 1], "*", color=color, mec="k", ms=11)
        drawn = True
    if drawn:  # what the markers mean, once
        ax.plot([], [], "o", color="none", mec="k", ms=6, label="start")
        ax.plot([], [], "*", color="none", mec="k", ms=11, label="end")


def _spread(coords: np.ndarray, order: np.ndarray, ax: Axes, limit: int) -> list[int]:
    """Up to ``limit`` of ``order`` (most important first) whose anchors lie at least 12% of the
    axes apart, so their value labels do not overlap."""
    lo = np.array([ax.get_xlim()[0], ax.get_ylim()[0]], dtype=np.float64)
    size = np.array([np.ptp(ax.get_xlim()), np.ptp(ax.get_ylim())], dtype=np.float64)
    size[size == 0] = 1.0
    kept: list[int] = []
    for i in order:
        where = (coords[i, :2] - lo) / size
        if all(np.abs(where - (coords[j, :2] - lo) / size).max() >= 0.12 for j in kept):
            kept.append(int(i))
        if len(kept) == limit:
            break
    return kept


#: Rings around the picture's minima checked in the full space (``verify_topology``).
VERIFY_STYLE = {
    "verified": ("#2ca02c", "minimum in full space, basin confirmed"),
    "saddle": ("#ff7f0e", "saddle in full space"),
    "artifact": ("#d62728", "basin not confirmed in full space"),
}


def verification_status(check: TopologyCheck) -> np.ndarray:
    """``"verified"``, ``"saddle"`` or ``"artifact"`` for each minimum of ``check``."""
    status = np.where(check.is_artifact, "artifact", "verified").astype("<U8")
    status[~check.is_full_space_minimum] = "saddle"
    return status


def _draw_verification(ax: Axes, check: TopologyCheck) -> None:
    status = verification_status(check)
    for key, (color, name) in VERIFY_STYLE.items():
        sel = status == key
        if sel.any():
            ax.scatter(
                check.coords[sel, 0], check.coords[sel, 1], marker="o", s=190,
                facecolors="none", edgecolors=color, linewidths=2.2, zorder=4,
                label=f"{name} ({int(sel.sum())})",
            )  # fmt: skip


def draw_critical_points(ax: Axes, points: CriticalPoints | TopologySummary) -> None:
    """Markers by critical type; for a summary, its persistent points, the few most persistent
    labelled with their value and persistence (never two labels on top of each other), and,
    when a full-space check is attached (:func:`losstopo.verify_topology`), a ring around each
    checked minimum coloured by its status (:data:`VERIFY_STYLE`)."""
    if isinstance(points, TopologySummary):
        cp, pers = points.persistent, points.critical_persistence()
    elif isinstance(points, CriticalPoints):
        cp, pers = points, np.full(len(points), np.nan)
    else:
        raise InvalidTypeError(
            "critical_points must be a losstopo CriticalPoints or TopologySummary (from "
            f"losstopo.topology); got {type(points).__name__}."
        )
    coords, types, values = cp.coords, cp.type, cp.value
    if cp.ndim != 2:
        raise InvalidParameterError(
            f"Critical points have {cp.ndim}D coordinates; plot_contour needs 2D ones."
        )
    for t, (marker, color, name) in TYPE_STYLE.items():
        sel = types == t
        if sel.any():
            ax.scatter(
                coords[sel, 0], coords[sel, 1], marker=marker, c=color, s=60,
                edgecolors="white", linewidths=0.8, zorder=5, label=f"{name} ({int(sel.sum())})",
            )  # fmt: skip
    check = TopologyCheck.from_summary(points) if isinstance(points, TopologySummary) else None
    if check is not None and check.n_minima and check.coords.shape[1] == 2:
        _draw_verification(ax, check)
    known = np.flatnonzero(~np.isnan(pers))
    order = known[np.argsort(-np.nan_to_num(pers[known], posinf=np.finfo(float).max))]
    for i in _spread(coords, order, ax, MAX_LABELS):
        p = pers[i]
        text = f"{values[i]:.3g} (p={'inf' if math.isinf(p) else f'{p:.2g}'})"
        ax.annotate(
            text, (coords[i, 0], coords[i, 1]), xytext=(4, 4), textcoords="offset points",
            fontsize=7, color="white", zorder=6,
            bbox={"boxstyle": "round,pad=0.15", "fc": "black", "alpha": 0.5, "lw": 0},
        )  # fmt: skip


def plot_surface(
    field: LossField, ax: Axes | None = None, *, log: bool = False, title: str | None = None
) -> Figure:
    """3D surface of a 2D field, with its trajectories at their loss height when they have losses.

    Examples
    --------
    >>> import numpy as np
    >>> from losstopo import Grid, LossField
    >>> g = Grid.square(resolution=15, n_components=2)
    >>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    >>> fig = plot_surface(LossField(x**2 - y**2, g))
    """
    check_field(
        field, (2,), "plot_surface", "Use plot_profile for 1D fields; export 3D fields to ParaView."
    )
    fig, ax = new_axes(ax, projection="3d")
    (xn, xa), (yn, ya) = field.grid.axes.items()
    X, Y = np.meshgrid(xa, ya, indexing="ij")
    V = log_loss_values(field.values) if log else np.asarray(field.values, dtype=np.float64)
    Z = np.where(np.isfinite(V), V, np.nan)
    if np.isfinite(Z).any():
        lo, hi = np.nanmin(Z), np.nanmax(Z)
        ax.plot_surface(  # type: ignore[attr-defined]
            X, Y, Z, cmap="viridis", vmin=lo, vmax=hi, linewidth=0, antialiased=True,
            rstride=1, cstride=1, alpha=0.9,
        )  # fmt: skip
    colors = path_colors(max(len(field.paths), 1))
    for color, path in zip(colors, field.paths.values(), strict=False):
        if path.loss is None or np.asarray(path.coords).shape[1] < 2:
            continue
        c = np.asarray(path.coords)
        z = log_loss_values(path.loss) if log else np.asarray(path.loss)
        ax.plot(c[:, 0], c[:, 1], z, "-o", color=color, ms=2, lw=1.5, label=path.run)
    ax.set_xlabel(axis_label(field, 0))
    ax.set_ylabel(axis_label(field, 1))
    ax.set_zlabel("log10 loss" if log else "loss")  # type: ignore[attr-defined]
    if title is not None:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_profile(
    field: LossField,
    ax: Axes | None = None,
    *,
    metrics: Iterable[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Loss of a 1D field along its axis, plus metric curves.

    Parameters
    ----------
    metrics : iterable of str, optional
        Names in ``field.metrics`` to draw (default: all). Names containing ``acc`` go on a twin
        y axis (accuracy), the others share the loss axis (e.g. ``test_loss``).

    Examples
    --------
    >>> import numpy as np
    >>> from losstopo import Grid, LossField
    >>> g = Grid.square(resolution=31, n_components=1)
    >>> x = g.axes["x"]
    >>> f = LossField(x**2, g, metrics={"test_loss": x**2 + 0.1, "accuracy": 1 - x**2 / 2})
    >>> fig = plot_profile(f)
    >>> len(fig.axes)
    2
    """
    check_field(field, (1,), "plot_profile", "Use plot_contour or plot_surface for 2D fields.")
    names = list(field.metrics) if metrics is None else [str(m) for m in metrics]
    missing = [m for m in names if m not in field.metrics]
    if missing:
        raise InvalidParameterError(
            f"Metric(s) {missing} are not in this field; it has {sorted(field.metrics)}. "
            "Pass names from field.metrics."
        )
    fig, ax = new_axes(ax)
    ((xn, xa),) = field.grid.axes.items()
    train_label = "loss" if not names else "train loss" if "test_loss" in names else "loss"
    ax.plot(
        xa, np.asarray(field.values, dtype=np.float64), "-", color="C0", lw=2, label=train_label
    )
    acc = [m for m in names if "acc" in m.lower()]
    other = [m for m in names if m not in acc]
    for i, m in enumerate(other):
        ax.plot(xa, field.metrics[m], "--", color=f"C{i + 1}", lw=1.5, label=m.replace("_", " "))
    handles, labels = ax.get_legend_handles_labels()
    if acc:
        twin = ax.twinx()
        for i, m in enumerate(acc):
            twin.plot(xa, field.metrics[m], ":", color=f"C{len(other) + i + 1}", lw=1.5,
                      label=m.replace("_", " "))  # fmt: skip
        twin.set_ylabel("accuracy")
        h2, l2 = twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.set_xlabel(axis_label(field, 0))
    ax.set_ylabel("loss")
    ax.set_xlim(xa[0], xa[-1])
    ax.grid(alpha=0.3)
    # below the axes (and their label), clear of the curves of both y axes
    ax.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(len(labels), 4),
        fontsize="small", frameon=False,
    )  # fmt: skip
    if title is not None:
        ax.set_title(title)
    return fig

"""Matplotlib figures of loss landscapes and their topology.

Every function draws on a new :class:`matplotlib.figure.Figure` (no ``pyplot`` state, so it is safe
in scripts, servers and notebooks alike) or on the ``ax`` it is given, and returns the Figure.
:func:`save_figure` writes PNG, SVG or PDF by file extension.

Topology arguments are duck-typed on the attribute names of :mod:`losstopo.topology`:
critical points need ``coords``, ``type`` and ``value`` (and optionally ``index``); merge trees
need ``pairs`` (and optionally ``pair_index``, ``extrema``, ``parent``/``to_networkx``);
persistence diagrams index by homology dimension (``dgm[k]`` is an ``(n, 2)`` array).

Examples
--------
>>> import numpy as np
>>> from losstopo import Grid, LossField
>>> from losstopo.plot import plot_contour
>>> g = Grid.square(resolution=21, dims=2)
>>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
>>> fig = plot_contour(LossField(x**2 + y**2, g), title="bowl")
>>> fig.axes[0].get_title()
'bowl'
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .errors import InvalidParameterError, InvalidTypeError

__all__ = [
    "log_loss_values",
    "plot_barcode",
    "plot_barrier",
    "plot_contour",
    "plot_fidelity",
    "plot_merge_tree",
    "plot_persistence_diagram",
    "plot_profile",
    "plot_surface",
    "save_figure",
]

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
TYPE_STYLE = {  # TTK critical types -> (marker, colour, name)
    0: ("v", "#1f77b4", "minimum"),
    1: ("X", "#2ca02c", "1-saddle"),
    2: ("D", "#9467bd", "2-saddle"),
    3: ("^", "#d62728", "maximum"),
}
MAX_LABELS = 12


# ---------------------------------------------------------------------------------------- helpers
def log_loss_values(values: np.ndarray) -> np.ndarray:
    """``log10`` of a loss array, shifted when it has values <= 0; NaN/inf stay NaN.

    Positive losses map to ``log10(v)``. If the smallest finite value is not positive, the values
    are shifted by ``1e-4 * range - min`` first, so the lowest point stays finite. The same
    transform is used by the plots and by the ``log_loss`` export array.

    >>> log_loss_values(np.array([1.0, 10.0, np.nan]))
    array([ 0.,  1., nan])
    """
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    out = np.full(v.shape, np.nan)
    if not finite.any():
        return out
    lo, hi = float(v[finite].min()), float(v[finite].max())
    shift = 0.0 if lo > 0 else -lo + ((hi - lo) * 1e-4 if hi > lo else 1.0)
    out[finite] = np.log10(v[finite] + shift)
    return out


def _new_axes(
    ax: Axes | None, projection: str | None = None, figsize: tuple[float, float] = (6.4, 4.8)
) -> tuple[Figure, Axes]:
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


def _check_field(field: Any, dims: Sequence[int], func: str, hint: str) -> None:
    grid = getattr(field, "grid", None)
    if grid is None or not hasattr(field, "values"):
        raise InvalidTypeError(
            f"{func} needs a losstopo.LossField. Got {type(field).__name__} instead."
        )
    if grid.ndim not in dims:
        raise InvalidParameterError(
            f"{func} draws {'/'.join(str(d) for d in dims)}D fields; this field is {grid.ndim}D. "
            f"{hint}"
        )


def _masked(values: np.ndarray) -> np.ma.MaskedArray:
    return np.ma.masked_invalid(np.asarray(values, dtype=np.float64))


def _topology_part(obj: Any, *names: str) -> Any:
    """``obj`` itself if it looks like the wanted part, else the first attribute found."""
    for name in names:
        part = getattr(obj, name, None)
        if part is not None:
            return part
    return None


def _critical_arrays(cp: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``coords, type, value, index`` of a CriticalPoints-like object or a TopologySummary."""
    if not hasattr(cp, "coords"):
        inner = _topology_part(cp, "persistent", "critical_points", "critical", "points")
        if inner is None:
            raise InvalidTypeError(
                "critical_points must be a losstopo CriticalPoints (coords, type, value) or a "
                f"TopologySummary holding one. Got {type(cp).__name__} instead."
            )
        cp = inner
    coords = np.atleast_2d(np.asarray(cp.coords, dtype=np.float64))
    types = np.asarray(cp.type, dtype=np.int64).ravel()
    values = np.asarray(cp.value, dtype=np.float64).ravel()
    index = getattr(cp, "index", None)
    return coords, types, values, None if index is None else np.asarray(index).ravel()


def topology_trees(topology: Any) -> list[Any]:
    """The merge trees of a TopologySummary (join first, then split), or ``[topology]`` if it is
    a tree itself; summaries rebuilt from JSON give their ``join_pairs``/``split_pairs``."""
    if topology is None:
        return []
    if hasattr(topology, "pair_index"):
        return [topology]
    trees = []
    for kind in ("join", "split"):
        tree = getattr(topology, f"{kind}_tree", None)
        if tree is None and getattr(topology, f"{kind}_pair_index", None) is not None:
            tree = SimpleNamespace(
                pairs=getattr(topology, f"{kind}_pairs"),
                pair_index=getattr(topology, f"{kind}_pair_index"),
                kind=kind,
            )
        if tree is not None:
            trees.append(tree)
    if not trees:
        tree = _topology_part(topology, "merge_tree", "tree")
        trees = [tree] if tree is not None else []
    return trees


def critical_persistence(index: np.ndarray | None, *trees: Any) -> np.ndarray:
    """Persistence of each critical vertex from merge trees' ``pair_index``/``pairs``.

    A vertex gets the persistence of the first pair (in tree order) it is the birth or death
    of; vertices in no pair get NaN; the essential extremum (infinite death) gets ``inf``.
    """
    if index is None:
        return np.full(0, np.nan)
    out = np.full(index.shape, np.nan)
    where: dict[int, float] = {}
    for tree in trees:
        pairs = getattr(tree, "pairs", None)
        pair_index = getattr(tree, "pair_index", None)
        if pairs is None or pair_index is None:
            continue
        pairs = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
        pair_index = np.asarray(pair_index).reshape(-1, 2)
        pers = np.abs(pairs[:, 1] - pairs[:, 0])
        for row, (b, d) in enumerate(pair_index):
            where.setdefault(int(b), float(pers[row]))
            if d >= 0:
                where.setdefault(int(d), float(pers[row]))
    for i, v in enumerate(index):
        found = where.get(int(v))
        if found is not None:
            out[i] = found
    return out


def _diagram_arrays(diagram: Any) -> list[tuple[int, np.ndarray]]:
    """``[(dimension, (n, 2) array), ...]`` from a PersistenceDiagram, mapping, list or array."""
    if isinstance(diagram, np.ndarray):
        arr = np.asarray(diagram, dtype=np.float64)
        if arr.ndim == 2 and arr.shape[1] == 2:
            return [(0, arr)]
        raise InvalidParameterError(
            f"A persistence diagram array must have shape (n, 2); got {arr.shape}. "
            "Pass a PersistenceDiagram or a list of (n, 2) arrays, one per dimension."
        )
    for attr in ("diagrams", "dgms", "dgm"):
        inner = getattr(diagram, attr, None)
        if inner is not None and not callable(inner):
            diagram = inner
            break
    items: list[tuple[int, Any]]
    if isinstance(diagram, Mapping):
        items = [(int(k), v) for k, v in diagram.items()]
    elif isinstance(diagram, Sequence) and not isinstance(diagram, str):
        items = list(enumerate(diagram))
    else:
        items = []
        for k in range(4):  # indexable by dimension
            try:
                items.append((k, diagram[k]))
            except (IndexError, KeyError):
                break
            except TypeError as exc:
                raise InvalidTypeError(
                    "plot_persistence_diagram needs a PersistenceDiagram (dgm[k] -> (n, 2)), a "
                    f"list or dict of (n, 2) arrays, or one array. Got {type(diagram).__name__}."
                ) from exc
    out = []
    for k, arr in items:
        a = np.asarray(arr, dtype=np.float64)
        out.append((k, a.reshape(-1, 2) if a.size else np.zeros((0, 2))))
    return out


def _path_colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ---------------------------------------------------------------------------------------- saving
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
    if not path.parent.resolve().is_dir():
        raise InvalidParameterError(
            f"The directory {path.parent} for {path.name} does not exist; create it first "
            f"(mkdir -p {path.parent})."
        )
    fig.savefig(path, format=fmt, dpi=dpi)
    return path


# ---------------------------------------------------------------------------------------- fields
def plot_contour(
    field: Any,
    ax: Axes | None = None,
    *,
    paths: bool = True,
    critical_points: Any = None,
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
        Markers by type (0 min, 1 saddle, 3 max). With a summary holding a merge tree, the most
        persistent points are labelled with their value and persistence.
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
    >>> g = Grid.square(resolution=21, dims=2)
    >>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    >>> p = ProjectedPath(coords=[[0.8, 0.8], [0.1, 0.0]], step=[0, 10], run="sgd")
    >>> field = LossField(x**2 + y**2, g).with_paths({"sgd": p})
    >>> fig = plot_contour(field, log=True)
    """
    _check_field(
        field, (2,), "plot_contour", "Use plot_profile for 1D fields; export 3D fields to ParaView."
    )
    levels = int(levels)
    if levels < 2:
        raise InvalidParameterError(f"The 'levels' parameter must be an int >= 2. Got {levels}.")
    fig, ax = _new_axes(ax)
    (xn, xa), (yn, ya) = field.grid.axes.items()
    X, Y = np.meshgrid(xa, ya, indexing="ij")
    V = log_loss_values(field.values) if log else field.values
    Vm = _masked(V)
    label = "log10 loss" if log else "loss"
    if Vm.count() >= 2 and float(Vm.max()) > float(Vm.min()):
        cf = ax.contourf(X, Y, Vm, levels=levels, cmap="viridis")
        ax.contour(X, Y, Vm, levels=levels, colors="k", linewidths=0.3, alpha=0.5)
        fig.colorbar(cf, ax=ax, label=label)
    else:  # constant or almost empty field: contour would fail
        im = ax.pcolormesh(X, Y, Vm, cmap="viridis", shading="auto")
        fig.colorbar(im, ax=ax, label=label)
    if paths and field.paths:
        colors = _path_colors(len(field.paths))
        for color, (name, path) in zip(colors, field.paths.items(), strict=True):
            c = np.asarray(path.coords)
            if c.shape[1] < 2 or len(c) == 0:
                continue
            run = getattr(path, "run", name)
            ax.plot(c[:, 0], c[:, 1], "-", color=color, lw=1.5, label=f"{run}")
            ax.plot(c[0, 0], c[0, 1], "o", color=color, mec="k", ms=6)
            ax.plot(c[-1, 0], c[-1, 1], "*", color=color, mec="k", ms=11)
    if critical_points is not None:
        _draw_critical_points(ax, critical_points)
    ax.set_xlabel(xn)
    ax.set_ylabel(yn)
    ax.set_xlim(xa[0], xa[-1])
    ax.set_ylim(ya[0], ya[-1])
    if title is not None:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small", framealpha=0.8)
    return fig


def _draw_critical_points(ax: Axes, critical_points: Any) -> None:
    coords, types, values, index = _critical_arrays(critical_points)
    trees = topology_trees(critical_points) if not hasattr(critical_points, "coords") else []
    pers = critical_persistence(index, *trees) if index is not None else np.full(len(types), np.nan)
    if coords.shape[1] < 2:
        raise InvalidParameterError(
            f"Critical points have {coords.shape[1]}D coordinates; plot_contour needs 2D ones."
        )
    for t, (marker, color, name) in TYPE_STYLE.items():
        sel = types == t
        if sel.any():
            ax.scatter(
                coords[sel, 0], coords[sel, 1], marker=marker, c=color, s=60,
                edgecolors="white", linewidths=0.8, zorder=5, label=f"{name} ({int(sel.sum())})",
            )  # fmt: skip
    known = np.flatnonzero(~np.isnan(pers))
    order = known[np.argsort(-np.nan_to_num(pers[known], posinf=np.finfo(float).max))]
    for i in order[:MAX_LABELS]:
        p = pers[i]
        text = f"{values[i]:.3g} (p={'inf' if math.isinf(p) else f'{p:.2g}'})"
        ax.annotate(
            text, (coords[i, 0], coords[i, 1]), xytext=(4, 4), textcoords="offset points",
            fontsize=7, color="white", zorder=6,
            bbox={"boxstyle": "round,pad=0.15", "fc": "black", "alpha": 0.5, "lw": 0},
        )  # fmt: skip


def plot_surface(
    field: Any, ax: Axes | None = None, *, log: bool = False, title: str | None = None
) -> Figure:
    """3D surface of a 2D field, with its trajectories at their loss height when they have losses.

    Examples
    --------
    >>> import numpy as np
    >>> from losstopo import Grid, LossField
    >>> g = Grid.square(resolution=15, dims=2)
    >>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    >>> fig = plot_surface(LossField(x**2 - y**2, g))
    """
    _check_field(
        field, (2,), "plot_surface", "Use plot_profile for 1D fields; export 3D fields to ParaView."
    )
    fig, ax = _new_axes(ax, projection="3d")
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
    colors = _path_colors(max(len(field.paths), 1))
    for color, (name, path) in zip(colors, field.paths.items(), strict=False):
        if path.loss is None or np.asarray(path.coords).shape[1] < 2:
            continue
        c = np.asarray(path.coords)
        z = log_loss_values(path.loss) if log else np.asarray(path.loss)
        ax.plot(
            c[:, 0], c[:, 1], z, "-o", color=color, ms=2, lw=1.5, label=getattr(path, "run", name)
        )
    ax.set_xlabel(xn)
    ax.set_ylabel(yn)
    ax.set_zlabel("log10 loss" if log else "loss")  # type: ignore[attr-defined]
    if title is not None:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_profile(
    field: Any,
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
    >>> g = Grid.square(resolution=31, dims=1)
    >>> x = g.axes["x"]
    >>> f = LossField(x**2, g, metrics={"test_loss": x**2 + 0.1, "accuracy": 1 - x**2 / 2})
    >>> fig = plot_profile(f)
    >>> len(fig.axes)
    2
    """
    _check_field(field, (1,), "plot_profile", "Use plot_contour or plot_surface for 2D fields.")
    names = list(field.metrics) if metrics is None else [str(m) for m in metrics]
    missing = [m for m in names if m not in field.metrics]
    if missing:
        raise InvalidParameterError(
            f"Metric(s) {missing} are not in this field; it has {sorted(field.metrics)}. "
            "Pass names from field.metrics."
        )
    fig, ax = _new_axes(ax)
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
    ax.set_xlabel(xn)
    ax.set_ylabel("loss")
    ax.set_xlim(xa[0], xa[-1])
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, loc="best", fontsize="small")
    if title is not None:
        ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------------------- topology
def plot_persistence_diagram(diagram: Any, ax: Axes | None = None) -> Figure:
    """Persistence diagram: one colour per homology dimension, essential classes on a top line.

    >>> import numpy as np
    >>> fig = plot_persistence_diagram([np.array([[0.0, np.inf], [0.2, 0.5]]), np.zeros((0, 2))])
    """
    dgms = _diagram_arrays(diagram)
    fig, ax = _new_axes(ax)
    allv = np.concatenate([d.ravel() for _, d in dgms]) if dgms else np.zeros(0)
    finite = allv[np.isfinite(allv)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    top = hi + 0.1 * span
    ax.plot([lo - 0.05 * span, top], [lo - 0.05 * span, top], "k-", lw=0.8, alpha=0.6)
    ax.axhline(top, color="grey", ls="--", lw=0.8)
    ax.annotate("∞", (lo - 0.04 * span, top), va="bottom", fontsize=9, color="grey")
    for k, d in dgms:
        if len(d) == 0:
            continue
        inf = ~np.isfinite(d[:, 1])
        deaths = np.where(inf, top, d[:, 1])
        ax.scatter(d[:, 0], deaths, s=22, color=f"C{k}", alpha=0.85, edgecolors="k",
                   linewidths=0.3, label=f"H{k} ({len(d)})")  # fmt: skip
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("persistence diagram")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_barcode(diagram: Any, ax: Axes | None = None) -> Figure:
    """Persistence barcode: one horizontal bar per pair, grouped by dimension, longest first.

    >>> import numpy as np
    >>> fig = plot_barcode(np.array([[0.0, np.inf], [0.2, 0.5]]))
    """
    dgms = _diagram_arrays(diagram)
    fig, ax = _new_axes(ax)
    allv = np.concatenate([d.ravel() for _, d in dgms]) if dgms else np.zeros(0)
    finite = allv[np.isfinite(allv)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    top = hi + 0.1 * (hi - lo if hi > lo else 1.0)
    row = 0
    for k, d in dgms:
        if len(d) == 0:
            continue
        deaths = np.where(np.isfinite(d[:, 1]), d[:, 1], top)
        order = np.lexsort((d[:, 0], -(deaths - d[:, 0])))
        ys = row + np.arange(len(d))
        ax.hlines(ys, d[order, 0], deaths[order], color=f"C{k}", lw=2, label=f"H{k} ({len(d)})")
        inf = ~np.isfinite(d[order, 1])
        if inf.any():
            ax.plot(deaths[order][inf], ys[inf], ">", color=f"C{k}", ms=5)
        row += len(d) + 1
    ax.set_xlabel("value")
    ax.set_yticks([])
    ax.set_title("barcode")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    if row:
        ax.set_ylim(row - 0.5, -1)
    return fig


def _tree_branches(tree: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Branch decomposition from the elder rule: ``(birth, death, parent)`` per branch.

    Branch 0 is the essential one. A finite branch's parent is the branch alive at its death
    value with the lowest birth among the older ones (the elder rule's survivor) when the tree
    gives no explicit parent; that is exact for the two-branch merges most landscapes show and a
    readable layout otherwise.
    """
    pairs = getattr(tree, "pairs", None)
    if pairs is None:
        raise InvalidTypeError(
            "plot_merge_tree needs a losstopo MergeTree (with 'pairs'); got "
            f"{type(tree).__name__}. Compute one with losstopo.topology.merge_tree(field)."
        )
    p = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    branches = getattr(tree, "branches", None)
    if branches is not None and np.shape(branches) == (len(p), 3):
        return p[:, 0], p[:, 1], np.asarray(branches)[:, 2].astype(np.int64)
    ess = ~np.isfinite(p[:, 1])
    if not ess.any():  # some implementations store the essential pair with death = max value
        ess = np.zeros(len(p), bool)
        if len(p):
            ess[int(np.argmin(p[:, 0]))] = True
    order = np.concatenate(
        [np.flatnonzero(ess), np.flatnonzero(~ess)[np.argsort(-np.abs(p[~ess, 1] - p[~ess, 0]))]]
    )
    p = p[order]
    parent = np.full(len(p), -1)
    for i in range(1, len(p)):
        b, d = p[i]
        alive = [j for j in range(i) if p[j, 0] <= b and (p[j, 1] >= d or not np.isfinite(p[j, 1]))]
        alive = alive or [0]
        parent[i] = min(alive, key=lambda j: p[j, 0])
    return p[:, 0], p[:, 1], parent


def plot_merge_tree(tree: Any, ax: Axes | None = None) -> Figure:
    """Merge tree drawn as its branch decomposition, node heights equal to values.

    Each minimum is a leaf at its value; a vertical branch rises to the saddle where it merges
    into an older branch (a horizontal link at the saddle value). The essential branch rises to
    the top of the plot. ``tree.branches`` (extremum, saddle, parent branch) gives the parents
    when present; otherwise they are inferred from ``pairs`` by the elder rule. A split tree
    (``kind="split"``) is drawn the same way with maxima as leaves and branches going down.
    A :class:`~losstopo.topology.TopologySummary` is accepted (its join tree is drawn).

    >>> import numpy as np
    >>> class T:
    ...     pairs = np.array([[0.0, np.inf], [0.3, 0.8], [0.5, 0.7]])
    >>> fig = plot_merge_tree(T())
    """
    if not hasattr(tree, "pairs"):
        trees = topology_trees(tree)
        tree = trees[0] if trees else tree
    births, deaths, parent = _tree_branches(tree)
    fig, ax = _new_axes(ax)
    if len(births) == 0:
        ax.set_title("merge tree (empty)")
        return fig
    finite = np.concatenate([births, deaths[np.isfinite(deaths)]])
    lo, hi = float(finite.min()), float(finite.max())
    pad = 0.1 * (hi - lo if hi > lo else 1.0)
    deaths = np.where(
        np.isposinf(deaths), hi + pad, np.where(np.isneginf(deaths), lo - pad, deaths)
    )
    split = getattr(tree, "kind", "join") == "split"
    # x layout: children placed around their parent, recursively (depth-first order)
    children: dict[int, list[int]] = {}
    for i, par in enumerate(parent):
        if par >= 0:
            children.setdefault(int(par), []).append(i)
    xs = np.zeros(len(births))
    counter = [0]

    def place(i: int) -> None:
        kids = sorted(children.get(i, []), key=lambda j: deaths[j] if split else -deaths[j])
        half = len(kids) // 2
        for j in kids[:half]:
            place(j)
        xs[i] = counter[0]
        counter[0] += 1
        for j in kids[half:]:
            place(j)

    for root in np.flatnonzero(parent < 0):
        place(int(root))
    for i in range(len(births)):
        ax.plot([xs[i], xs[i]], [births[i], deaths[i]], "-", color="C0", lw=1.8)
        if parent[i] >= 0:
            ax.plot([xs[i], xs[parent[i]]], [deaths[i], deaths[i]], "-", color="C0", lw=1.2)
            ax.plot(xs[parent[i]], deaths[i], "o", color=TYPE_STYLE[1][1], ms=5, zorder=4)
    marker, color, name = TYPE_STYLE[3 if split else 0]
    ax.scatter(xs, births, marker=marker, c=color, s=40, zorder=5, label=name)
    ax.plot([], [], "o", color=TYPE_STYLE[1][1], ms=5, label="saddle")
    ax.set_xticks([])
    ax.set_ylabel("value")
    leaves = "maxima" if split else "minima"
    ax.set_title(f"{'split' if split else 'merge'} tree ({len(births)} {leaves})")
    ax.legend(loc="upper right", fontsize="small")
    return fig


# Bar charts and curves (projector fidelity, connectivity barriers) live in plot_charts; they are
# part of this module's public names.
from .plot_charts import plot_barrier, plot_fidelity  # noqa: E402

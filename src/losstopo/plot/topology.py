"""Figures of topology results: persistence diagrams, barcodes and merge trees.

They take the result classes of :mod:`losstopo.topology` (a :class:`TopologySummary` stands for
its diagram or its join tree), nothing else.

Examples
--------
>>> import numpy as np
>>> from losstopo.topology import analyze
>>> x = np.linspace(-2, 2, 41)
>>> topo = analyze((x**2 - 1) ** 2, min_persistence=0.1)
>>> plot_merge_tree(topo).axes[0].get_title()
'merge tree (2 minima)'
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import InvalidParameterError, InvalidTypeError
from ..topology import MergeTree, PersistenceDiagram, TopologySummary
from .axes import TYPE_STYLE, new_axes

__all__ = ["plot_barcode", "plot_merge_tree", "plot_persistence_diagram"]


def _diagram(diagram: PersistenceDiagram | TopologySummary, func: str) -> PersistenceDiagram:
    if isinstance(diagram, TopologySummary):
        return diagram.diagram
    if not isinstance(diagram, PersistenceDiagram):
        raise InvalidTypeError(
            f"{func} needs a losstopo PersistenceDiagram or TopologySummary (from "
            f"losstopo.topology); got {type(diagram).__name__}."
        )
    return diagram


def _top(dgm: PersistenceDiagram) -> tuple[float, float, float]:
    """``(lo, hi, top)``: the finite range of the diagram and the height of infinite deaths."""
    allv = np.concatenate([d.ravel() for _, d in dgm.items()]) if len(dgm) else np.zeros(0)
    finite = allv[np.isfinite(allv)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return lo, hi, hi + 0.1 * (hi - lo if hi > lo else 1.0)


def plot_persistence_diagram(
    diagram: PersistenceDiagram | TopologySummary, ax: Axes | None = None
) -> Figure:
    """Persistence diagram: one colour per homology dimension, infinite deaths on a top line.

    >>> import numpy as np
    >>> from losstopo.topology import persistence_diagram
    >>> fig = plot_persistence_diagram(persistence_diagram(np.random.default_rng(0).random((8, 8))))
    >>> fig.axes[0].get_legend_handles_labels()[1]
    ['H0 (12)', 'H1 (8)']
    """
    dgm = _diagram(diagram, "plot_persistence_diagram")
    fig, ax = new_axes(ax)
    lo, hi, top = _top(dgm)
    span = hi - lo if hi > lo else 1.0
    ax.plot([lo - 0.05 * span, top], [lo - 0.05 * span, top], "k-", lw=0.8, alpha=0.6)
    ax.axhline(top, color="grey", ls="--", lw=0.8)
    ax.annotate("∞", (lo - 0.04 * span, top), va="bottom", fontsize=9, color="grey")
    for k, d in dgm.items():
        if len(d) == 0:
            continue
        deaths = np.where(np.isfinite(d[:, 1]), d[:, 1], top)
        ax.scatter(d[:, 0], deaths, s=22, color=f"C{k}", alpha=0.85, edgecolors="k",
                   linewidths=0.3, label=f"H{k} ({len(d)})")  # fmt: skip
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("persistence diagram")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_barcode(diagram: PersistenceDiagram | TopologySummary, ax: Axes | None = None) -> Figure:
    """Persistence barcode: one horizontal bar per pair, grouped by dimension, longest first.

    >>> import numpy as np
    >>> from losstopo.topology import persistence_diagram
    >>> fig = plot_barcode(persistence_diagram(np.array([0.0, 2.0, 1.0, 3.0])))
    >>> [c.get_segments()[0][:, 0].tolist() for c in fig.axes[0].collections]
    [[0.0, 2.2]]
    """
    dgm = _diagram(diagram, "plot_barcode")
    fig, ax = new_axes(ax)
    _, _, top = _top(dgm)
    row = 0
    for k, d in dgm.items():
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


def _tree(tree: MergeTree | TopologySummary) -> MergeTree:
    if isinstance(tree, TopologySummary):
        if tree.join_tree is None:
            raise InvalidParameterError(
                "This TopologySummary holds no merge tree (it was written by losstopo 0.1); "
                "recompute it with losstopo.topology.analyze(field)."
            )
        return tree.join_tree
    if not isinstance(tree, MergeTree):
        raise InvalidTypeError(
            "plot_merge_tree needs a losstopo MergeTree or TopologySummary; got "
            f"{type(tree).__name__}. Compute one with losstopo.topology.merge_tree(field)."
        )
    return tree


def plot_merge_tree(tree: MergeTree | TopologySummary, ax: Axes | None = None) -> Figure:
    """Merge tree drawn as its branch decomposition, node heights equal to values.

    Each extremum is a leaf at its value; a vertical branch runs to the saddle where it merges
    into its parent branch (``tree.branches``), with a horizontal link at the saddle value. The
    essential branch runs to the edge of the plot. A split tree (``kind="split"``) is drawn the
    same way with maxima as leaves and branches going down. A
    :class:`~losstopo.topology.TopologySummary` stands for its join tree.

    >>> import numpy as np
    >>> from losstopo.topology import merge_tree
    >>> fig = plot_merge_tree(merge_tree(np.array([0.0, 0.8, 0.3, 0.7, 0.5, 1.0])))
    >>> fig.axes[0].get_title()
    'merge tree (3 minima)'
    """
    t = _tree(tree)
    births, deaths = t.pairs[:, 0].copy(), t.pairs[:, 1].copy()
    parent = t.branches[:, 2]
    fig, ax = new_axes(ax)
    if len(births) == 0:
        ax.set_title("merge tree (empty)")
        return fig
    finite = np.concatenate([births, deaths[np.isfinite(deaths)]])
    lo, hi = float(finite.min()), float(finite.max())
    pad = 0.1 * (hi - lo if hi > lo else 1.0)
    deaths = np.where(
        np.isposinf(deaths), hi + pad, np.where(np.isneginf(deaths), lo - pad, deaths)
    )
    split = t.kind == "split"
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
    n = len(births)
    leaves = ("maximum" if n == 1 else "maxima") if split else ("minimum" if n == 1 else "minima")
    ax.set_title(f"{'split' if split else 'merge'} tree ({n} {leaves})")
    if n == 1:  # one extremum: one basin, nothing merges; say so rather than draw a bare stub
        ax.set_xlim(-1.0, 1.0)
        ax.annotate(
            f"one {leaves} at {births[0]:.4g}: a single {'peak' if split else 'basin'}, "
            "nothing merges",
            (xs[0], births[0]), xytext=(8, 0), textcoords="offset points", va="center",
            fontsize="small",
        )  # fmt: skip
    ax.legend(loc="upper right", fontsize="small")
    return fig

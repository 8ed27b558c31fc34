"""Figures of a comparison across landscapes: a distance heatmap and small multiples.

Examples
--------
>>> from losstopo import compare
>>> from losstopo.testing import analytic_field
>>> fields = [analytic_field("double_well", 21), analytic_field("double_well", 21)]
>>> c = compare(fields, labels=["a", "b"])
>>> plot_distance_heatmap(c).axes[0].get_title()
'Bottleneck distance between persistence diagrams'
>>> len(plot_small_multiples(fields, c.labels).axes)  # two panels and one colour bar
3
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..errors import InvalidParameterError, InvalidTypeError
from ..field import LossField
from .axes import TYPE_STYLE, axis_label, masked

__all__ = ["plot_distance_heatmap", "plot_small_multiples"]


def plot_distance_heatmap(comparison: Any, kind: str = "bottleneck") -> Figure:
    """The ``kind`` (``"bottleneck"`` or ``"wasserstein"``) distance matrix of a
    :class:`~losstopo.Comparison` as an annotated heatmap."""
    if kind not in ("bottleneck", "wasserstein"):
        raise InvalidParameterError(f"kind must be 'bottleneck' or 'wasserstein'; got {kind!r}.")
    m = np.asarray(getattr(comparison, kind), dtype=np.float64)
    labels = list(comparison.labels)
    n = len(labels)
    side = max(3.5, 0.9 * n + 2.0)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap="magma_r", vmin=0.0)
    fig.colorbar(im, ax=ax, label=f"{kind} distance")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    finite = m[np.isfinite(m)]
    top = float(finite.max()) if finite.size else 0.0
    if n <= 12:
        for i in range(n):
            for j in range(n):
                v = m[i, j]
                dark = np.isfinite(v) and top > 0 and v > 0.6 * top
                ax.text(
                    j, i, f"{v:.3g}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black",
                )  # fmt: skip
    ax.set_title(f"{kind.capitalize()} distance between persistence diagrams")
    return fig


def plot_small_multiples(
    fields: Sequence[LossField],
    labels: Sequence[str] | None = None,
    *,
    summaries: Sequence[Any] | None = None,
    log: bool | None = None,
    levels: int = 20,
    columns: int | None = None,
) -> Figure:
    """One panel per landscape on one shared colour scale (filled contours for 2D fields,
    profiles on a shared axis for 1D fields, the middle slice of the last axis for 3D fields).

    Parameters
    ----------
    fields : LossFields of one dimension.
    labels : panel titles (default ``landscape1``, ...).
    summaries : TopologySummaries to mark each panel's persistent minima with.
    log : colour by ``log10`` of the loss; default when every finite loss is positive.
    levels : contour levels, shared by all panels.
    columns : panels per row (default: about square).
    """
    fields = list(fields)
    if not fields or not all(isinstance(f, LossField) for f in fields):
        raise InvalidTypeError("plot_small_multiples needs a non-empty list of LossFields.")
    ndims = {f.grid.ndim for f in fields}
    if len(ndims) != 1:
        raise InvalidParameterError(
            f"plot_small_multiples draws fields of one dimension; got {sorted(ndims)}D fields."
        )
    labels = (
        list(labels) if labels is not None else [f"landscape{i + 1}" for i in range(len(fields))]
    )
    if len(labels) != len(fields):
        raise InvalidParameterError(
            f"Got {len(labels)} labels for {len(fields)} fields; give one label per field."
        )
    values = [_panel_values(f) for f in fields]
    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in values] or [np.zeros(0)])
    if log is None:
        log = bool(finite.size) and bool(finite.min() > 0)
    if log:
        if finite.size and finite.min() <= 0:
            raise InvalidParameterError(
                "log=True needs positive losses in every field; pass log=False."
            )
        values = [np.where(np.isfinite(v) & (v > 0), np.log10(np.where(v > 0, v, 1.0)), np.nan)
                  for v in values]  # fmt: skip
        finite = np.log10(finite) if finite.size else finite
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    ncol = columns or math.ceil(math.sqrt(len(fields)))
    nrow = math.ceil(len(fields) / ncol)
    fig = Figure(figsize=(3.4 * ncol + 1.0, 3.0 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    bounds = np.linspace(lo, hi, max(int(levels), 2) + 1)
    label = "log10 loss" if log else "loss"
    mappable = None
    for k, (f, v, ax) in enumerate(zip(fields, values, axes.ravel(), strict=False)):
        axes_vals = list(f.grid.axes.values())
        if f.grid.ndim == 1:
            ax.plot(axes_vals[0], v, color="#1f77b4")
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
            ax.set_ylabel(label)
        else:
            X, Y = np.meshgrid(axes_vals[0], axes_vals[1], indexing="ij")
            vm = masked(v)
            if vm.count() >= 2 and float(vm.max()) > float(vm.min()):
                mappable = ax.contourf(X, Y, vm, levels=bounds, cmap="viridis", extend="both")
            else:
                mappable = ax.pcolormesh(X, Y, vm, cmap="viridis", vmin=lo, vmax=hi)
            ax.set_ylabel(axis_label(f, 1), fontsize=8)
            if summaries is not None and f.grid.ndim == 2:
                _mark_minima(ax, summaries[k])
        ax.set_xlabel(axis_label(f, 0), fontsize=8)
        title = labels[k] + (" (middle slice)" if f.grid.ndim == 3 else "")
        ax.set_title(title, fontsize=10)
    for ax in axes.ravel()[len(fields) :]:
        ax.set_visible(False)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), label=f"{label} (shared scale)")
    return fig


def _panel_values(field: LossField) -> np.ndarray:
    v = np.asarray(field.values, dtype=np.float64)
    if v.ndim == 3:
        v = v[:, :, v.shape[2] // 2]
    return np.where(np.isfinite(v), v, np.nan)


def _mark_minima(ax: Any, summary: Any) -> None:
    cp = summary.persistent
    sel = cp.type == 0
    if sel.any():
        marker, color, _ = TYPE_STYLE[0]
        ax.scatter(cp.coords[sel, 0], cp.coords[sel, 1], marker=marker, c=color, s=30,
                   edgecolors="white", linewidths=0.6, zorder=5)  # fmt: skip

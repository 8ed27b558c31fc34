"""Bar charts and curves: projector fidelity and loss barriers.

Examples
--------
>>> from losstopo.plot import plot_fidelity
>>> fig = plot_fidelity({"pca": {"projection_error": 0.1}, "autoencoder": {"projection_error": 0.0}})
>>> fig.axes[0].get_yscale()
'linear'
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import InvalidParameterError, InvalidTypeError
from .axes import new_axes

__all__ = ["plot_barrier", "plot_fidelity"]


def _fidelity_rows(table: Any) -> tuple[list[str], list[str], np.ndarray]:
    rows: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(table, Mapping):
        for name, entry in table.items():
            if not isinstance(entry, Mapping):
                raise InvalidTypeError(
                    f"plot_fidelity: the entry for {name!r} must be a dict of metric -> value; "
                    f"got {type(entry).__name__}."
                )
            rows.append((str(name), entry))
    elif isinstance(table, Iterable) and not isinstance(table, (str, bytes)):
        for i, row in enumerate(table):
            if not isinstance(row, Mapping):
                raise InvalidTypeError(
                    "plot_fidelity: rows must be dicts like {'projector': 'pca', 'loss_error': 0.1}; "
                    f"row {i} is a {type(row).__name__}."
                )
            name = row.get("projector", row.get("name", f"row {i}"))
            rows.append(
                (str(name), {k: v for k, v in row.items() if k not in ("projector", "name")})
            )
    else:
        raise InvalidTypeError(
            "plot_fidelity needs a dict projector -> {metric: value} or a list of row dicts; "
            f"got {type(table).__name__}."
        )
    metrics: list[str] = []
    for _, m in rows:
        for k, v in m.items():
            try:
                float(v)
            except (TypeError, ValueError):
                continue
            if k not in metrics:
                metrics.append(str(k))
    vals = np.full((len(rows), len(metrics)), np.nan)
    for i, (_, m) in enumerate(rows):
        for j, k in enumerate(metrics):
            try:
                vals[i, j] = float(m[k])
            except (KeyError, TypeError, ValueError):
                pass
    return [r[0] for r in rows], metrics, vals


def plot_fidelity(table: Any, ax: Axes | None = None) -> Figure:
    """Grouped bar chart of projector fidelity: one group per metric, one bar per projector.

    Accepts ``{"pca": {"projection_error": 0.1, "loss_error": 0.02}, ...}`` or a list of rows
    ``[{"projector": "pca", "projection_error": 0.1, ...}, ...]`` (as read from a CSV);
    non-numeric columns are ignored. When the positive values span over 3 decades the axis is
    logarithmic and an exact zero is drawn as a stub at the bottom, labelled ``0``.

    >>> fig = plot_fidelity({"pca": {"loss_error": 0.1}, "ae": {"loss_error": 1e-9}})
    >>> fig.axes[0].get_yscale()
    'log'
    """
    names, metrics, vals = _fidelity_rows(table)
    fig, ax = new_axes(ax, figsize=(8.0, 4.8))
    if not names or not metrics:
        ax.set_title("projector fidelity (no numeric values)")
        return fig
    finite = vals[np.isfinite(vals)]
    pos = finite[finite > 0]
    log = bool(pos.size and pos.max() / pos.min() > 1e3 and np.all(finite >= 0))
    floor = float(pos.min()) / 10 if log else 0.0
    width = 0.8 / len(names)
    x = np.arange(len(metrics))
    for i, name in enumerate(names):
        row = vals[i]
        heights = np.where(np.isfinite(row), np.maximum(row, floor), np.nan)
        bars = ax.bar(
            x + (i - (len(names) - 1) / 2) * width,
            np.nan_to_num(heights, nan=floor),
            width,
            bottom=floor if log else 0.0,
            label=name,
        )
        labels = ["" if not np.isfinite(v) else "0" if v == 0 else f"{v:.2g}" for v in row]
        ax.bar_label(bars, labels=labels, fontsize=7)
    if log:
        ax.set_yscale("log")
    ticks = ["\n".join(textwrap.wrap(m.replace("_", " "), 16)) for m in metrics]
    ax.set_xticks(x, ticks, fontsize=8)
    ax.set_ylabel("value" + (" (log scale)" if log else ""))
    ax.set_title("projector fidelity")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _curves(losses: Any) -> list[np.ndarray]:
    try:
        arr = np.asarray(losses, dtype=np.float64)
    except (TypeError, ValueError):  # ragged list of curves
        return [np.asarray(c, dtype=np.float64).ravel() for c in losses]
    if arr.ndim > 2 or arr.size == 0:
        raise InvalidParameterError(
            f"plot_barrier needs one curve (n,) or several (k, n); got shape {arr.shape}."
        )
    return list(np.atleast_2d(arr))


def _profiles(obj: Any) -> list[tuple[str, Any]] | None:
    """``(label, PathProfile)`` pairs when ``obj`` is a profile, a list or a dict of them."""
    from ..connectivity import PathProfile

    if isinstance(obj, PathProfile):
        return [(obj.kind, obj)]
    if isinstance(obj, Mapping) and obj and all(isinstance(v, PathProfile) for v in obj.values()):
        return [(str(k), v) for k, v in obj.items()]
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(v, PathProfile) for v in obj):
        return [(v.kind, v) for v in obj]
    return None


def plot_barrier(
    t: Any, losses: Any = None, ax: Axes | None = None, labels: Sequence[str] | None = None
) -> Figure:
    """Loss along interpolation/connectivity curves, with each curve's barrier height marked.

    ``losses`` is one curve (n,) or several (k, n) / a list of (n,) arrays sampled at ``t``. The
    barrier is the largest excess over the straight line between the curve's end values. Or give
    :class:`~losstopo.connectivity.PathProfile` objects as ``t`` alone (one, a list, or a dict
    label -> profile), each drawn at its own ``t``.

    >>> import numpy as np
    >>> t = np.linspace(0, 1, 11)
    >>> fig = plot_barrier(t, [1 + np.sin(np.pi * t), 1 + 0 * t], labels=["linear", "bezier"])
    >>> from losstopo.connectivity import PathProfile
    >>> fig = plot_barrier({"linear": PathProfile.from_values(t, 1 + np.sin(np.pi * t))})
    """
    profiles = _profiles(t) if losses is None else None
    if profiles is not None:
        pairs = [(np.asarray(p.t, dtype=np.float64), np.asarray(p.loss)) for _, p in profiles]
        labels = labels if labels is not None else [name for name, _ in profiles]
    elif losses is None:
        raise InvalidTypeError(
            "plot_barrier needs t and losses, or PathProfile objects (one, a list or a dict) as "
            f"its first argument; got {type(t).__name__} alone."
        )
    else:
        tt = np.asarray(t, dtype=np.float64).ravel()
        pairs = [(tt, c) for c in _curves(losses)]
    for i, (tt, c) in enumerate(pairs):
        if c.size != tt.size:
            raise InvalidParameterError(
                f"plot_barrier: curve {i} has {c.size} losses for {tt.size} values of t; "
                "sample every curve at the same t."
            )
    curves = [c for _, c in pairs]
    if labels is not None and len(labels) != len(curves):
        raise InvalidParameterError(
            f"plot_barrier got {len(labels)} labels for {len(curves)} curves; give one per curve."
        )
    fig, ax = new_axes(ax)
    for i, (tt, c) in enumerate(pairs):
        name = labels[i] if labels is not None else f"curve {i}"
        line = ax.plot(tt, c, "-", lw=1.8, label=name)[0]
        if tt.size >= 2 and np.isfinite(c[[0, -1]]).all():
            base = c[0] + (c[-1] - c[0]) * (tt - tt[0]) / (tt[-1] - tt[0])
            excess = np.where(np.isfinite(c), c - base, -np.inf)
            j = int(np.argmax(excess))
            if excess[j] > 0:
                ax.vlines(tt[j], base[j], c[j], colors=line.get_color(), linestyles=":", lw=1.2)
                ax.annotate(f"barrier {excess[j]:.3g}", (tt[j], c[j]), xytext=(3, 4),
                            textcoords="offset points", fontsize=8, color=line.get_color())  # fmt: skip
    ax.set_xlabel("t")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.set_title("loss barrier")
    ax.legend(fontsize="small")
    return fig

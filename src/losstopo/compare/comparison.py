"""`compare`: one row of basin metrics per landscape, and the distances between their diagrams.

Examples
--------
>>> from losstopo.testing import analytic_field
>>> c = compare([analytic_field("bowl"), analytic_field("double_well")], labels=["bowl", "dw"],
...             force=True)  # other extents: refused without force
>>> [int(n) for n in c["n_minima"]]
[1, 2]
>>> c.bottleneck.shape
(2, 2)
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import InvalidParameterError, InvalidTypeError, validate_float
from ..topology import TopologySummary, analyze, bottleneck_distance, wasserstein_distance
from .checks import check_comparable, provenance
from .metrics import basin_metrics

__all__ = ["COLUMNS", "HESSIAN_KEY", "Comparison", "compare", "format_number"]

#: Where a field's ``attrs`` hold the Hessian at its centre: ``{"top_eigenvalue": ..., "trace": ...}``.
HESSIAN_KEY = "hessian_at_centre"

#: Column descriptions, in table order (optional columns appear when some landscape has them).
COLUMNS: dict[str, str] = {
    "n_minima": "persistent minima",
    "centre_depth": "depth of the centre's basin",
    "centre_size": "share of the domain in the centre's basin",
    "centre_flatness": "flatness of the centre's basin",
    "total_persistence": "sum of the finite persistences of the minima",
    "smad": "Landscaper's saddle-minimum average distance",
    "smad_normalized": "the same, gaps divided by the value range",
    "mean_elder_persistence": "mean elder-rule persistence of the non-global minima",
    "nonfinite_fraction": "fraction of non-finite points",
    "min_loss": "lowest finite loss",
    "centre_loss": "loss at the centre",
    "hessian_top_eigenvalue": "largest Hessian eigenvalue at the centre",
    "hessian_trace": "Hessian trace at the centre",
    "verified_fraction": "separations confirmed in the full space",
    "artifact_minima": "persistent minima that are not basins of the network (full-space check)",
}
OPTIONAL = ("hessian_top_eigenvalue", "hessian_trace", "verified_fraction", "artifact_minima")


@dataclass(frozen=True, eq=False)
class Comparison:
    """Basin metrics of several landscapes side by side, and their diagram distances.

    Attributes
    ----------
    labels : one name per landscape (unique).
    table : column name -> (n,) float array; the columns of :data:`COLUMNS` that apply (the
        Hessian and verification columns only when some landscape carries those results; NaN
        for the others).
    bottleneck, wasserstein : (n, n) distances between the persistence diagrams (all homology
        dimensions: the maximum over dimensions for the bottleneck distance, ``(sum_k W_k^p)^(1/p)``
        for the ``order``-Wasserstein distance, both with the L-infinity ground metric of gudhi).
    summaries : the :class:`~losstopo.TopologySummary` of each landscape.
    attrs : settings (``min_persistence``, ``relative``, ``connectivity``, ``order``, ``force``),
        each landscape's provenance, ``notes``, and the losstopo version.
    """

    labels: tuple[str, ...]
    table: dict[str, np.ndarray]
    bottleneck: np.ndarray
    wasserstein: np.ndarray
    summaries: tuple[TopologySummary, ...]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, column: str) -> np.ndarray:
        if column not in self.table:
            raise InvalidParameterError(
                f"Unknown comparison column {column!r}; choose one of {', '.join(self.table)}."
            )
        return self.table[column]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.table)

    def to_frame(self) -> Any:
        """A pandas DataFrame indexed by label (a numpy structured array without pandas)."""
        try:
            import pandas as pd
        except ImportError:
            dtype = [("label", f"U{max(len(s) for s in self.labels)}")]
            dtype += [(c, "f8") for c in self.table]
            out = np.zeros(len(self), dtype=dtype)
            out["label"] = self.labels
            for c, v in self.table.items():
                out[c] = v
            return out
        frame = pd.DataFrame(dict(self.table), index=pd.Index(self.labels, name="label"))
        return frame

    def distance_frame(self, kind: str = "bottleneck") -> Any:
        """The ``bottleneck`` or ``wasserstein`` matrix as a labelled DataFrame (or the array)."""
        if kind not in ("bottleneck", "wasserstein"):
            raise InvalidParameterError(
                f"kind must be 'bottleneck' or 'wasserstein'; got {kind!r}."
            )
        m = getattr(self, kind)
        try:
            import pandas as pd
        except ImportError:
            return m
        return pd.DataFrame(m, index=list(self.labels), columns=list(self.labels))

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """The table as CSV (one row per landscape, ``label`` first); written to ``path`` if
        given. Numbers are written with 10 significant digits, NaN as ``nan``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["label", *self.table])
        for i, label in enumerate(self.labels):
            w.writerow([label, *(format_number(v[i], 10) for v in self.table.values())])
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def distances_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """Both distance matrices as long CSV: ``a,b,bottleneck,wasserstein``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["a", "b", "bottleneck", "wasserstein"])
        for i, a in enumerate(self.labels):
            for j, b in enumerate(self.labels):
                w.writerow(
                    [
                        a,
                        b,
                        format_number(self.bottleneck[i, j], 10),
                        format_number(self.wasserstein[i, j], 10),
                    ]
                )
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_markdown(self, digits: int = 4, distances: bool = True) -> str:
        """A Markdown table of the metrics (``digits`` significant digits), then the bottleneck
        and Wasserstein matrices, and a legend of the columns.

        >>> from losstopo.testing import analytic_field
        >>> fields = [analytic_field("bowl", 21), analytic_field("double_well", 21)]
        >>> c = compare(fields, force=True)
        >>> print(c.to_markdown().splitlines()[0][:39])
        | landscape | n_minima | centre_depth |
        """
        lines = [
            "| landscape | " + " | ".join(self.table) + " |",
            "| --- | " + " | ".join("---:" for _ in self.table) + " |",
        ]
        for i, label in enumerate(self.labels):
            cells = [format_number(v[i], digits) for v in self.table.values()]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if distances:
            for kind in ("bottleneck", "wasserstein"):
                m = getattr(self, kind)
                lines += ["", f"{kind.capitalize()} distance between the persistence diagrams:", ""]
                lines.append("| | " + " | ".join(self.labels) + " |")
                lines.append("| --- | " + " | ".join("---:" for _ in self.labels) + " |")
                for i, label in enumerate(self.labels):
                    lines.append(
                        f"| {label} | " + " | ".join(format_number(x, digits) for x in m[i]) + " |"
                    )
        lines += [""] + [f"- `{c}`: {COLUMNS[c]}" for c in self.table]
        thr = self.attrs.get("min_persistence")
        how = "of each value range" if self.attrs.get("relative") else "(absolute)"
        lines.append(f"- simplification: min_persistence {thr:g} {how}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"Comparison({len(self)} landscapes: {', '.join(self.labels)})"


def format_number(x: Any, digits: int) -> str:
    """``x`` with ``digits`` significant digits; integers plainly, ``nan``/``inf`` spelled out.

    >>> format_number(2.0, 4), format_number(0.123456, 3), format_number(float("nan"), 3)
    ('2', '0.123', 'nan')
    """
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == int(x) and abs(x) < 1e12:
        return str(int(x))
    return f"{x:.{digits}g}"


def _load(item: Any, i: int) -> tuple[Any, str]:
    from ..field import LossField

    if isinstance(item, LossField):
        label = item.attrs.get("label")
        return item, str(label) if label else f"landscape{i + 1}"
    if isinstance(item, (str, os.PathLike)):
        return LossField.load(item), Path(item).stem
    raise InvalidTypeError(
        f"compare takes LossFields or paths of field files; item {i} is a {type(item).__name__}."
    )


def _labels(given: Sequence[str] | None, default: list[str]) -> tuple[str, ...]:
    if given is None:
        labels = default
        hint = "pass labels=[...] (--labels) to name them apart"
    else:
        if isinstance(given, str) or len(given) != len(default):
            n = 1 if isinstance(given, str) else len(given)
            raise InvalidParameterError(
                f"Got {n} labels for {len(default)} landscapes; give one label per landscape."
            )
        labels = [str(s) for s in given]
        hint = "give each landscape its own label"
    seen: set[str] = set()
    for s in labels:
        if s in seen:
            raise InvalidParameterError(f"Two landscapes have the label {s!r}; {hint}.")
        seen.add(s)
    return tuple(labels)


def _hessian(field: Any) -> tuple[float, float]:
    h = field.attrs.get(HESSIAN_KEY)
    if not isinstance(h, dict):
        return float("nan"), float("nan")
    return float(h.get("top_eigenvalue", np.nan)), float(h.get("trace", np.nan))


def _verified(field: Any, summary: TopologySummary) -> tuple[float, float, str | None]:
    """The confirmed share of separations and the artifact minima stored with the field, if its
    check is of these basins."""
    from ..verify import TopologyCheck

    stored = field.topology
    check = TopologyCheck.from_summary(stored) if stored is not None else None
    if check is None:
        return float("nan"), float("nan"), None
    a, b = summary.join_tree, stored.join_tree
    same = (
        a is not None
        and b is not None
        and a.branches.shape == b.branches.shape
        and bool(np.array_equal(a.branches, b.branches))
    )
    if not same:
        return (
            float("nan"),
            float("nan"),
            (
                "its stored verification checked other basins (another min_persistence); "
                "verified_fraction and artifact_minima left empty"
            ),
        )
    return float(check.score), float(check.n_artifact_minima), None


def compare(
    fields: Sequence[Any],
    labels: Sequence[str] | None = None,
    min_persistence: float = 0.01,
    relative: bool = True,
    *,
    connectivity: str = "freudenthal",
    order: float = 1.0,
    force: bool = False,
) -> Comparison:
    """Compare the basin structure of several landscapes.

    Parameters
    ----------
    fields : LossFields or paths of field files (``losstopo landscape --out``).
    labels : one unique name per landscape (default: the file stems, or ``attrs["label"]``).
    min_persistence, relative : simplification threshold of every analysis (default 1% of each
        field's finite value range).
    connectivity : ``"freudenthal"`` or ``"cubical"``.
    order : order ``p`` of the Wasserstein distance.
    force : compare fields that differ in grid, extent, direction normalisation, loss or data
        (fields of different dimensions are always refused).

    Returns
    -------
    Comparison

    Examples
    --------
    >>> from losstopo.testing import analytic_field
    >>> c = compare([analytic_field("himmelblau", 41), analytic_field("himmelblau", 41)],
    ...             labels=["a", "b"], force=True)
    >>> float(c.bottleneck[0, 1]), int(c["n_minima"][0])
    (0.0, 4)
    """
    items = list(fields) if not isinstance(fields, (str, os.PathLike)) else [fields]
    if not items:
        raise InvalidParameterError("compare needs at least one landscape; got none.")
    loaded = [_load(item, i) for i, item in enumerate(items)]
    flist = [f for f, _ in loaded]
    names = _labels(labels, [s for _, s in loaded])
    order = validate_float(order, "order", low=1.0)
    check_comparable(flist, names, force=bool(force))
    summaries, rows, notes = [], [], {}
    for f, label in zip(flist, names, strict=True):
        s = analyze(f, min_persistence, relative, connectivity, hessian=False)
        row = basin_metrics(s, f.values, axes=list(f.grid.axes.values()))
        row["hessian_top_eigenvalue"], row["hessian_trace"] = _hessian(f)
        row["verified_fraction"], row["artifact_minima"], note = _verified(f, s)
        if note:
            notes[label] = note
        summaries.append(s)
        rows.append(row)
    table = {
        c: np.array([r[c] for r in rows], dtype=np.float64)
        for c in COLUMNS
        if c not in OPTIONAL or any(np.isfinite(r[c]) for r in rows)
    }
    n = len(flist)
    bott, wass = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            a, b = summaries[i].diagram, summaries[j].diagram
            bott[i, j] = bott[j, i] = bottleneck_distance(a, b)
            wass[i, j] = wass[j, i] = wasserstein_distance(a, b, order)
    attrs = {
        "min_persistence": float(min_persistence),
        "relative": bool(relative),
        "connectivity": connectivity,
        "order": order,
        "force": bool(force),
        "thresholds": [s.min_persistence for s in summaries],
        "provenance": {label: provenance(f) for f, label in zip(flist, names, strict=True)},
        "notes": notes,
        "losstopo_version": __version__,
    }
    return Comparison(names, table, bott, wass, tuple(summaries), attrs)

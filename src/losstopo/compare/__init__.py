"""Benchmark basin structure across models: :func:`compare` and its :class:`Comparison`.

See ``docs/compare.md`` for the metric definitions and a worked example.
"""

from __future__ import annotations

from .checks import check_comparable, differences, provenance
from .comparison import Comparison, compare
from .metrics import basin_metrics, centre_index, mean_elder_persistence, smad

__all__ = [
    "Comparison",
    "basin_metrics",
    "centre_index",
    "check_comparable",
    "compare",
    "differences",
    "mean_elder_persistence",
    "provenance",
    "smad",
]

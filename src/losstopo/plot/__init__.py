"""Matplotlib figures of loss landscapes and their topology.

Every function draws on a new :class:`matplotlib.figure.Figure` (no ``pyplot`` state, so it is safe
in scripts, servers and notebooks alike) or on the ``ax`` it is given, and returns the Figure.
:func:`save_figure` writes PNG, SVG or PDF by file extension.

Fields are :class:`~losstopo.LossField` objects; topology arguments are the result classes of
:mod:`losstopo.topology` (:class:`~losstopo.topology.TopologySummary`,
:class:`~losstopo.topology.CriticalPoints`, :class:`~losstopo.topology.MergeTree`,
:class:`~losstopo.topology.PersistenceDiagram`). The modules: :mod:`.axes` (shared helpers and
saving), :mod:`.fields` (contour, surface, profile), :mod:`.topology` (diagrams, barcodes, merge
trees), :mod:`.charts` (fidelity bars, barrier curves), :mod:`.hessian` (spectral density),
:mod:`.comparison` (distance heatmap, small multiples of several landscapes).

Examples
--------
>>> import numpy as np
>>> from losstopo import Grid, LossField
>>> from losstopo.plot import plot_contour
>>> g = Grid.square(resolution=21, n_components=2)
>>> x, y = np.meshgrid(*g.axes.values(), indexing="ij")
>>> fig = plot_contour(LossField(x**2 + y**2, g), title="bowl")
>>> fig.axes[0].get_title()
'bowl'
"""

from __future__ import annotations

from .axes import log_loss_values, save_figure
from .charts import plot_barrier, plot_fidelity
from .comparison import plot_distance_heatmap, plot_small_multiples
from .fields import plot_contour, plot_profile, plot_surface
from .hessian import plot_spectral_density
from .topology import plot_barcode, plot_merge_tree, plot_persistence_diagram

__all__ = [
    "log_loss_values",
    "plot_barcode",
    "plot_barrier",
    "plot_contour",
    "plot_distance_heatmap",
    "plot_fidelity",
    "plot_merge_tree",
    "plot_persistence_diagram",
    "plot_profile",
    "plot_small_multiples",
    "plot_spectral_density",
    "plot_surface",
    "save_figure",
]

"""Figures of the parameter-space Hessian: the spectral density and the full-space checks.

Examples
--------
>>> import numpy as np
>>> from losstopo import SpectralDensity
>>> from losstopo.plot import plot_spectral_density
>>> grid = np.linspace(-1, 5, 100)
>>> dens = SpectralDensity(grid, np.exp(-grid**2), np.array([[0.0, 4.0]]), np.array([[0.9, 0.1]]),
...                        0.1, 8)
>>> fig = plot_spectral_density(dens)
>>> fig.axes[0].get_yscale(), fig.axes[0].get_xlabel()
('log', 'eigenvalue of the Hessian')
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import InvalidTypeError
from ..hessian import SpectralDensity
from .axes import new_axes

__all__ = ["plot_spectral_density"]


def plot_spectral_density(
    density: SpectralDensity,
    ax: Axes | None = None,
    *,
    eigenvalues: Any = None,
    title: str | None = None,
    floor: float = 1e-8,
) -> Figure:
    """The smoothed eigenvalue density on a log scale (PyHessian's figure).

    ``eigenvalues``: extreme eigenvalues (e.g. ``HessianSpectrum.eigenvalues``) marked as ticks.
    Densities below ``floor`` are clipped so the log axis shows the spectrum's tails.
    """
    if not isinstance(density, SpectralDensity):
        raise InvalidTypeError(
            f"plot_spectral_density needs a SpectralDensity (from hessian_density); got "
            f"{type(density).__name__}."
        )
    fig, ax = new_axes(ax)
    ax.semilogy(density.grid, np.maximum(density.density, floor), color="#1f77b4", lw=1.5)
    ax.set_xlabel("eigenvalue of the Hessian")
    ax.set_ylabel("density (log scale)")
    if eigenvalues is not None:
        vals = np.asarray(eigenvalues, dtype=np.float64).ravel()
        ax.plot(
            vals,
            np.full(vals.shape, floor * 10),
            "|",
            color="#d62728",
            ms=14,
            label=f"{vals.size} extreme eigenvalues (Lanczos)",
        )
        ax.legend(loc="upper right")
    runs, steps = density.nodes.shape
    ax.set_title(
        title
        or f"Hessian spectral density ({runs} Lanczos runs x {steps} steps, sigma={density.sigma:.2g})"
    )
    return fig

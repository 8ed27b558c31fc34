"""The demo's Hessian step: curvature at each trained model, and the picture checked in full space.

For each model: the largest Hessian eigenvalues (for the MLP also the most negative) and
Hutchinson's trace at the minimum, and its spectral density (``NAME_spectral_density.png``). For the MLP also Li et al.'s curvature map of
the random plane (``mlp_curvature_map.h5`` / ``.png``) and the full-space check of the plane's
persistent critical points, attached to its topology (saved in the field, drawn in the ParaView
bundle, tabulated in the report).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..field import LossField
from ..grid import Grid
from ..hessian import (
    check_critical_points,
    density_estimate,
    extreme_eigenpairs,
    hessian_map,
    hvp,
    trace_estimate,
)
from ..topology import TopologySummary

#: Sizes that keep the step within a few seconds per model on 2 CPU cores.
EIGEN_K = 2
TRACE_SAMPLES = 20
DENSITY_STEPS = 30
DENSITY_RUNS = 2
MAP_RESOLUTION = 5
MAP_STEPS = 8
CHECK_STEPS = 15
#: Without ``full`` (the CNN, whose products cost about 3x the MLP's): the largest eigenvalues,
#: a shorter trace and one density run.
SHORT_TRACE_SAMPLES = 10
SHORT_DENSITY_RUNS = 1


def run_hessian_demo(
    out: Path,
    name: str,
    model: torch.nn.Module,
    data: Any,
    plane: Any,
    field: LossField,
    topo: TopologySummary,
    log: Callable[[str], None],
    *,
    full: bool,
) -> tuple[TopologySummary, dict[str, Any]]:
    """Hessian figures for one model; with ``full`` the curvature map and the critical-point check.

    Returns the topology (with the check attached when ``full``) and a summary for summary.json.
    """
    from .. import plot

    op = hvp(model, data, "cross_entropy")
    which: Literal["both", "largest"] = "both" if full else "largest"
    spec = extreme_eigenpairs(op, k=EIGEN_K, which=which, tol=1e-3, seed=0)
    trace = trace_estimate(op, n_samples=TRACE_SAMPLES if full else SHORT_TRACE_SAMPLES, seed=0)
    runs = DENSITY_RUNS if full else SHORT_DENSITY_RUNS
    dens = density_estimate(op, steps=DENSITY_STEPS, n_runs=runs, seed=0)
    plot.save_figure(
        plot.plot_spectral_density(
            dens, eigenvalues=spec.eigenvalues, title=f"{name}: Hessian spectral density"
        ),
        out / f"{name}_spectral_density.png",
    )
    lam_max, lam_min = float(spec.eigenvalues[0]), float(spec.eigenvalues[-1])
    summary: dict[str, Any] = {
        "bn": "eval",
        "eigenvalues": [round(float(v), 5) for v in spec.eigenvalues],
        "which": which,
        "trace": round(trace.value, 4),
        "trace_stderr": round(trace.stderr, 4),
        "n_hvp": int(op.n_hvp),
    }
    if full:
        summary["lambda_min_over_lambda_max"] = round(abs(lam_min / lam_max), 5)
        low = f", lambda_min {lam_min:.4g}"
    else:
        low = ""
    log(
        f"{name}: Hessian at the minimum: lambda_max {lam_max:.4g}{low}, "
        f"trace {trace.value:.4g} +- {trace.stderr:.2g} ({op.n_hvp} products)"
    )
    if not full:
        return topo, summary

    extent = float(max(abs(a).max() for a in field.grid.axes.values()))
    cmap = hessian_map(
        model,
        data,
        "cross_entropy",
        plane,
        Grid.square(MAP_RESOLUTION, extent=extent),
        store=out / f"{name}_curvature_map.h5",
        k=MAP_STEPS,
        progress=False,
    )
    plot.save_figure(
        plot.plot_contour(cmap, title=f"{name}: |lambda_min / lambda_max| (Li et al.)"),
        out / f"{name}_curvature_map.png",
    )
    ratio = cmap.values[np.isfinite(cmap.values)]
    summary["curvature_map"] = {
        "resolution": MAP_RESOLUTION,
        "lanczos_steps": MAP_STEPS,
        "ratio_min": round(float(ratio.min()), 5),
        "ratio_max": round(float(ratio.max()), 5),
        "ratio_at_centre": round(float(cmap.values[MAP_RESOLUTION // 2, MAP_RESOLUTION // 2]), 5),
    }
    check = check_critical_points(
        model, data, "cross_entropy", field, topo, projector=plane, steps=CHECK_STEPS
    )
    minima = check.type == 0
    summary["full_space_check"] = {
        "critical_points": len(check),
        "picture_minima": int(minima.sum()),
        "full_space_minima": int(np.sum(check.is_full_space_minimum)),
        "saddles_in_full_space": check.n_saddles_in_full_space,
        "max_relative_plane_hessian_error": _plane_vs_fit(check),
    }
    log(
        f"{name}: curvature map ({cmap.grid.size} points) ratio {ratio.min():.3g}..{ratio.max():.3g}; "
        f"full-space check: {int(np.sum(check.is_full_space_minimum))} of {int(minima.sum())} "
        "picture minima are full-space minima"
    )
    return check.attach(topo), summary


def _plane_vs_fit(check: Any) -> float | None:
    """Largest relative difference between the HVP plane Hessian and the picture's fit."""
    if not len(check):
        return None
    diff = np.abs(check.plane_hessian - check.fitted_hessian).max(axis=(1, 2))
    scale = np.abs(check.plane_hessian).max(axis=(1, 2))
    ok = np.isfinite(diff) & (scale > 0)
    return round(float(np.max(diff[ok] / scale[ok])), 4) if ok.any() else None

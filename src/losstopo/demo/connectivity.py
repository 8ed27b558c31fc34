"""Part three of ``losstopo demo``: are two MLP runs from different seeds connected?

Given the demo's two digits MLPs (seeds 0 and 1), writes into ``OUT/connectivity/``:

- the straight path's profile and barrier (``linear.h5``/``.csv``);
- a trained quadratic Bezier curve (``curve.pt``) and its profile (``bezier.h5``/``.csv``);
- the straight path after aligning the second run to the first by weight matching and by
  activation matching (``weights.h5``, ``activations.h5``, and ``seed1_aligned.pt``);
- ``barrier.png`` with the four profiles; the landscape of the plane through both runs and the
  curve's bend with both paths drawn (``plane.h5``, ``plane_contour.png``) and its ParaView
  bundle (``OUT/paraview/connectivity/``).

Examples
--------
>>> from losstopo.demo.connectivity import CURVE_EPOCHS
>>> CURVE_EPOCHS
20
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..alignment import activation_matching, apply_permutation, weight_matching
from ..connectivity import fit_curve, interpolate, plane_landscape
from ..export import write_connectivity
from ..plot import plot_barrier, plot_contour, save_figure

#: Bezier training epochs, positions along each path, plane grid points per axis.
CURVE_EPOCHS = 20
N_POINTS = 21
PLANE_RESOLUTION = 17

__all__ = ["CURVE_EPOCHS", "run_connectivity_demo"]


def run_connectivity_demo(
    out: Path,
    model_a: nn.Module,
    model_b: nn.Module,
    data: Any,
    loss: Any = "cross_entropy",
    log: Callable[[str], None] = lambda msg: None,
    *,
    curve_epochs: int = CURVE_EPOCHS,
    n_points: int = N_POINTS,
    resolution: int = PLANE_RESOLUTION,
) -> dict[str, Any]:
    """Barriers between two runs: straight, Bezier, after weight and after activation matching.

    Writes the files listed in the module docstring under ``out`` and returns a summary: each
    barrier, its ratio to the straight path's, the curve's highest loss over its larger endpoint
    loss, and the seconds taken.

    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from losstopo.datasets import synthetic_classification
    >>> _ = torch.manual_seed(0)
    >>> a = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> b = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> s = run_connectivity_demo(Path(tempfile.mkdtemp()), a, b, synthetic_classification(),
    ...                           curve_epochs=2, n_points=5, resolution=5)
    >>> sorted(s["barrier"])
    ['activations', 'bezier', 'linear', 'weights']
    """
    t0 = time.perf_counter()
    where = Path(out) / "connectivity"
    where.mkdir(parents=True, exist_ok=True)
    line = interpolate(model_a, model_b, data, loss, n_points=n_points)
    curve = fit_curve(model_a, model_b, data, loss, epochs=curve_epochs, progress=False)
    curve.save(where / "curve.pt")
    bent = curve.evaluate(data, loss, n_points=n_points)
    profiles = {"linear": line, "bezier": bent}
    seconds = {}
    for method, match in (
        ("weights", lambda: weight_matching(model_a, model_b)),
        ("activations", lambda: activation_matching(model_a, model_b, data)),
    ):
        start = time.perf_counter()
        aligned = apply_permutation(model_b, match())
        seconds[method] = round(time.perf_counter() - start, 3)
        profiles[method] = interpolate(model_a, aligned, data, loss, n_points=n_points)
        if method == "weights":
            torch.save(aligned.state_dict(), where / "seed1_aligned.pt")
    for name, profile in profiles.items():
        profile.save(where / f"{name}.h5")
        profile.to_csv(where / f"{name}.csv")
    save_figure(
        plot_barrier(
            profiles,
            labels=["straight", "Bezier curve", "after weight matching",
                    "after activation matching"],
        ),
        where / "barrier.png",
    )  # fmt: skip
    field = plane_landscape(curve, data, loss, resolution=resolution, profiles=[line, bent])
    field.save(where / "plane.h5")
    save_figure(
        plot_contour(field, log=True, title="plane through both runs and the Bezier bend"),
        where / "plane_contour.png",
    )
    bundle = Path(out) / "paraview" / "connectivity"
    bundle.mkdir(parents=True, exist_ok=True)
    write_connectivity(field, bundle, {"linear": line, "bezier": bent})
    naive = line.barrier
    summary: dict[str, Any] = {
        "barrier": {k: round(float(p.barrier), 5) for k, p in profiles.items()},
        "ratio_to_linear": {
            k: round(float(p.barrier / naive), 4) if naive > 0 else 0.0
            for k, p in profiles.items()
            if k != "linear"
        },
        "end_losses": [round(v, 5) for v in line.endpoint_losses],
        "bezier_max_over_ends": round(float(bent.loss.max() / max(bent.endpoint_losses)), 4),
        "matching_seconds": seconds,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    b = summary["barrier"]
    log(
        f"connectivity: barrier straight {b['linear']:.4g}, Bezier {b['bezier']:.4g}, after "
        f"weight matching {b['weights']:.4g}, after activation matching {b['activations']:.4g} "
        f"({summary['seconds']:.1f} s)"
    )
    return summary

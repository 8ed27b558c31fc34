"""The demo's full-space check of a picture's basins (:func:`losstopo.verify_topology`).

Each checked landscape (the MLP's random plane, the global two-run auto-encoder landscape) gets
its persistent minima decoded to parameters and checked there (full-space Hessian extremes,
loss, distance to the nearest checkpoint) and each separation of two basins compared with the
barrier along the straight segment between the two decoded minima. The check is attached to the
topology (saved in the field file, tabulated in the report, drawn as rings on the contour plot).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..field import LossField
from ..topology import TopologySummary
from ..trajectory import Trajectory
from ..verify import verify_topology

#: Lanczos products per minimum and points per straight segment (the demo's time budget).
DEMO_STEPS, DEMO_SEGMENT_POINTS = 12, 11


def run_verify_demo(
    name: str,
    model: torch.nn.Module,
    data: Any,
    field: LossField,
    topology: TopologySummary,
    trajectory: Trajectory,
    log: Callable[[str], None],
) -> tuple[TopologySummary, dict[str, Any]]:
    """Check ``field``'s basins in the full space; the topology with the check, and a summary."""
    t0 = time.perf_counter()
    check = verify_topology(
        model, data, "cross_entropy", field, topology, trajectory=trajectory,
        steps=DEMO_STEPS, n_points=DEMO_SEGMENT_POINTS,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    statuses = {s: int(np.count_nonzero(check.status == s)) for s in np.unique(check.status)}
    summary = {
        "minima": check.n_minima,
        "full_space_minima": int(np.count_nonzero(check.is_full_space_minimum)),
        "artifact_minima": check.n_artifact_minima,
        "separations": check.n_separations,
        "separation_status": statuses,
        "score": None if check.n_separations == 0 else round(float(check.score), 4),
        "seconds": round(seconds, 1),
    }
    score = "no separations" if check.n_separations == 0 else f"score {check.score:.2f}"
    log(
        f"{name}: full-space check of {check.n_minima} picture minima: "
        f"{summary['full_space_minima']} minima in full space, {check.n_artifact_minima} "
        f"artifacts; {check.n_confirmed} of {check.n_separations} separations confirmed "
        f"({score}) in {seconds:.1f} s"
    )
    return check.attach(topology), summary

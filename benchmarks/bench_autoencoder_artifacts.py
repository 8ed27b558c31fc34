"""Auto-encoder settings against the full-space check of the demo's global two-run landscape.

The demo's global landscape: two digits MLPs (64-128-128-10, seeds 0 and 1, 20 epochs each, the
demo's training), one auto-encoder fitted on both runs' 42 checkpoints (anchors ``"circle"``),
a 41 x 41 grid over the latent box, the topology simplified at 0.05 nats (the demo's threshold),
and :func:`losstopo.verify_topology` on every persistent minimum and separation. For each
setting: the picture's persistent minima, how many of them are artifacts (their separation has
no barrier on the straight full-space segment), the separations' statuses, and the fidelity of
the same setting (relative projection error and relative loss error on the fitted checkpoints and,
fitted on every other checkpoint, on the held-out ones) beside PCA's.

    python benchmarks/bench_autoencoder_artifacts.py [--resolution 41] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

import numpy as np
import torch
from machine import cpu_name

from losstopo import Grid, Trajectory, analyze, evaluate, verify_topology
from losstopo.datasets import digits
from losstopo.fidelity import fidelity
from losstopo.models import MLP
from losstopo.projectors import AutoEncoderProjector, PCAProjector
from losstopo.trajectory import train

#: (label, AutoEncoderProjector keywords): the defaults (exact=False, hidden=(64, 64)) first;
#: "exact, hidden=(128, 128)" was the default before the full-space check measured it.
SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("default", {}),
    ("hidden=(128, 128)", {"hidden": (128, 128)}),
    ("hidden=(128, 128), 500 epochs", {"hidden": (128, 128), "max_epochs": 500}),
    ("exact, hidden=(128, 128)", {"exact": True, "hidden": (128, 128)}),
    ("... smoothing=1e-4", {"exact": True, "hidden": (128, 128), "smoothing": 1e-4}),
    ("... smoothing=1e-2", {"exact": True, "hidden": (128, 128), "smoothing": 1e-2}),
    ("... grid_weight=1", {"exact": True, "hidden": (128, 128), "grid_weight": 1.0}),
    (
        "... 5000 epochs",
        {"exact": True, "hidden": (128, 128), "max_epochs": 5000, "patience": 1500},
    ),
]


def demo_runs(data: Any) -> tuple[torch.nn.Module, Trajectory]:
    """The demo's two MLP runs (seeds 0 and 1), as one trajectory; the first model."""
    runs, first = [], None
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = MLP(64, (128, 128), 10)
        runs.append(train(model, data, epochs=20, lr=0.1, seed=seed, run=f"mlp-seed{seed}",
                          progress=False))  # fmt: skip
        first = first or model
    assert first is not None
    return first, Trajectory.concat(runs)


def row(model: Any, data: Any, both: Trajectory, proj: Any, resolution: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    fitted = proj.fit(both)
    grid = Grid.square(resolution, extent=1.0)
    field = evaluate(model, data, "cross_entropy", fitted, grid, progress=False, metrics=())
    topo = analyze(field, min_persistence=0.05)
    check = verify_topology(model, data, "cross_entropy", field, topo, trajectory=both, steps=12,
                            n_points=11)  # fmt: skip
    fid = fidelity(model, data, "cross_entropy", proj.__class__(**proj.get_params()), both,
                   holdout=True)  # fmt: skip
    return {
        "minima": check.n_minima,
        "artifact_minima": check.n_artifact_minima,
        "separations": dict(Counter(check.status.tolist())),
        "fitted_proj": float(np.mean(fid.projection_error)),
        "fitted_loss": float(np.mean(fid.relative_loss_error)),
        "heldout_proj": float(np.mean(fid.holdout.projection_error)),
        "heldout_loss": float(np.mean(fid.holdout.relative_loss_error)),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=41)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write the rows as JSON")
    parser.add_argument("--only", nargs="*", default=None, help="labels of SETTINGS to run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = digits("train", images=False)
    model, both = demo_runs(data)
    pca = fidelity(model, data, "cross_entropy", PCAProjector(2), both, holdout=True)
    print(f"machine: {cpu_name()}, {args.threads} thread(s); {len(both)} checkpoints x "
          f"{both.n_params} parameters, {args.resolution}^2 grid, min_persistence 0.05")  # fmt: skip
    print(f"PCA: fitted proj {np.mean(pca.projection_error):.3g}, loss "
          f"{np.mean(pca.relative_loss_error):.3g}; held-out proj "
          f"{np.mean(pca.holdout.projection_error):.3g}, loss "
          f"{np.mean(pca.holdout.relative_loss_error):.3g}")  # fmt: skip
    head = f"{'setting':24} {'minima':>6} {'artifact':>8} {'fitted proj':>11} {'fitted loss':>11} "
    print(head + f"{'held proj':>9} {'held loss':>9} {'s':>6}  separations")
    rows = {}
    for label, kw in SETTINGS:
        if args.only and label not in args.only:
            continue
        proj = AutoEncoderProjector(n_components=2, anchors="circle", random_state=0,
                                    progress=False, **kw)  # fmt: skip
        r = rows[label] = row(model, data, both, proj, args.resolution)
        print(f"{label:24} {r['minima']:>6} {r['artifact_minima']:>8} {r['fitted_proj']:>11.3g} "
              f"{r['fitted_loss']:>11.3g} {r['heldout_proj']:>9.3g} {r['heldout_loss']:>9.3g} "
              f"{r['seconds']:>6}  {r['separations']}", flush=True)  # fmt: skip
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()

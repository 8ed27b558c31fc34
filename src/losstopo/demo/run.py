"""``losstopo demo``: the whole story on scikit-learn's digits, in under three minutes on 2 cores.

1. Train a small MLP and a small CNN (with BatchNorm) on digits, recording their trajectories.
2. Around each minimum, a 2D landscape along filter-normalized random directions (Li et al.),
   with the optimizer path projected into it; and a 1D interpolation from the initialisation to
   the minimum, with train and test curves.
3. The topology of each 2D landscape: critical points (drawn on the contour map), merge tree,
   persistence diagram and basins, in ``topology.json`` and attached to the saved fields.
4. A ParaView bundle per landscape (``paraview/NAME/landscape.vtm`` + ``open_in_paraview.py``).
5. Landscapes along the trajectories (:mod:`losstopo.demo.projectors`): trajectory PCA and the
   Neuro-Visualizer auto-encoder for both models, a global auto-encoder landscape over two MLP
   runs from different seeds, and the fidelity table of PCA, Kernel-PCA, UMAP and the
   auto-encoder.
6. The Hessian at each minimum (:mod:`losstopo.demo.hessian`): extreme eigenvalues, trace and
   spectral density; for the MLP, Li et al.'s curvature map of the plane and every persistent
   critical point of the plane checked in the full parameter space.
7. Fields (HDF5), PNG plots, ``summary.json`` and a self-contained ``report.html``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..datasets import digits
from ..directions import random_directions
from ..errors import validate_output_path
from ..evaluate import evaluate
from ..export import write_paraview
from ..field import LossField
from ..grid import Grid
from ..jsonable import to_jsonable
from ..models import MLP, SmallCNN
from ..projectors import PlaneProjector
from ..report import write_report
from ..space import ParameterSpace
from ..topology import TopologySummary, analyze
from ..trajectory import Trajectory, train
from .hessian import run_hessian_demo
from .projectors import DemoRun, run_projector_demo
from .verify import run_verify_demo


@dataclass
class DemoModel:
    name: str
    build: Callable[[], torch.nn.Module]
    images: bool
    epochs: int
    lr: float
    resolution: int


DEMO_MODELS = (
    DemoModel(
        "mlp", lambda: MLP(64, (128, 128), 10), images=False, epochs=20, lr=0.1, resolution=41
    ),
    DemoModel(
        "cnn", lambda: SmallCNN(1, 10, width=16), images=True, epochs=12, lr=0.05, resolution=25
    ),
)


#: Simplification threshold of the demo's topology, in loss units (nats of cross-entropy): a basin
#: counts when its barrier is at least this high. Absolute, not a fraction of the value range, so
#: far-away corners with huge losses (decoded auto-encoder landscapes) cannot hide real basins.
TOPOLOGY_MIN_PERSISTENCE = 0.05


class _Log:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", flush=True)


def run_demo(out: Path, quiet: bool = False) -> dict[str, Any]:
    """Run the demo into the directory ``out`` and return the summary it writes to ``summary.json``.

    ``out`` is created if missing; its parent must exist.
    """
    import matplotlib

    matplotlib.use("Agg")
    from .. import plot

    out = Path(out)
    if out.exists():
        validate_output_path(out, "out", directory=True)
    else:
        validate_output_path(out, "out")
        out.mkdir()
    log = _Log(quiet)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    topology: dict[str, Any] = {}
    summary: dict[str, Any] = {"data": "scikit-learn digits (1348 train / 449 test)", "models": {}}
    runs: list[DemoRun] = []

    for spec in DEMO_MODELS:
        train_data = digits("train", images=spec.images)
        test_data = digits("test", images=spec.images)
        torch.manual_seed(0)
        model = spec.build()
        init = ParameterSpace.from_module(model).flatten(model).clone()
        t0 = time.perf_counter()
        traj = train(
            model, train_data, epochs=spec.epochs, lr=spec.lr, seed=0, run=spec.name, progress=False
        )
        log(
            f"{spec.name}: trained {spec.epochs} epochs in {time.perf_counter() - t0:.1f} s "
            f"({traj.n_params} parameters, {len(traj)} checkpoints)"
        )

        # 2D landscape around the minimum, filter-normalized random directions.
        directions = random_directions(
            model, n_components=2, normalization="filter", ignore="biasbn", seed=0
        )
        plane = PlaneProjector(model, directions)
        t0 = time.perf_counter()
        field = evaluate(
            model,
            train_data,
            "cross_entropy",
            plane,
            Grid.square(spec.resolution, extent=1.0),
            progress=not quiet,
            trajectory=traj,
            attrs={"seed": 0, "normalization": "filter", "ignore": "biasbn", "split": "train"},
        )
        plane_seconds = time.perf_counter() - t0
        log(f"{spec.name}: {field.grid.size}-point random-plane landscape in {plane_seconds:.1f} s")
        topo = analyze(field, min_persistence=TOPOLOGY_MIN_PERSISTENCE)
        topo, hessian_summary = run_hessian_demo(
            out, spec.name, model, train_data, plane, field, topo, log, full=spec.name == "mlp"
        )
        verified = None
        if spec.name == "mlp":  # the plane's basins checked in the full space
            topo, verified = run_verify_demo(
                f"{spec.name}_plane", model, train_data, field, topo, traj, log
            )
        field = field.with_topology(topo)
        field.save(out / f"{spec.name}_plane.h5")
        topology[spec.name] = topo.to_dict()
        log(
            f"{spec.name}: topology: {topo.n_minima} persistent minima, {topo.n_saddles} saddles, "
            f"{topo.n_maxima} maxima (Morse sum {topo.morse_sum})"
        )
        plot.save_figure(
            plot.plot_contour(
                field, log=True, critical_points=topo, title=f"{spec.name}: random plane (log loss)"
            ),
            out / f"{spec.name}_contour.png",
        )
        plot.save_figure(plot.plot_merge_tree(topo), out / f"{spec.name}_merge_tree.png")
        plot.save_figure(
            plot.plot_persistence_diagram(topo.diagram), out / f"{spec.name}_persistence.png"
        )
        bundle = out / "paraview" / spec.name
        bundle.mkdir(parents=True, exist_ok=True)
        write_paraview(field, bundle, topology=topo)
        plot.save_figure(
            plot.plot_surface(field, log=True, title=f"{spec.name}: loss surface"),
            out / f"{spec.name}_surface.png",
        )

        # 1D interpolation from the initialisation to the minimum, train and test.
        final = ParameterSpace.from_module(model).flatten(model)
        line = PlaneProjector(init, (final - init)[None, :])
        grid1 = Grid({"alpha": np.linspace(-0.5, 1.5, 41)})
        # BatchNorm statistics of the minimum are meaningless at the initialisation: re-estimate them
        # at every point from training batches.
        bn: Literal["eval", "recompute"] = "recompute" if spec.images else "eval"
        f_train = evaluate(
            model,
            train_data,
            "cross_entropy",
            line,
            grid1,
            progress=False,
            bn=bn,
            bn_data=train_data,
        )
        f_test = evaluate(
            model,
            test_data,
            "cross_entropy",
            line,
            grid1,
            progress=False,
            bn=bn,
            bn_data=train_data,
        )
        profile = LossField(
            f_train.values,
            grid1,
            metrics={
                "test_loss": f_test.values,
                "train_accuracy": f_train.metrics["accuracy"],
                "test_accuracy": f_test.metrics["accuracy"],
            },
            attrs={
                **f_train.attrs,
                "split": "train (values), test (test_loss)",
                "interpolation": "alpha=0 initialisation, alpha=1 minimum",
            },
        )
        profile.save(out / f"{spec.name}_interpolation.h5")
        plot.save_figure(
            plot.plot_profile(profile, title=f"{spec.name}: initialisation (0) to minimum (1)"),
            out / f"{spec.name}_interpolation.png",
        )

        summary["models"][spec.name] = _model_summary(
            spec, traj, field, profile, plane_seconds, topo
        )
        summary["models"][spec.name]["hessian"] = hessian_summary
        if verified is not None:
            summary["models"][spec.name]["verify"] = verified
        runs.append(
            DemoRun(spec.name, model, traj, train_data, spec.build, spec.epochs, spec.lr, bn)
        )

    summary["projectors"] = run_projector_demo(
        out, runs, log, quiet, TOPOLOGY_MIN_PERSISTENCE, topology
    )

    (out / "topology.json").write_text(json.dumps(to_jsonable(topology), indent=2))
    summary["seconds"] = round(log_elapsed(log), 1)
    (out / "summary.json").write_text(json.dumps(to_jsonable(summary), indent=2))
    report = write_report(out)
    log(f"wrote {out / 'summary.json'}, {out / 'topology.json'} and the report:")
    if not quiet:
        print(report)
    return summary


def log_elapsed(log: _Log) -> float:
    return time.perf_counter() - log.t0


def _model_summary(
    spec: DemoModel,
    traj: Trajectory,
    field: LossField,
    profile: LossField,
    seconds: float,
    topo: TopologySummary,
) -> dict[str, Any]:
    v = field.values
    centre = tuple(int(np.argmin(np.abs(a))) for a in field.grid.axes.values())
    centre_loss = float(v[centre])
    alpha = profile.grid.axes["alpha"]
    inside = (alpha >= 0) & (alpha <= 1)
    train_curve = profile.values[inside]
    ends = max(train_curve[0], train_curve[-1])
    return {
        "n_params": traj.n_params,
        "epochs": spec.epochs,
        "train_loss": round(float(profile.values[np.argmin(np.abs(alpha - 1))]), 5),
        "train_accuracy": round(
            float(profile.metrics["train_accuracy"][np.argmin(np.abs(alpha - 1))]), 4
        ),
        "test_loss": round(float(profile.metrics["test_loss"][np.argmin(np.abs(alpha - 1))]), 5),
        "test_accuracy": round(
            float(profile.metrics["test_accuracy"][np.argmin(np.abs(alpha - 1))]), 4
        ),
        # the BatchNorm statistics of the losses above and of the interpolation
        "batchnorm": profile.attrs.get("batchnorm"),
        "plane": {
            "resolution": field.grid.shape[0],
            "centre_loss": round(centre_loss, 5),
            "min_loss": round(float(np.nanmin(v)), 5),
            "max_loss": round(float(np.nanmax(v)), 5),
            "batchnorm": field.attrs.get("batchnorm"),
            "flat_fraction": round(float(np.mean(v < centre_loss + 0.1)), 4),
            "seconds": round(seconds, 2),
            "engine": field.attrs.get("engine"),
            "persistent_minima": topo.n_minima,
            "persistent_saddles": topo.n_saddles,
            "total_persistence": round(float(topo.basins.total_persistence), 5),
        },
        "interpolation": {
            "init_loss": round(float(train_curve[0]), 5),
            "final_loss": round(float(train_curve[-1]), 5),
            "barrier": round(float(max(train_curve.max() - ends, 0.0)), 5),
            "monotonic": bool(np.all(np.diff(train_curve) <= 1e-9)),
            "batchnorm": profile.attrs.get("batchnorm"),
        },
    }

"""Part two of ``losstopo demo``: landscapes along the trajectories, and how far to trust them.

For the MLP and the CNN trained in part one:

1. Li et al.'s trajectory PCA: the plane of the first two principal directions of the checkpoints
   (minus the final model), a grid around the projected path, the path drawn in it.
2. The Neuro-Visualizer auto-encoder: the checkpoints encoded into the latent box ``[-1, 1]^2``
   and the loss evaluated on a grid of that box decoded back to parameters.

Then a global landscape (GlobScope): a second MLP run from another seed, one auto-encoder fitted
on both runs, both paths drawn on one surface, and its basins counted; the connectivity of the
two runs (straight path, Bezier curve, weight and activation matching; :mod:`.connectivity`); and
the same global landscape after aligning the second run to the first by weight matching (every
checkpoint of the second run permuted alike), ``global_autoencoder_aligned.h5``.

Finally the fidelity table (projection and loss errors on the fitted and on held-out checkpoints)
of PCA, Kernel-PCA, UMAP and the auto-encoder on each trajectory, as ``fidelity_NAME.csv`` and
``fidelity_NAME.png``.

Examples
--------
>>> from losstopo.demo.projectors import LANDSCAPE_RESOLUTION
>>> LANDSCAPE_RESOLUTION
31
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..alignment import permute_points, weight_matching
from ..evaluate import evaluate
from ..export import write_paraview
from ..fidelity import compare_projectors, default_projectors
from ..field import LossField
from ..grid import Grid
from ..plot import plot_fidelity, save_figure
from ..projectors import AutoEncoderProjector, PCAProjector
from ..topology import TopologySummary, analyze
from ..trajectory import Trajectory, train
from .connectivity import run_connectivity_demo
from .verify import run_verify_demo

#: Points per axis of the PCA and auto-encoder landscapes (the global one uses 41).
LANDSCAPE_RESOLUTION = 31
#: The CNN re-estimates BatchNorm at every point (about 25 ms a point on 2 cores): a coarser grid.
CNN_LANDSCAPE_RESOLUTION = 17
GLOBAL_RESOLUTION = 41
#: The aligned global landscape repeats the global one's computation: a coarser grid.
ALIGNED_RESOLUTION = 25


@dataclass
class DemoRun:
    """What part one hands over: a trained model, its trajectory, and how it was trained."""

    name: str
    model: torch.nn.Module
    trajectory: Trajectory
    train_data: Any
    build: Callable[[], torch.nn.Module]
    epochs: int
    lr: float
    bn: Literal["eval", "recompute"]


def run_projector_demo(
    out: Path,
    runs: list[DemoRun],
    log: Callable[[str], None],
    quiet: bool,
    min_persistence: float,
    topology: dict[str, Any],
) -> dict[str, Any]:
    """Write the PCA, auto-encoder and global landscapes and the fidelity tables into ``out``.

    Adds each landscape's topology to ``topology`` and returns the demo summary's
    ``"projectors"`` section.
    """
    from .. import plot

    summary: dict[str, Any] = {}
    verified: dict[str, dict[str, Any]] = {}

    def landscape(
        run: DemoRun,
        projector: Any,
        grid: Grid,
        traj: Trajectory,
        name: str,
        title: str,
        verify: bool = False,
    ) -> tuple[LossField, TopologySummary, float]:
        t0 = time.perf_counter()
        field = evaluate(
            run.model,
            run.train_data,
            "cross_entropy",
            projector,
            grid,
            progress=not quiet,
            trajectory=traj,
            bn=run.bn,
            bn_data=run.train_data if run.bn == "recompute" else None,
            attrs={"split": "train", "bn": run.bn},
        )
        seconds = time.perf_counter() - t0
        topo = analyze(field, min_persistence=min_persistence)
        if verify:  # each basin checked in the full space; rings on the contour plot
            topo, verified[name] = run_verify_demo(
                name, run.model, run.train_data, field, topo, traj, log
            )
        field = field.with_topology(topo)
        field.save(out / f"{name}.h5")
        topology[name] = topo.to_dict()
        plot.save_figure(
            plot.plot_contour(field, log=True, critical_points=topo, title=title),
            out / f"{name}_contour.png",
        )
        log(
            f"{name}: {field.grid.size}-point landscape in {seconds:.1f} s; "
            f"{topo.n_minima} persistent minima, {topo.n_saddles} saddles"
        )
        return field, topo, seconds

    for run in runs:
        traj = run.trajectory
        res = CNN_LANDSCAPE_RESOLUTION if run.bn == "recompute" else LANDSCAPE_RESOLUTION
        pca = PCAProjector(n_components=2).fit(traj)
        grid = Grid.around(pca.transform(traj), resolution=res, margin=0.25, names=("pc1", "pc2"))
        field, topo, seconds = landscape(
            run, pca, grid, traj, f"{run.name}_pca", f"{run.name}: trajectory PCA (log loss)"
        )
        ratio = [round(float(r), 4) for r in pca.explained_variance_ratio_]
        section = {"pca": _landscape_summary(field, topo, seconds, explained_variance_ratio=ratio)}

        ae, fit = _fit_autoencoder(traj, anchors="corners")
        field, topo, seconds = landscape(
            run,
            ae,
            Grid.square(res, extent=1.0),
            traj,
            f"{run.name}_autoencoder",
            f"{run.name}: auto-encoder latent box (log loss)",
        )
        section["autoencoder"] = _landscape_summary(field, topo, seconds, **fit)
        summary[run.name] = section

    # -- global landscape over two MLP runs from different seeds (GlobScope)
    first = runs[0]
    torch.manual_seed(1)
    second_model = first.build()
    t0 = time.perf_counter()
    second = train(
        second_model,
        first.train_data,
        epochs=first.epochs,
        lr=first.lr,
        seed=1,
        run=f"{first.name}-seed1",
        progress=False,
    )
    log(f"{first.name}-seed1: trained {first.epochs} epochs in {time.perf_counter() - t0:.1f} s")
    summary["connectivity"] = run_connectivity_demo(
        out, first.model, second_model, first.train_data, log=log
    )
    both = Trajectory.concat([first.trajectory.with_run(f"{first.name}-seed0"), second])
    ae, fit = _fit_autoencoder(both, anchors="circle")
    field, topo, seconds = landscape(
        first,
        ae,
        Grid.square(GLOBAL_RESOLUTION, extent=1.0),
        both,
        "global_autoencoder",
        f"{first.name}, seeds 0 and 1: one auto-encoder landscape (log loss)",
        verify=True,
    )
    bundle = out / "paraview" / "global_autoencoder"
    bundle.mkdir(parents=True, exist_ok=True)
    write_paraview(field, bundle, topology=topo)
    summary["global"] = {
        "runs": both.run_ids,
        "checkpoints": len(both),
        **_landscape_summary(field, topo, seconds, **fit),
        "final_losses": {
            rid: round(float(path.loss[-1]), 5)
            for rid, path in sorted(field.paths.items())
            if path.loss is not None
        },
        "end_basins": (ends := end_basins(field, topo)),
        "verify": verified["global_autoencoder"],
    }
    where = ", ".join(f"{run_id} in basin #{b['basin']}" for run_id, b in ends.items())
    log(f"global_autoencoder: {where} (#0 is the deepest)")

    # -- the same global view after aligning the second run to the first (weight matching):
    # every checkpoint of the second run permuted alike, one auto-encoder over both again
    perm = weight_matching(first.model, second_model)
    aligned = dataclasses.replace(
        second, points=permute_points(second_model, second.points, perm).astype(np.float32)
    ).with_run(f"{first.name}-seed1-aligned")
    both_aligned = Trajectory.concat([first.trajectory.with_run(f"{first.name}-seed0"), aligned])
    ae, fit = _fit_autoencoder(both_aligned, anchors="circle")
    field, topo, seconds = landscape(
        first,
        ae,
        Grid.square(ALIGNED_RESOLUTION, extent=1.0),
        both_aligned,
        "global_autoencoder_aligned",
        f"{first.name}, seed 1 aligned to seed 0 (weight matching): one auto-encoder landscape",
    )
    summary["global_aligned"] = {
        "runs": both_aligned.run_ids,
        "units_moved": int(perm.n_moved),
        **_landscape_summary(field, topo, seconds, **fit),
        "end_basins": (ends := end_basins(field, topo)),
    }
    where = ", ".join(f"{run_id} in basin #{b['basin']}" for run_id, b in ends.items())
    log(f"global_autoencoder_aligned: {where}")

    # -- fidelity: PCA, Kernel-PCA, UMAP and the auto-encoder on each trajectory
    fidelity: dict[str, Any] = {}
    for name, traj, run in [
        *((r.name, r.trajectory, r) for r in runs),
        ("global", both, first),
    ]:
        t0 = time.perf_counter()
        projectors = default_projectors(2, 0)
        if name == "global":  # UMAP's decoder costs about 11 s here; it is compared per model
            del projectors["umap"]
        table = compare_projectors(
            run.model,
            run.train_data,
            "cross_entropy",
            traj,
            projectors=projectors,
            holdout=True,
            csv_path=out / f"fidelity_{name}.csv",
        )
        save_figure(plot_fidelity(table.error_table()), out / f"fidelity_{name}.png", dpi=120)
        fidelity[name] = {
            row["projector"]: {
                k: _round(v)
                for k, v in row.items()
                if k in ("mean_projection_error", "mean_relative_loss_error")
                or k.startswith("holdout_mean")
            }
            for row in table.rows
        }
        ae_row, pca_row = fidelity[name]["autoencoder"], fidelity[name]["pca"]
        log(
            f"fidelity on {name}: projection error auto-encoder "
            f"{ae_row['mean_projection_error']:.2g} vs PCA {pca_row['mean_projection_error']:.2g}; "
            f"held out {ae_row['holdout_mean_projection_error']:.2g} vs "
            f"{pca_row['holdout_mean_projection_error']:.2g} ({time.perf_counter() - t0:.1f} s)"
        )
    summary["fidelity"] = fidelity
    return summary


def end_basins(field: LossField, topo: TopologySummary) -> dict[str, dict[str, Any]]:
    """The basin (rank in ``topo.basins``, 0 = deepest) holding each path's last checkpoint.

    The last checkpoint is placed on the nearest grid vertex and looked up in the simplified join
    tree's branch segmentation.

    >>> import numpy as np
    >>> from losstopo import Grid, LossField, ProjectedPath, analyze
    >>> g = Grid({"x": np.linspace(-2, 2, 41)})
    >>> x = g.axes["x"]
    >>> f = LossField((x**2 - 1) ** 2 + 0.1 * x, g).with_paths(
    ...     {"a": ProjectedPath(np.array([[-1.0]]), np.zeros(1)),
    ...      "b": ProjectedPath(np.array([[1.0]]), np.zeros(1))})
    >>> {k: v["basin"] for k, v in end_basins(f, analyze(f, min_persistence=0.1)).items()}
    {'a': 0, 'b': 1}
    """
    tree = topo.join_tree
    if tree is None:
        return {}
    axes = list(field.grid.axes.values())
    rank = {row.index: i for i, row in enumerate(topo.basins.rows)}
    out = {}
    for run_id, path in sorted(field.paths.items()):
        end = np.asarray(path.coords)[-1]
        vertex = tuple(int(np.argmin(np.abs(a - c))) for a, c in zip(axes, end, strict=True))
        branch = int(tree.branch_segmentation[vertex])
        minimum = int(tree.pair_index[branch, 0])
        out[run_id] = {
            "basin": rank[minimum],
            "basin_minimum_loss": round(float(field.values.flat[minimum]), 5),
        }
    return out


def _fit_autoencoder(traj: Trajectory, anchors: str) -> tuple[AutoEncoderProjector, dict[str, Any]]:
    """The demo's auto-encoder fitted on ``traj``, and its fit time and epochs for the summary."""
    t0 = time.perf_counter()
    ae = AutoEncoderProjector(n_components=2, anchors=anchors, random_state=0, progress=False)
    ae.fit(traj)
    fit = {"fit_seconds": round(time.perf_counter() - t0, 2), "epochs": int(ae.n_epochs_)}
    return ae, fit


def _round(value: Any) -> Any:
    return float(f"{value:.4g}") if isinstance(value, float) and np.isfinite(value) else value


def _landscape_summary(
    field: LossField, topo: TopologySummary, seconds: float, **extra: Any
) -> dict[str, Any]:
    v = field.values
    return {
        "resolution": field.grid.shape[0],
        "min_loss": round(float(np.nanmin(v)), 5),
        "max_loss": round(float(np.nanmax(v)), 5),
        "batchnorm": field.attrs.get("batchnorm"),
        "persistent_minima": topo.n_minima,
        "persistent_saddles": topo.n_saddles,
        "seconds": round(seconds, 2),
        **extra,
    }

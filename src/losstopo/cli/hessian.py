"""``losstopo hessian``: the Hessian at a model (spectrum, trace, density) or a curvature map.

Without ``--map``: the ``--k`` extreme eigenvalues (``--which``), Hutchinson's trace and the
spectral density at the model, written to ``--out DIR`` as ``hessian.json``,
``spectral_density.csv`` and ``spectral_density.png``. With ``--map``: Li et al.'s curvature map
``|lambda_min / lambda_max|`` on a filter-normalized random plane around the model, written to
``DIR/curvature_map.h5`` (resumable, like ``landscape --out``; ``--workers N`` shards it) and
``DIR/curvature_map.png``.

Examples
--------
>>> import argparse
>>> p = argparse.ArgumentParser()
>>> register(p.add_subparsers())
>>> p.parse_args(["hessian", "--model", "mlp", "--out", "d"]).k
5
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import validate_float, validate_int
from .landscape import prepare_model
from .options import OUT_DIRECTORY, output_directory
from .resolve import resolve_task
from .workers import LAUNCH_DIR_ENV, run_workers, watch_parent

DESCRIPTION = __doc__.split("Examples")[0].split("\n\n", 1)[1].replace("``", "")


def run(args: argparse.Namespace) -> int:
    validate_int(args.k, "--k", low=1)
    validate_int(args.trace_samples, "--trace-samples", low=2)
    validate_int(args.density_steps, "--density-steps", low=2)
    validate_int(args.lanczos_steps, "--lanczos-steps", low=2)
    validate_int(args.resolution, "--resolution", low=2)
    validate_int(args.workers, "--workers", low=1)
    validate_float(args.extent, "--extent", low=0.0, strict_low=True)
    out = output_directory(args.out)
    if args.map and int(os.environ.get("RANK", "0")) == 0:  # a refused store says so now
        from ..store import check_store_path

        check_store_path(out / "curvature_map.h5")
    if args.device is not None:
        from ..engine import resolve_device

        resolve_device(args.device)  # a device this machine lacks is said before any training
    watch_parent()  # a worker of --workers ends with its launcher
    task = resolve_task(args.model, args.data, args.loss, seed=args.seed)
    args.quiet = args.quiet or int(os.environ.get("RANK", "0")) != 0
    args.trajectory = None
    prepare_model(args, task)
    if args.map:
        if args.workers > 1:
            import torch

            with tempfile.TemporaryDirectory() as tmp:
                ckpt = Path(tmp) / "model.pt"
                torch.save(task.model.state_dict(), ckpt)
                env = {LAUNCH_DIR_ENV: tmp}
                return run_workers(args.argv, args.workers, {"--checkpoint": str(ckpt)}, env)
        return curvature_map(args, task, out)
    return at_model(args, task, out)


def at_model(args: argparse.Namespace, task: Any, out: Path) -> int:
    import numpy as np

    from ..hessian import density_estimate, extreme_eigenpairs, hvp, trace_estimate
    from ..jsonable import to_jsonable
    from ..plot import plot_spectral_density, save_figure

    op = hvp(task.model, task.data, task.loss, device=args.device)
    spec = extreme_eigenpairs(op, k=args.k, which=args.which, tol=args.tol, seed=args.seed)
    trace = trace_estimate(op, n_samples=args.trace_samples, seed=args.seed)
    dens = density_estimate(op, steps=args.density_steps, n_runs=args.density_runs, seed=args.seed)
    summary = {
        "model": args.model,
        "checkpoint": str(args.checkpoint) if args.checkpoint else None,
        "data": task.data_spec,
        "loss": task.loss,
        "bn": "eval",
        "loss_value": op.loss(),
        "n_params": int(op.shape[0]),
        "spectrum": spec.to_dict(),
        "trace": trace.to_dict(),
        "density": {"steps": int(dens.nodes.shape[1]), "runs": int(dens.nodes.shape[0])},
    }
    (out / "hessian.json").write_text(json.dumps(to_jsonable(summary), indent=2))
    np.savetxt(
        out / "spectral_density.csv",
        np.column_stack([dens.grid, dens.density]),
        delimiter=",",
        header="eigenvalue,density",
        comments="",
    )
    save_figure(
        plot_spectral_density(dens, eigenvalues=spec.eigenvalues), out / "spectral_density.png"
    )
    if not args.quiet:
        vals = ", ".join(f"{v:.4g}" for v in spec.eigenvalues)
        print(
            f"eigenvalues ({args.which}): {vals} ({spec.n_hvp} products); trace "
            f"{trace.value:.4g} +- {trace.stderr:.2g}; wrote {out}/hessian.json, "
            "spectral_density.csv, spectral_density.png"
        )
    return 0


def curvature_map(args: argparse.Namespace, task: Any, out: Path) -> int:
    import numpy as np

    from ..directions import random_directions
    from ..grid import Grid
    from ..hessian import hessian_map
    from ..plot import plot_contour, save_figure
    from ..projectors import PlaneProjector

    directions = random_directions(
        task.model, n_components=2, normalization=args.normalization, seed=args.seed
    )
    proj = PlaneProjector(task.model, directions)
    grid = Grid.square(resolution=args.resolution, extent=args.extent, n_components=2)
    rank = int(os.environ.get("RANK", "0"))
    cmap = hessian_map(
        task.model,
        task.data,
        task.loss,
        proj,
        grid,
        store=out / "curvature_map.h5",
        k=args.lanczos_steps,
        seed=args.seed,
        progress=not args.quiet,
        device=args.device,
    )
    if rank == 0:
        fig = plot_contour(cmap, title="|lambda_min / lambda_max| (Li et al.)", log=False)
        save_figure(fig, out / "curvature_map.png")
        if not args.quiet:
            ratio = cmap.values[np.isfinite(cmap.values)]
            print(
                f"wrote {out}/curvature_map.h5 and curvature_map.png: {grid.size} points, "
                f"ratio {ratio.min():.3g} to {ratio.max():.3g}"
            )
    return 0


def register(subparsers: Any) -> None:
    """Add ``hessian`` to the ``losstopo`` command's subparsers."""
    p = subparsers.add_parser(
        "hessian",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="Hessian eigenvalues, trace and spectral density at a model, or a curvature map",
        description=DESCRIPTION,
    )
    p.add_argument(
        "--model", required=True, help="built-in name (mlp, cnn, ...) or module:function"
    )
    p.add_argument("--checkpoint", help="state_dict file to load into the model (weights_only)")
    p.add_argument("--allow-pickle", action="store_true", help="trust a pickled checkpoint")
    p.add_argument("--data", help="built-in data name or module:function")
    p.add_argument("--loss", choices=["cross_entropy", "mse"])
    p.add_argument("--out", required=True, metavar="DIR", help=OUT_DIRECTORY)
    p.add_argument("--k", type=int, default=5, help="extreme eigenvalues (default 5)")
    p.add_argument("--which", default="both", choices=["largest", "smallest", "both"])
    p.add_argument("--tol", type=float, default=1e-3, help="Lanczos relative tolerance")
    p.add_argument("--trace-samples", type=int, default=100, help="Hutchinson samples")
    p.add_argument("--density-steps", type=int, default=64, help="Lanczos steps per density run")
    p.add_argument("--density-runs", type=int, default=4, help="density runs (start vectors)")
    p.add_argument("--map", action="store_true", help="a curvature map instead of one point")
    p.add_argument("--resolution", type=int, default=11, help="--map: points per axis")
    p.add_argument("--extent", type=float, default=1.0, help="--map: axes span [-extent, extent]")
    p.add_argument("--normalization", default="filter", choices=["filter", "layer", "none"])
    p.add_argument("--lanczos-steps", type=int, default=20, help="--map: products per point")
    p.add_argument("--workers", type=int, default=1, help="--map: local processes (gloo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=10, help="training epochs for a built-in model")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary")
    p.set_defaults(func=run)

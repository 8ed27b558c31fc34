"""``losstopo landscape``: a loss field around a model, on a random plane or a fitted projector.

``--projector random`` (the default) spans filter-normalized random directions around the model
(Li et al.); ``hessian`` spans the top Hessian eigenvectors at the model; ``pca``, ``kpca``, ``umap`` and ``autoencoder`` are fitted on ``--trajectory`` (a
folder of ``*.pt`` checkpoints or a ``.npz`` written by :meth:`losstopo.Trajectory.save`), the grid
covers the projected trajectory, and the trajectory is drawn in the field. A built-in model
trained here (``mlp``, ``cnn``, ``resnet20[-noskip]``, ``resnet56[-noskip]``, ``pinn`` without
``--checkpoint``; the CNN and ResNets on the 8x8 digit images) records its own trajectory, used
when ``--trajectory`` is not given.

Examples
--------
>>> check_projector_name("random")
'random'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameterError, validate_float, validate_int
from .options import OUT_FILE, add_n_components, output_file
from .resolve import Task, load_trajectory, resolve_task, train_builtin
from .workers import LAUNCH_DIR_ENV, run_workers, watch_parent

if TYPE_CHECKING:
    from ..field import LossField
    from ..trajectory import Trajectory

DESCRIPTION = """\
Evaluate the loss on a grid and write it as one HDF5 field (--out FILE).
--projector random (default): filter-normalized random directions around the model.
--projector hessian: the top Hessian eigenvectors at the model (scaled by --normalization).
--projector pca|kpca|umap|autoencoder: fitted on --trajectory (a folder of *.pt checkpoints or a
.npz written by Trajectory.save); the grid covers the projected trajectory, which is drawn in the
field. A built-in model trained here (mlp, cnn, resnet20[-noskip], resnet56[-noskip], pinn
without --checkpoint) uses its own trajectory when --trajectory is not given."""


def check_projector_name(name: str) -> str:
    """``name`` if it is ``random`` or a decoding projector of the registry, else one sentence."""
    if name in ("random", "hessian"):
        return name
    from ..projectors import PROJECTORS

    if name in PROJECTORS and name != "plane" and PROJECTORS[name].decodes:
        return name
    choices = ", ".join(
        ["random", "hessian", *(k for k, c in PROJECTORS.items() if c.decodes and k != "plane")]
    )
    if name in PROJECTORS:
        raise InvalidParameterError(
            f"--projector {name!r} cannot decode grid points to parameters; choose one of "
            f"{choices}."
        )
    raise InvalidParameterError(f"Unknown --projector {name!r}; choose one of {choices}.")


def run(args: argparse.Namespace) -> int:
    return landscape(args)[0]


def landscape(args: argparse.Namespace) -> tuple[int, Task]:
    """Run ``losstopo landscape``; the exit status and the task with its prepared model (loaded
    from ``--checkpoint`` or trained here), which ``losstopo sweep`` analyses further."""
    validate_int(args.resolution, "resolution", low=2)
    extent = validate_float(args.extent, "extent", low=0.0, strict_low=True)
    if extent > 1e300:  # the axis spacing (2 * extent / (resolution - 1)) would overflow
        raise InvalidParameterError(
            f"--extent {extent:g} is too large to make a grid of; give a value up to 1e300."
        )
    validate_float(args.margin, "margin", low=0.0)
    k = validate_int(args.n_components, "n_components", low=1, high=3)
    out = output_file(args.out)
    validate_int(args.workers, "--workers", low=1)
    if int(os.environ.get("RANK", "0")) == 0:  # before any training: a refused --out says so now
        from ..store import check_memory, check_store_path

        check_memory((args.resolution, k))
        check_store_path(out)
    if args.device is not None:
        from ..engine import resolve_device

        resolve_device(args.device)  # a device this machine lacks is said before any training
    watch_parent()  # a worker of --workers ends with its launcher
    name = check_projector_name(args.projector)
    task = resolve_task(args.model, args.data, args.loss, seed=args.seed)
    own_trajectory = task.trainable and not args.checkpoint
    if name not in ("random", "hessian") and not args.trajectory and not own_trajectory:
        raise InvalidParameterError(
            f"--projector {name} is fitted on a trajectory; pass --trajectory DIR_OR_FILE (a "
            "folder of *.pt checkpoints or a .npz from Trajectory.save), or use a built-in model "
            "(mlp, cnn, resnet20, ..., pinn) without --checkpoint to train one here."
        )
    given = None
    if args.trajectory:  # read first: a mistake shows before any training
        given = load_trajectory(args.trajectory, task.model, allow_pickle=args.allow_pickle)
    trained = prepare_model(args, task)
    if args.workers > 1:
        return spawn(args, task, trained, name), task
    traj = given if given is not None else (trained if name not in ("random", "hessian") else None)
    return evaluate_and_save(args, task, name, k, traj, out), task


def prepare_model(args: argparse.Namespace, task: Task) -> Trajectory | None:
    """Load ``--checkpoint`` into the model or train a built-in; the trajectory trained, if any."""
    from ..checkpoints import load_into

    if args.checkpoint:
        load_into(task.model, args.checkpoint, allow_pickle=args.allow_pickle)
        return None
    if task.trainable:
        if not args.quiet and int(os.environ.get("RANK", "0")) == 0:
            print(
                f"training built-in {args.model} on {task.data_spec} (seed {args.seed}, "
                f"{args.epochs} epochs)"
            )
        return train_builtin(
            task,
            epochs=args.epochs,
            seed=args.seed,
            run=args.model,
            progress=not args.quiet and args.workers == 1,
        )
    if not args.quiet:
        what = "built-in" if ":" not in args.model else "the model of"
        print(
            f"note: {what} {args.model} is not trained here and no --checkpoint is given; it is "
            "evaluated with the weights it is built with (a random initialisation unless it loads "
            "its own). Pass --checkpoint FILE.pt to evaluate trained weights.",
            file=sys.stderr,
        )
    return None


def spawn(args: argparse.Namespace, task: Task, trained: Trajectory | None, name: str) -> int:
    """Hand the prepared model (and trajectory) to ``--workers`` local processes."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "model.pt"
        torch.save(task.model.state_dict(), ckpt)
        replace = {"--checkpoint": str(ckpt)}
        if name not in ("random", "hessian") and not args.trajectory and trained is not None:
            replace["--trajectory"] = str(Path(tmp) / "trajectory.npz")
            trained.save(replace["--trajectory"])
        sources = {"checkpoint": args.checkpoint, "trajectory": args.trajectory}
        env = {LAUNCH_DIR_ENV: tmp, SOURCES_ENV: json.dumps(sources)}
        return run_workers(args.argv, args.workers, replace, env)


#: A worker's environment variable: the ``--checkpoint``/``--trajectory`` the user gave the launcher.
SOURCES_ENV = "LOSSTOPO_SOURCES"


def given_sources(args: argparse.Namespace) -> dict[str, str | None]:
    """The checkpoint and trajectory the user named (a worker's are the launcher's temporaries)."""
    given = json.loads(os.environ.get(SOURCES_ENV, "null") or "null")
    if not isinstance(given, dict):
        given = {"checkpoint": args.checkpoint, "trajectory": args.trajectory}
    return {k: str(given[k]) if given.get(k) else None for k in ("checkpoint", "trajectory")}


def make_fitted(name: str, k: int, seed: int, traj: Trajectory, progress: bool) -> Any:
    """The registry's projector ``name`` with ``k`` components, fitted on ``traj``."""
    from ..projectors import make_projector

    proj = make_projector(name, n_components=k, random_state=seed)
    if "progress" in proj.get_params(deep=False):
        proj.set_params(progress=progress)
    return proj.fit(traj)


def evaluate_and_save(
    args: argparse.Namespace,
    task: Task,
    name: str,
    k: int,
    traj: Trajectory | None,
    out: Path,
) -> int:
    from ..directions import random_directions
    from ..evaluate import evaluate
    from ..grid import Grid
    from ..projectors import PlaneProjector

    if name == "random":
        directions = random_directions(
            task.model,
            n_components=k,
            normalization=args.normalization,
            ignore=None if args.ignore == "none" else args.ignore,
            seed=args.seed,
        )
        proj: Any = PlaneProjector(task.model, directions)
        grid = Grid.square(resolution=args.resolution, extent=args.extent, n_components=k)
    elif name == "hessian":
        from ..hessian import HessianProjector

        proj = HessianProjector(
            task.model,
            task.data,
            task.loss,
            n_components=k,
            normalization=args.normalization,
            seed=args.seed,
            device=args.device,
        ).fit()
        grid = Grid.square(resolution=args.resolution, extent=args.extent, n_components=k)
    else:
        assert traj is not None
        proj = make_fitted(name, k, args.seed, traj, progress=not args.quiet)
        grid = Grid.around(proj.transform(traj), resolution=args.resolution, margin=args.margin)
    rank = int(os.environ.get("RANK", "0"))
    t0 = time.perf_counter()
    field = evaluate(
        task.model,
        task.data,
        task.loss,
        proj,
        grid,
        store=out,
        mode=args.mode,
        device=args.device,
        progress=not args.quiet and rank == 0,
        bn=args.bn,
        trajectory=traj,
        attrs={
            "seed": args.seed,
            "normalization": args.normalization,
            "ignore": args.ignore,
            "model_spec": args.model,
            "data_spec": task.data_spec,
            **given_sources(args),
        },
        deterministic=args.deterministic,
    )
    if rank == 0 and not args.quiet:
        centred = name in ("random", "hessian")
        print(describe_result(field, out, time.perf_counter() - t0, centred=centred))
    return 0


def describe_result(field: LossField, out: Path, seconds: float, centred: bool) -> str:
    """One line: where the field went, how long it took, its centre value and its minimum."""
    import numpy as np

    v = field.values[np.isfinite(field.values)]
    low = float(v.min()) if v.size else float("nan")
    where = ", ".join(f"{n}={c:.3g}" for n, c in zip(field.grid.names, field.argmin(), strict=True))
    centre = ""
    if centred:
        idx = tuple(int(np.argmin(np.abs(a))) for a in field.grid.axes.values())
        centre = f"loss at centre {float(field.values[idx]):.4g}, "
    return f"wrote {out}: {field.grid.size} points in {seconds:.1f} s; {centre}min {low:.4g} at {where}"


def register(subparsers: Any) -> None:
    """Add ``landscape`` to the ``losstopo`` command's subparsers."""
    land = subparsers.add_parser(
        "landscape",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="evaluate a landscape around a model (random plane) or along a trajectory",
        description=DESCRIPTION,
    )
    land.add_argument(
        "--model", required=True, help="built-in name (mlp, cnn, resnet20, ...) or module:function"
    )
    land.add_argument("--checkpoint", help="state_dict file to load into the model (weights_only)")
    land.add_argument(
        "--allow-pickle", action="store_true", help="trust a checkpoint that needs full pickle"
    )
    land.add_argument(
        "--data",
        help="built-in data name (digits, digits-images, synthetic, ...) or module:function",
    )
    land.add_argument(
        "--loss",
        choices=["cross_entropy", "mse"],
        help="default: mse for the built-in pinn, else cross_entropy",
    )
    land.add_argument(
        "--projector",
        default="random",
        metavar="NAME",
        help="random (default: filter-normalized random plane around the model), hessian (the "
        "top Hessian eigenvectors at the model, scaled by --normalization), or pca, kpca, umap, "
        "autoencoder fitted on --trajectory",
    )
    land.add_argument(
        "--trajectory",
        metavar="DIR_OR_FILE",
        help="folder of *.pt checkpoints or a Trajectory.save .npz: fits --projector and is drawn "
        "in the field (default for a built-in trained here: its own trajectory)",
    )
    land.add_argument("--resolution", type=int, default=41, help="points per axis (default 41)")
    land.add_argument(
        "--extent", type=float, default=1.0, help="random plane: each axis spans [-extent, extent]"
    )
    land.add_argument(
        "--margin",
        type=float,
        default=0.2,
        help="fitted projector: widen the projected trajectory's box by this fraction (default 0.2)",
    )
    add_n_components(
        land, help="1, 2 or 3 directions or components (default 2)", aliases=("--dims",)
    )
    land.add_argument(
        "--normalization",
        default="filter",
        choices=["filter", "layer", "none", "weight", "dfilter", "dlayer"],
    )
    land.add_argument("--ignore", default="biasbn", choices=["biasbn", "none"])
    land.add_argument("--seed", type=int, default=0)
    land.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="training epochs for a built-in model without --checkpoint",
    )
    land.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help=f"{OUT_FILE}: the HDF5 field; resumes a matching partial run",
    )
    land.add_argument(
        "--workers", type=int, default=1, help="local processes sharding the grid (gloo)"
    )
    land.add_argument(
        "--mode",
        default="auto",
        choices=["auto", "sequential", "vmap"],
        help="vmap: several points per call (GPUs); auto: vmap on CUDA for models without "
        "convolutions, else sequential",
    )
    land.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)"
    )
    land.add_argument(
        "--bn", default="eval", choices=["eval", "recompute"], help="BatchNorm policy"
    )
    land.add_argument(
        "--deterministic",
        action="store_true",
        help="skip the speed measurement: a fixed batch size and engine, so that two runs (and a "
        "resumed one) give the same values bit for bit",
    )
    land.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    land.set_defaults(func=run)

"""``losstopo compare-projectors``: the fidelity table of PCA, Kernel-PCA, UMAP and the auto-encoder.

Fits each projector on the same trajectories (built-in models trained here from ``--runs`` seeds,
or ``--checkpoints`` folders, one run per folder) and prints the table Neuro-Visualizer and
GlobScope report (projection error, loss error, relative loss error, on the fitted checkpoints and
on held-out ones), then writes it as ``fidelity.csv`` and ``fidelity.png`` in the ``--out``
directory.

Examples
--------
>>> parse_projectors("pca,ae")
['pca', 'autoencoder']
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameterError, validate_int
from .options import OUT_DIRECTORY, add_n_components, output_directory
from .resolve import Task, resolve_model, resolve_task, train_builtin

if TYPE_CHECKING:
    from ..trajectory import Trajectory

PROJECTOR_NAMES = ("pca", "kpca", "umap", "autoencoder")
ALIASES = {"ae": "autoencoder", "kernel-pca": "kpca", "kernelpca": "kpca"}


def parse_projectors(spec: str) -> list[str]:
    """The projector names of a comma-separated ``--projectors`` (aliases resolved, no repeats)."""
    names = [s.strip().lower() for s in spec.split(",") if s.strip()]
    names = [ALIASES.get(n, n) for n in names]
    for n in names:
        if n not in PROJECTOR_NAMES:
            raise InvalidParameterError(
                f"Unknown projector {n!r} in --projectors; choose from {', '.join(PROJECTOR_NAMES)} "
                "(comma-separated)."
            )
    if not names:
        raise InvalidParameterError("--projectors is empty; give e.g. pca,kpca,umap,autoencoder.")
    return list(dict.fromkeys(names))


def trajectory_of(args: argparse.Namespace, task: Task) -> Trajectory:
    """The checkpoints of ``--checkpoints`` folders, or of ``--runs`` built-in runs trained here.

    Training leaves the last run's model in ``task.model``.
    """
    from ..trajectory import Trajectory

    runs = validate_int(args.runs, "runs", low=1)
    epochs = validate_int(args.epochs, "epochs", low=1)
    parts = []
    if args.checkpoints:
        for i, folder in enumerate(args.checkpoints):
            if not Path(folder).exists():
                raise InvalidParameterError(
                    f"--checkpoints {folder} does not exist; give a folder of *.pt files."
                )
            parts.append(
                Trajectory.from_checkpoints(folder, task.model, run=Path(folder).name or f"run{i}")
            )
        return Trajectory.concat(parts)
    for r in range(runs):
        seed = args.seed + r
        net = resolve_model(args.model, seed=seed, in_channels=task.in_channels)
        parts.append(
            train_builtin(
                task, net, epochs=epochs, seed=seed, run=f"seed{seed}", progress=not args.quiet
            )
        )
        task.model = net
    return Trajectory.concat(parts)


def run(args: argparse.Namespace) -> int:
    k = validate_int(args.n_components, "n_components", low=1, high=3)
    names = parse_projectors(args.projectors)
    out = output_directory(args.out, create=False)
    from ..fidelity import compare_projectors, default_projectors
    from ..plot import plot_fidelity, save_figure

    task = resolve_task(args.model, args.data, args.loss, seed=args.seed, physics=True)
    traj = trajectory_of(args, task)
    if len(traj) < 6 and not args.no_holdout:
        raise InvalidParameterError(
            f"The trajectory has {len(traj)} checkpoints, too few to hold half of them out; use "
            "more --epochs or --no-holdout."
        )
    available = default_projectors(k, args.seed, progress=not args.quiet)
    out.mkdir(exist_ok=True)
    if not args.quiet:
        print(
            f"fitting {', '.join(names)} on {len(traj)} checkpoints of {len(traj.run_ids)} run(s), "
            f"{traj.n_params} parameters"
        )
    table = compare_projectors(
        task.model,
        task.data,
        task.loss,
        traj,
        projectors={n: available[n] for n in names},
        holdout=None if args.no_holdout else True,
        csv_path=out / "fidelity.csv",
        device=args.device,
    )
    save_figure(plot_fidelity(table.error_table()), out / "fidelity.png", dpi=120)
    print(table)
    if not args.quiet:
        print(f"wrote {out / 'fidelity.csv'} and {out / 'fidelity.png'}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``compare-projectors`` to the ``losstopo`` command's subparsers."""
    p = subparsers.add_parser(
        "compare-projectors",
        help="fidelity table of PCA, Kernel-PCA, UMAP and the auto-encoder on trajectories",
    )
    p.add_argument(
        "--model",
        default="mlp",
        help="built-in name (mlp, cnn, resnet20, pinn, ...) or module:function",
    )
    p.add_argument("--data", help="built-in data name or module:function (default: the model's)")
    p.add_argument(
        "--loss", choices=["cross_entropy", "mse"], help="default: mse for pinn, else cross_entropy"
    )
    p.add_argument(
        "--checkpoints",
        nargs="+",
        metavar="FOLDER",
        help="folders of *.pt state_dicts, one run each (default: train built-in runs)",
    )
    p.add_argument(
        "--runs", type=int, default=1, help="built-in training runs from seeds seed, seed+1, ..."
    )
    p.add_argument(
        "--epochs", type=int, default=20, help="epochs per built-in run (pinn: 20 steps each)"
    )
    p.add_argument(
        "--projectors",
        default=",".join(PROJECTOR_NAMES),
        help="comma-separated subset of " + ", ".join(PROJECTOR_NAMES),
    )
    add_n_components(p, help="latent dimensions, 1 to 3 (default 2)", aliases=("--components",))
    p.add_argument(
        "--no-holdout", action="store_true", help="skip the held-out fit (every other checkpoint)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device",
        default=None,
        help="device for the loss evaluations (default: CUDA when available)",
    )
    p.add_argument(
        "--out",
        default="fidelity-output",
        metavar="DIR",
        help=f"{OUT_DIRECTORY}: fidelity.csv and fidelity.png; default fidelity-output",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)

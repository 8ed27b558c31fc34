"""``losstopo compare-projectors``: the fidelity table of PCA, Kernel-PCA, UMAP and the auto-encoder.

Fits each projector on the same trajectories (built-in models trained here from ``--runs`` seeds,
or ``--checkpoints`` folders, one run per folder) and prints the table Neuro-Visualizer and
GlobScope report (projection error, loss error, relative loss error, on the fitted checkpoints and
on held-out ones), then writes it as ``fidelity.csv`` and ``fidelity.png`` in ``--out``.

Registered by :func:`losstopo.cli.build_parser` through :func:`register`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import InvalidParameterError, validate_int

PROJECTOR_NAMES = ("pca", "kpca", "umap", "autoencoder")


def _parse_projectors(spec: str) -> list[str]:
    names = [s.strip().lower() for s in spec.split(",") if s.strip()]
    aliases = {"ae": "autoencoder", "kernel-pca": "kpca", "kernelpca": "kpca"}
    names = [aliases.get(n, n) for n in names]
    for n in names:
        if n not in PROJECTOR_NAMES:
            raise InvalidParameterError(
                f"Unknown projector {n!r} in --projectors; choose from {', '.join(PROJECTOR_NAMES)} "
                "(comma-separated)."
            )
    if not names:
        raise InvalidParameterError("--projectors is empty; give e.g. pca,kpca,umap,autoencoder.")
    return list(dict.fromkeys(names))


def _trajectory(args: argparse.Namespace) -> tuple[Any, Any, Any, str]:
    """(trajectory, model, data, loss) from checkpoints folders or freshly trained built-ins."""
    from . import Trajectory, train
    from .cli import resolve_data, resolve_model
    from .datasets import DEFAULT_DATA_FOR_MODEL

    runs = validate_int(args.runs, "runs", low=1)
    epochs = validate_int(args.epochs, "epochs", low=1)
    is_pinn = args.model == "pinn"
    loss = args.loss or ("mse" if is_pinn else "cross_entropy")
    if is_pinn and not args.data:
        from .pinn import poisson_data

        data: Any = poisson_data()
    else:
        data_spec = args.data or DEFAULT_DATA_FOR_MODEL.get(args.model)
        if data_spec is None:
            raise InvalidParameterError(
                f"Model {args.model!r} has no built-in data; pass --data NAME or --data module:function."
            )
        data = resolve_data(data_spec)
    model = resolve_model(args.model, seed=args.seed)
    parts = []
    if args.checkpoints:
        for i, folder in enumerate(args.checkpoints):
            if not Path(folder).exists():
                raise InvalidParameterError(
                    f"--checkpoints {folder} does not exist; give a folder of *.pt files."
                )
            parts.append(
                Trajectory.from_checkpoints(folder, model, run=Path(folder).name or f"run{i}")
            )
    else:
        for r in range(runs):
            seed = args.seed + r
            net = resolve_model(args.model, seed=seed)
            if is_pinn:
                from .pinn import train_pinn

                traj, net = train_pinn(
                    net,
                    steps=20 * epochs,
                    record_every=20,
                    seed=seed,
                    run=f"seed{seed}",
                    progress=not args.quiet,
                )
            else:
                traj = train(
                    net,
                    data,
                    epochs=epochs,
                    seed=seed,
                    loss=loss,
                    run=f"seed{seed}",
                    lr=0.05 if args.model == "cnn" else 0.1,
                    progress=not args.quiet,
                )
            parts.append(traj)
            model = net
    return Trajectory.concat(parts), model, data, loss


def cmd_compare_projectors(args: argparse.Namespace) -> int:
    from .fidelity import compare_projectors, default_projectors

    k = validate_int(args.components, "components", low=1, high=3)
    names = _parse_projectors(args.projectors)
    out = Path(args.out)
    if not out.resolve().parent.is_dir():
        raise InvalidParameterError(
            f"The directory {out.resolve().parent} for --out does not exist; create it first."
        )
    traj, model, data, loss = _trajectory(args)
    if len(traj) < 6 and not args.no_holdout:
        raise InvalidParameterError(
            f"The trajectory has {len(traj)} checkpoints, too few to hold half of them out; use "
            "more --epochs or --no-holdout."
        )
    available = default_projectors(k, args.seed, progress=not args.quiet)
    projectors = {n: available[n] for n in names}
    out.mkdir(parents=True, exist_ok=True)
    if not args.quiet:
        print(
            f"fitting {', '.join(names)} on {len(traj)} checkpoints of {len(traj.run_ids)} run(s), "
            f"{traj.n_params} parameters"
        )
    table = compare_projectors(
        traj,
        model,
        data,
        loss,
        projectors=projectors,
        holdout=None if args.no_holdout else True,
        csv_path=out / "fidelity.csv",
        plot_path=out / "fidelity.png",
        device=args.device,
    )
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
        "--model", default="mlp", help="built-in name (mlp, cnn, pinn) or module:function"
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
    p.add_argument(
        "--components", type=int, default=2, help="latent dimensions, 1 to 3 (default 2)"
    )
    p.add_argument(
        "--no-holdout", action="store_true", help="skip the held-out fit (every other checkpoint)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="device for the loss evaluations (default cpu)")
    p.add_argument(
        "--out", default="fidelity-output", help="output directory for fidelity.csv/.png"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_compare_projectors)

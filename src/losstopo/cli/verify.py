"""``losstopo verify FIELD``: check a field's basins and separations in the full parameter space.

The field is decoded by the projector its file carries (its ``/projector`` group: a plane, PCA,
Hessian directions or an auto-encoder; an auto-encoder whose checkpoints were too large to store
takes them from ``--trajectory``). A file without one (written before projectors were stored)
gets its plane rebuilt from the model and the seed, normalization and ignore rule of its random
directions, checked against the fingerprint stored with the field. Each persistent minimum of the field's
topology (the one stored in the file, or a new analysis with ``--min-persistence``) is decoded to
parameters and checked: full-space Hessian extremes and the barrier along the straight segment to
the basin it merges into. The check is written back into FIELD with its topology (atomically) and
printed as a table. Fields of Kernel-PCA and UMAP (not stored) are checked in Python, with the
refitted projector passed to ``losstopo.verify_topology``.

Examples
--------
>>> import argparse
>>> p = argparse.ArgumentParser()
>>> register(p.add_subparsers())
>>> p.parse_args(["verify", "f.h5", "--model", "mlp"]).fraction
0.5
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InvalidParameterError, validate_float, validate_int
from .landscape import prepare_model
from .resolve import load_trajectory, resolve_task

DESCRIPTION = __doc__.split("Examples")[0].split("\n\n", 1)[1].replace("``", "")


def rebuild_plane(field: Any, model: Any, seed: int | None = None) -> Any:
    """The PlaneProjector of a ``landscape --projector random`` field, from ``model`` and attrs.

    ``seed`` overrides the recorded seed of the directions. Refuses other projectors, and a
    plane whose fingerprint differs from the one stored with the field (another model or seed).
    """
    from ..directions import random_directions
    from ..projectors import PlaneProjector

    desc = field.attrs.get("projector") or {}
    drawn = desc.get("directions") or {}
    if desc.get("name") != "PlaneProjector" or drawn.get("kind") != "random":
        name = desc.get("name", "an unrecorded projector")
        raise InvalidParameterError(
            f"The field was evaluated with {name} and its file carries no projector (written "
            "before field files stored them), so it cannot be decoded here; recompute it with "
            "`losstopo landscape`, or in Python pass the projector to losstopo.verify_topology."
        )
    directions = random_directions(
        model,
        n_components=int(desc.get("n_components", field.grid.ndim)),
        normalization=drawn.get("normalization", "filter"),
        ignore=drawn.get("ignore"),
        seed=int(drawn.get("seed", 0) if seed is None else seed),
        include=drawn.get("include", "all"),
        orthogonalize=bool(drawn.get("orthogonalize", False)),
    )
    proj = PlaneProjector(model, directions)
    stored = field.attrs.get("projector_fingerprint")
    if stored is not None and proj.fingerprint() != stored:
        raise InvalidParameterError(
            f"The plane rebuilt from this model (fingerprint {proj.fingerprint()}) is not the "
            f"field's ({stored}); pass the --model, --checkpoint (or --seed and --epochs of a "
            "built-in trained here) that `losstopo landscape` used for this field, and "
            "--projector-seed if its directions had another seed."
        )
    return proj


def run(args: argparse.Namespace) -> int:
    from ..field import LossField
    from ..io import store_topology
    from ..topology import analyze
    from ..verify import format_check, verify_topology

    validate_int(args.n_points, "--n-points", low=3)
    validate_int(args.steps, "--steps", low=2)
    validate_float(args.fraction, "--fraction", low=0.0)
    field = LossField.load(args.file)
    if args.seed is None:
        args.seed = int(field.attrs.get("seed", 0))
    task = resolve_task(args.model, args.data, args.loss, seed=args.seed)
    args.workers = 1
    prepare_model(args, task)
    traj = load_trajectory(args.trajectory, task.model) if args.trajectory else None
    if field.projector_state is not None and args.projector_seed is None:
        proj = field.restore_projector(checkpoints=traj)
    else:
        proj = rebuild_plane(field, task.model, args.projector_seed)
    topo = field.topology
    if topo is None or args.min_persistence is not None:
        threshold = 0.0 if args.min_persistence is None else args.min_persistence
        topo = analyze(field, min_persistence=threshold, relative=args.relative)
    check = verify_topology(
        task.model, task.data, task.loss, field, topo, projector=proj, trajectory=traj,
        n_points=args.n_points, fraction=args.fraction, steps=args.steps, seed=args.seed,
        device=args.device,
    )  # fmt: skip
    store_topology(args.file, check.attach(topo))  # atomic; a partial run stays resumable
    if not args.quiet:
        print(format_check(check))
        print(f"stored the check with the topology in {args.file}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``verify`` to the ``losstopo`` command's subparsers."""
    p = subparsers.add_parser(
        "verify",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="check a field's basins and separations in the full parameter space",
        description=DESCRIPTION,
    )
    p.add_argument("file", help="a field file of `losstopo landscape` (or evaluate's store)")
    p.add_argument("--model", required=True, help="the model the field was computed for")
    p.add_argument("--checkpoint", help="state_dict file to load into the model (weights_only)")
    p.add_argument("--allow-pickle", action="store_true", help="trust a pickled checkpoint")
    p.add_argument("--data", help="built-in data name or module:function")
    p.add_argument("--loss", choices=["cross_entropy", "mse"])
    p.add_argument(
        "--seed", type=int, default=None, help="model seed (default: the one the field records)"
    )
    p.add_argument(
        "--projector-seed", type=int, default=None, help="seed of the plane's directions "
        "(default: the one the field records)",
    )  # fmt: skip
    p.add_argument("--epochs", type=int, default=10, help="training epochs for a built-in model")
    p.add_argument(
        "--trajectory", metavar="DIR_OR_FILE", help="the fitted checkpoints (a folder of *.pt "
        "or a Trajectory .npz), for each minimum's distance to the nearest (and the "
        "auto-encoder's, when the file could not store them)",
    )  # fmt: skip
    p.add_argument(
        "--min-persistence", type=float, default=None,
        help="analyse the field again at this threshold (default: the topology stored in the "
        "file, else 0)",
    )  # fmt: skip
    p.add_argument("--relative", action="store_true", help="--min-persistence as a fraction")
    p.add_argument("--fraction", type=float, default=0.5, help="confirmation fraction (0.5)")
    p.add_argument("--n-points", type=int, default=21, help="points on each straight segment")
    p.add_argument("--steps", type=int, default=20, help="Lanczos products per minimum")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=run)

"""``losstopo connect A.pt B.pt``: the straight path and a trained curve between two models.

Writes into ``--out`` (a directory): the profiles ``linear.csv``/``.h5`` and ``KIND.csv``/``.h5``,
the curve ``curve.pt``, the landscape of the plane through A, B and the bend with both paths
(``plane.h5``), the plots ``barrier.png`` and ``plane_contour.png``, and a ParaView bundle in
``paraview/``. Prints the two barriers.
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

from .options import OUT_DIRECTORY, output_directory
from .resolve import resolve_task

EPILOG = """\
Both checkpoints are state_dicts of --model (read with weights_only=True). The curve is trained
on --data (default: the model's built-in data) and the profiles are evaluated on it."""


def load_pair(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The task and the two models loaded from ``args.a`` and ``args.b``."""
    from ..checkpoints import load_into

    task = resolve_task(args.model, args.data, args.loss, seed=args.seed)
    model_b = copy.deepcopy(task.model)
    load_into(task.model, args.a, allow_pickle=args.allow_pickle)
    load_into(model_b, args.b, allow_pickle=args.allow_pickle)
    return task, task.model, model_b


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .. import plot
    from ..connectivity import fit_curve, interpolate, plane_landscape, validate_n_points
    from ..errors import validate_float, validate_int
    from ..export import write_connectivity

    validate_n_points(args.n_points)
    validate_int(args.epochs, "--epochs", low=1)
    validate_int(args.resolution, "--resolution", low=2)
    validate_float(args.lr, "--lr", low=0.0, strict_low=True)
    out = output_directory(args.out)
    task, model_a, model_b = load_pair(args)
    data, loss = task.data, task.loss
    t0 = time.perf_counter()
    line = interpolate(model_a, model_b, data, loss, n_points=args.n_points, bn=args.bn)
    curve = fit_curve(model_a, model_b, data, loss, kind=args.kind, epochs=args.epochs,
                      lr=args.lr, seed=args.seed, progress=not args.quiet)  # fmt: skip
    bent = curve.evaluate(data, loss, n_points=args.n_points, bn=args.bn)
    for name, profile in (("linear", line), (args.kind, bent)):
        profile.save(out / f"{name}.h5")
        profile.to_csv(out / f"{name}.csv")
    curve.save(out / "curve.pt")
    field = plane_landscape(curve, data, loss, resolution=args.resolution, profiles=[line, bent],
                            bn=args.bn, progress=not args.quiet)  # fmt: skip
    field.save(out / "plane.h5")
    profiles = {"linear": line, args.kind: bent}
    plot.save_figure(plot.plot_barrier(profiles), out / "barrier.png")
    plot.save_figure(
        plot.plot_contour(field, log=True, title=f"plane through A, B and the {args.kind} bend"),
        out / "plane_contour.png",
    )
    bundle = out / "paraview"
    bundle.mkdir(exist_ok=True)
    write_connectivity(field, bundle, profiles)
    if not args.quiet:
        print(f"straight path: barrier {line.barrier:.6g} at t={line.barrier_t:.3g}")
        print(
            f"{args.kind} curve: barrier {bent.barrier:.6g} at t={bent.barrier_t:.3g} "
            f"(max loss {bent.loss.max():.6g}; ends {bent.loss[0]:.6g}, {bent.loss[-1]:.6g})"
        )
        print(f"wrote {out} in {time.perf_counter() - t0:.1f} s")
    return 0


def add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    """The two checkpoints and the --model/--data/--loss options ``connect`` and ``align`` share."""
    parser.add_argument("a", help="state_dict of the first model (A)")
    parser.add_argument("b", help="state_dict of the second model (B)")
    parser.add_argument(
        "--model", required=True, help="built-in model name or module:function (the architecture)"
    )
    parser.add_argument("--data", help="built-in data name or module:function (default: built-in)")
    parser.add_argument("--loss", help="cross_entropy or mse (default: from the model)")
    parser.add_argument(
        "--allow-pickle", action="store_true", help="trust checkpoints that need full pickle"
    )
    parser.add_argument("--n-points", type=int, default=41, help="positions along each path")
    parser.add_argument(
        "--bn",
        default="recompute",
        choices=["recompute", "eval"],
        help="BatchNorm statistics along a path: re-estimated at each point, or interpolated",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def register(subparsers: Any) -> None:
    """Add ``connect`` to the ``losstopo`` command's subparsers."""
    p = subparsers.add_parser(
        "connect",
        help="barriers of the straight path and a Bezier/polychain curve between two models",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_pair_arguments(p)
    p.add_argument("--kind", default="bezier", choices=["bezier", "polychain"])
    p.add_argument("--epochs", type=int, default=40, help="curve training epochs (default 40)")
    p.add_argument("--lr", type=float, default=0.4, help="curve learning rate (default 0.4)")
    p.add_argument("--resolution", type=int, default=21, help="plane grid points per axis")
    p.add_argument("--out", required=True, help=OUT_DIRECTORY)
    p.set_defaults(func=run)

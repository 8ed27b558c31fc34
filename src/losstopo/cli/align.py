"""``losstopo align A.pt B.pt --out B_aligned.pt``: permute B's units onto A's.

Prints the straight-path barrier between A and B before and after, and saves the aligned B as a
state_dict (same function as B).
"""

from __future__ import annotations

import argparse
from typing import Any

from .connect import add_pair_arguments, load_pair
from .options import OUT_FILE, output_file


def run(args: argparse.Namespace) -> int:
    import torch

    from ..alignment import align
    from ..connectivity import validate_n_points

    validate_n_points(args.n_points)
    out = output_file(args.out)
    task, model_a, model_b = load_pair(args)
    report = align(model_a, model_b, task.data, task.loss, method=args.method,
                   n_points=args.n_points, bn=args.bn, seed=args.seed)  # fmt: skip
    torch.save(report.model.state_dict(), out)
    if not args.quiet:
        print(f"barrier before: {report.barrier_before:.6g} (at t={report.before.barrier_t:.3g})")
        print(
            f"barrier after {args.method} matching: {report.barrier_after:.6g} "
            f"(at t={report.after.barrier_t:.3g}; {report.permutation.n_moved} units moved)"
        )
        print(f"wrote {out}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``align`` to the ``losstopo`` command's subparsers."""
    p = subparsers.add_parser(
        "align", help="permute one model's units onto another's; barrier before and after"
    )
    add_pair_arguments(p)
    p.add_argument("--method", default="weights", choices=["weights", "activations"])
    p.add_argument("--out", required=True, help=OUT_FILE + ": the aligned B's state_dict")
    p.set_defaults(func=run)

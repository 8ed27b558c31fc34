"""``losstopo compare A.h5 B.h5 ... --out DIR``: basin structure of several landscapes side by side.

Writes ``comparison.csv``, ``comparison.md`` (a table to paste into a paper), ``distances.csv``,
``distances.png`` (bottleneck and Wasserstein heatmaps), ``landscapes.png`` (small multiples on
one colour scale) and ``comparison.html`` into DIR, and prints the table. Landscapes that differ
in grid, extent, direction normalisation, loss or data are refused unless ``--force``.

Examples
--------
>>> import argparse
>>> p = argparse.ArgumentParser()
>>> register(p.add_subparsers())
>>> p.parse_args(["compare", "a.h5", "b.h5", "--out", "d"]).min_persistence
0.01
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError, validate_float
from .options import OUT_DIRECTORY, output_directory

DESCRIPTION = __doc__.split("Examples")[0].split("\n\n", 1)[1].replace("``", "")


def run(args: argparse.Namespace) -> int:
    validate_float(args.min_persistence, "--min-persistence", low=0.0)
    validate_float(args.order, "--order", low=1.0)
    missing = [f for f in args.fields if not Path(f).is_file()]
    if missing:
        raise InvalidParameterError(
            f"No field file at {', '.join(missing)}; pass files written by losstopo landscape."
        )
    if args.labels is not None and len(args.labels) != len(args.fields):
        raise InvalidParameterError(
            f"Got {len(args.labels)} --labels for {len(args.fields)} fields; give one label per "
            "field, in the same order."
        )
    out = output_directory(args.out)
    return compare_and_write(
        args.fields,
        args.labels,
        out,
        min_persistence=args.min_persistence,
        relative=not args.absolute,
        connectivity=args.connectivity,
        order=args.order,
        force=args.force,
        log={"auto": None, "log": True, "linear": False}[args.scale],
        quiet=args.quiet,
    )


def compare_and_write(
    paths: list[str],
    labels: list[str] | None,
    out: Path,
    *,
    min_persistence: float = 0.01,
    relative: bool = True,
    connectivity: str = "freudenthal",
    order: float = 1.0,
    force: bool = False,
    log: bool | None = None,
    quiet: bool = False,
) -> int:
    """Compare the fields at ``paths`` and write every comparison file into ``out``."""
    from ..compare import compare
    from ..comparison_report import write_comparison
    from ..field import LossField

    fields = [LossField.load(p) for p in paths]
    names = labels if labels is not None else [Path(p).stem for p in paths]
    comparison = compare(
        fields,
        names,
        min_persistence,
        relative,
        connectivity=connectivity,
        order=order,
        force=force,
    )
    written = write_comparison(comparison, fields, out, log=log)
    if not quiet:
        print(comparison.to_markdown(distances=False), end="")
        print(f"wrote {', '.join(written)} to {out}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``compare`` to the ``losstopo`` command's subparsers."""
    p = subparsers.add_parser(
        "compare",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="compare the basin structure of several landscapes (table, distances, plots)",
        description=DESCRIPTION,
    )
    p.add_argument("fields", nargs="+", metavar="FIELD", help="field files (losstopo landscape)")
    p.add_argument(
        "--labels", nargs="+", metavar="LABEL", help="one name per field (default: file stems)"
    )
    p.add_argument("--out", required=True, metavar="DIR", help=OUT_DIRECTORY)
    p.add_argument(
        "--min-persistence",
        type=float,
        default=0.01,
        help="simplification threshold, a fraction of each field's value range (default 0.01)",
    )
    p.add_argument(
        "--absolute", action="store_true", help="read --min-persistence as an absolute loss"
    )
    p.add_argument("--connectivity", default="freudenthal", choices=["freudenthal", "cubical"])
    p.add_argument("--order", type=float, default=1.0, help="Wasserstein order (default 1)")
    p.add_argument(
        "--force",
        action="store_true",
        help="compare fields that differ in grid, extent, normalisation, loss or data",
    )
    p.add_argument(
        "--scale",
        default="auto",
        choices=["auto", "log", "linear"],
        help="colour scale of the landscapes (auto: log10 when every loss is positive)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)

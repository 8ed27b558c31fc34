"""``losstopo topology FILE``: critical points, merge trees, persistence and basins of a field."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import validate_float
from .options import OUT_FILE, output_file


def run(args: argparse.Namespace) -> int:
    from ..field import LossField, store_topology
    from ..io.replace import refuse_clobbering, write_replacing
    from ..jsonable import to_jsonable
    from ..topology import analyze, format_summary
    from ..verify import TopologyCheck, format_check

    validate_float(args.min_persistence, "min-persistence", low=0.0)
    target = output_file(args.json, "--json") if args.json else None
    if target is not None:
        refuse_clobbering(target, "json", "--json", inputs=(args.file,))
    field = LossField.load(args.file)
    summary = analyze(
        field,
        min_persistence=args.min_persistence,
        relative=args.relative,
        connectivity=args.connectivity,
    )
    print(format_summary(summary))
    stored = TopologyCheck.from_summary(field.topology) if field.topology is not None else None
    if stored is not None:  # written by losstopo verify, for the topology stored in the file
        threshold = stored.attrs.get("min_persistence", float("nan"))
        print(f"stored with the file's topology (min_persistence={threshold:.6g}):")
        print(format_check(stored))
    if target is not None:
        text = json.dumps(to_jsonable(summary.to_dict()), indent=2)
        write_replacing(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        print(f"wrote {target}")
    if args.save:
        if stored is not None and _same_join_tree(summary, field.topology):
            summary = stored.attach(summary)  # the same basins: the check still holds
        store_topology(args.file, summary)  # atomic; a partial run stays resumable
        print(f"stored the summary in {args.file}")
    return 0


def _same_join_tree(a: Any, b: Any) -> bool:
    import numpy as np

    ta, tb = a.join_tree, b.join_tree
    return (
        ta is not None
        and tb is not None
        and ta.branches.shape == tb.branches.shape
        and bool(np.array_equal(ta.branches, tb.branches))
    )


def register(subparsers: Any) -> None:
    """Add ``topology`` to the ``losstopo`` command's subparsers."""
    topo = subparsers.add_parser(
        "topology", help="critical points, merge trees, persistence and basins of a field"
    )
    topo.add_argument("file", help="a field file written by losstopo")
    topo.add_argument(
        "--min-persistence",
        type=float,
        default=0.0,
        help="simplification threshold (absolute, or a fraction of the value range with "
        "--relative)",
    )
    topo.add_argument(
        "--relative", action="store_true", help="read --min-persistence as a fraction of the range"
    )
    topo.add_argument("--connectivity", default="freudenthal", choices=["freudenthal", "cubical"])
    topo.add_argument(
        "--json", metavar="FILE", help=f"{OUT_FILE}: also write the summary there as JSON"
    )
    topo.add_argument(
        "--save", action="store_true", help="store the summary in FILE (replacing its own)"
    )
    topo.set_defaults(func=run)

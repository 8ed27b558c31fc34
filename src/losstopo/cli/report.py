"""``losstopo report RUN_DIR [--out FILE]``: a self-contained ``report.html`` for a run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError
from .options import OUT_FILE, output_file


def run(args: argparse.Namespace) -> int:
    out = output_file(args.out) if args.out else None
    if out is None and Path(args.run_dir).is_dir():
        output_file(Path(args.run_dir) / "report.html", "RUN_DIR")
    if not Path(args.run_dir).is_dir():  # before the report's imports
        raise InvalidParameterError(
            f"The run directory {args.run_dir} does not exist or is not a directory; pass the "
            "directory a losstopo run wrote (e.g. the --out of losstopo demo)."
        )
    from ..report import write_report

    target = write_report(args.run_dir, out=out)
    print(target)
    skipped = damaged_fields(Path(args.run_dir))
    if skipped:
        print(
            f"losstopo report: note: skipped {len(skipped)} .h5 file(s) that are not readable, "
            f"finished fields ({', '.join(skipped)}); the report's Notes say why.",
            file=sys.stderr,
        )
    return 0


def damaged_fields(run_dir: Path) -> list[str]:
    """The ``.h5`` files under ``run_dir`` that cannot be read as finished fields (the report skips them)."""
    from ..io import read_field

    bad = []
    for path in sorted(p for p in run_dir.rglob("*.h5") if p.is_file()):
        try:
            read_field(path)
        except (ValueError, OSError):
            bad.append(str(path.relative_to(run_dir)))
    return bad


def register(subparsers: Any) -> None:
    """Add ``report`` to the ``losstopo`` command's subparsers."""
    rep = subparsers.add_parser(
        "report", help="write a self-contained report.html for a run directory"
    )
    rep.add_argument(
        "run_dir", help="a directory with fields, plots and summaries (e.g. demo-output)"
    )
    rep.add_argument("--out", metavar="FILE", help=f"{OUT_FILE} (default: RUN_DIR/report.html)")
    rep.set_defaults(func=run)

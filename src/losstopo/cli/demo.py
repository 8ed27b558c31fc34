"""``losstopo demo --out DIR``: the whole story on built-in data, in under three minutes."""

from __future__ import annotations

import argparse
from typing import Any

from .options import OUT_DIRECTORY, output_directory


def run(args: argparse.Namespace) -> int:
    out = output_directory(args.out)  # checked before the demo's imports
    from ..demo import run_demo

    run_demo(out, quiet=args.quiet)
    return 0


def register(subparsers: Any) -> None:
    """Add ``demo`` to the ``losstopo`` command's subparsers."""
    demo = subparsers.add_parser("demo", help="run the whole story on built-in data (digits)")
    demo.add_argument(
        "--out", default="demo-output", metavar="DIR", help=f"{OUT_DIRECTORY}; default demo-output"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=run)

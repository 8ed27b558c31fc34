"""Parse the ``losstopo`` command line, dispatch to a subcommand, turn mistakes into one sentence.

Examples
--------
>>> main(["info", "no-such-field.h5"])  # prints "losstopo info: error: ..." on stderr
2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .._version import __version__
from ..errors import LosstopoError
from . import (
    align,
    compare,
    compare_projectors,
    connect,
    demo,
    export,
    hessian,
    info,
    landscape,
    report,
    sweep,
    topology,
    verify,
)

OUT_RULE = """\
--out names a FILE for a command that writes one file (landscape, report) and a DIRECTORY for a
command that writes several (export, demo, compare-projectors, compare, sweep; created if
missing, its parent must exist). A mistake on the command line prints one sentence and exits with status 2."""

#: Functions that add the subcommands, in the order ``losstopo --help`` lists them.
COMMANDS: list[Callable[[Any], None]] = [
    demo.register,
    landscape.register,
    info.register,
    topology.register,
    export.register,
    report.register,
    compare_projectors.register,
    compare.register,
    hessian.register,
    connect.register,
    align.register,
    verify.register,
    sweep.register,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``losstopo`` parser with every subcommand of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="losstopo",
        description="Loss landscapes of neural networks: evaluate, analyse, export.",
        epilog=OUT_RULE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"losstopo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``losstopo ARGV`` (default ``sys.argv[1:]``); return the exit status.

    Local ``--workers`` rerun this ``argv``, not ``sys.argv``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except LosstopoError as exc:
        print(f"losstopo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unwritable, missing or full location
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(
            f"losstopo {args.command}: error: could not read or write a file{where}: "
            f"{exc.strerror or exc}; check the path and its permissions.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(
            f"losstopo {args.command}: interrupted; results written so far are kept.",
            file=sys.stderr,
        )
        return 130

"""Options shared by several subcommands: ``--n-components`` (and its old spellings), ``--out``.

``--out`` has one meaning per kind of output: a FILE for a command that writes one file
(``landscape``, ``report``), a DIRECTORY for a command that writes several (``export``, ``demo``,
``compare-projectors``; created if missing, its parent must exist).

Examples
--------
>>> import argparse
>>> p = argparse.ArgumentParser()
>>> add_n_components(p, aliases=("--dims",), help="dimensions")
>>> p.parse_args(["--n-components", "3"]).n_components
3
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import validate_output_path

#: Old spellings of options, kept as aliases that print a deprecation message: old -> new.
DEPRECATED_OPTIONS = {"--dims": "--n-components", "--components": "--n-components"}

OUT_FILE = "output FILE"
OUT_DIRECTORY = "output DIRECTORY (created if missing; its parent must exist)"


class DeprecatedAlias(argparse.Action):
    """Store like the new option, and say once on stderr that this spelling is deprecated."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        new = DEPRECATED_OPTIONS.get(option_string or "", "--" + self.dest.replace("_", "-"))
        print(
            f"losstopo: {option_string} is deprecated and will be removed; use {new}.",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_n_components(
    parser: argparse.ArgumentParser,
    *,
    help: str,
    default: int = 2,
    aliases: Sequence[str] = (),
) -> None:
    """Add ``--n-components K`` (dest ``n_components``) and hidden, deprecated ``aliases``."""
    parser.add_argument(
        "--n-components", type=int, default=default, dest="n_components", metavar="K", help=help
    )
    for alias in aliases:
        parser.add_argument(
            alias,
            type=int,
            dest="n_components",
            action=DeprecatedAlias,
            help=argparse.SUPPRESS,
        )


def output_file(path: str | os.PathLike[str], name: str = "--out") -> Path:
    """The FILE an option names: its directory must exist and be writable."""
    return validate_output_path(path, name)


def output_directory(
    path: str | os.PathLike[str], name: str = "--out", *, create: bool = True
) -> Path:
    """The DIRECTORY an option names: an existing, writable directory, or a new one in one.

    With ``create`` the directory is made (not its parents) once it has been validated.
    """
    out = Path(path)
    if out.exists():
        validate_output_path(out, name, directory=True)
    else:
        validate_output_path(out, name)  # its parent exists and is writable
        if create:
            out.mkdir()
    return out

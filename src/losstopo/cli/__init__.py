"""The ``losstopo`` command: one module per subcommand, parsed and dispatched by :mod:`.main`.

A user mistake prints one sentence (what was wrong, what was expected, how to fix it) and exits
with status 2, never a traceback.

Examples
--------
>>> from losstopo.cli import build_parser
>>> build_parser().parse_args(["info", "field.h5"]).file
'field.h5'
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]

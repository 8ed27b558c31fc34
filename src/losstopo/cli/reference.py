"""The command-line reference (``docs/cli.md``), written from the ``losstopo`` argument parser.

``python -m losstopo.cli.reference > docs/cli.md`` regenerates the page; ``--check FILE`` exits 1
when FILE differs from what the parser gives now. The text does not depend on the terminal's width
or on the Python version's help layout: it is built from the parser's actions, not from
``--help``.

Examples
--------
>>> text = reference_markdown()
>>> text.startswith("# Command-line reference")
True
>>> "## `losstopo landscape`" in text and "`--resolution RESOLUTION`" in text
True
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .main import build_parser

REGENERATE = "python -m losstopo.cli.reference > docs/cli.md"

HEADER = f"""\
# Command-line reference

Every `losstopo` subcommand and option, generated from the argument parser by
`{REGENERATE}` (the test suite fails when this page and the parser
disagree). `losstopo COMMAND --help` prints the same in the terminal. Task-oriented walkthroughs
are in the [user guide](index.md).
"""


def subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, one-line help, parser)`` of each subcommand, in the order ``--help`` lists them."""
    for action in parser._actions:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            helps = {a.dest: a.help or "" for a in getattr(action, "_choices_actions", [])}
            for name, sub in choices.items():
                yield name, helps.get(name, ""), sub


def _metavar(action: argparse.Action) -> str:
    """The placeholder(s) an option takes, as ``--help`` shows them."""
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        mv = action.metavar
    elif action.choices is not None:
        mv = "{" + ",".join(str(c) for c in action.choices) + "}"
    else:
        mv = action.dest.upper() if action.option_strings else action.dest
    if isinstance(mv, tuple):
        return " ".join(mv)
    if action.nargs == "+":
        return f"{mv} [{mv} ...]"
    if action.nargs == "*":
        return f"[{mv} ...]"
    if action.nargs == "?":
        return f"[{mv}]"
    if isinstance(action.nargs, int) and action.nargs > 1:
        return " ".join([mv] * action.nargs)
    return mv


def _cell(text: str) -> str:
    """``text`` on one line, safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.help is not argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
    ]


def _synopsis(name: str, parser: argparse.ArgumentParser) -> str:
    parts = [f"losstopo {name}"]
    for a in _visible(parser):
        mv = _metavar(a)
        if not a.option_strings:
            parts.append(mv)
            continue
        word = (
            a.option_strings[-1] if a.option_strings[-1].startswith("--") else a.option_strings[0]
        )
        word = f"{word} {mv}".strip()
        parts.append(word if a.required else f"[{word}]")
    lines = [parts[0]]
    for part in parts[1:]:  # wrapped between arguments, never inside one
        if len(lines[-1]) + 1 + len(part) > 96:
            lines.append("    " + part)
        else:
            lines[-1] += " " + part
    return "\n".join(lines)


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    d = action.default
    if isinstance(d, (list, tuple)):
        d = " ".join(str(v) for v in d)
    return f"`{d}`"


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | default | description |", "| --- | --- | --- |"]
    for a in _visible(parser):
        mv = _metavar(a)
        names = ", ".join(a.option_strings) if a.option_strings else mv
        arg = f"{names} {mv}".strip() if a.option_strings else names
        help_text = (a.help or "") % {"default": a.default, "prog": parser.prog}
        if a.required and a.option_strings:
            help_text = f"**required**; {help_text}" if help_text else "**required**"
        rows.append(f"| `{_cell(arg)}` | {_default(a)} | {_cell(help_text)} |")
    return rows


def reference_markdown(parser: argparse.ArgumentParser | None = None) -> str:
    """The Markdown reference of ``parser`` (default: the ``losstopo`` parser)."""
    parser = parser or build_parser()
    subs = list(subcommands(parser))
    lines = [HEADER, "## `losstopo`", ""]
    if parser.description:
        lines += [parser.description, ""]
    lines += ["| command | what it does |", "| --- | --- |"]
    lines += [f"| [`{n}`](#losstopo-{n}) | {_cell(h)} |" for n, h, _ in subs]
    lines += ["", "Global options: `--version`, `-h/--help` (also after any command).", ""]
    if parser.epilog:
        lines += [_cell(parser.epilog), ""]
    for name, help_text, sub in subs:
        lines += [f"## `losstopo {name}`", ""]
        lines += [(sub.description or help_text).strip(), ""]
        lines += ["```text", _synopsis(name, sub), "```", ""]
        lines += [*_options_table(sub), ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference, or with ``--check FILE`` say whether FILE is up to date (exit 0/1)."""
    p = argparse.ArgumentParser(
        prog="python -m losstopo.cli.reference",
        description="Write the losstopo command-line reference (Markdown) to stdout.",
    )
    p.add_argument("--check", metavar="FILE", help="exit 1 if FILE differs from the reference")
    args = p.parse_args(argv)
    text = reference_markdown()
    if args.check:
        path = Path(args.check)
        current = path.read_text() if path.exists() else ""
        if current != text:
            print(
                f"{path} is out of date with the parser; regenerate it: {REGENERATE}",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

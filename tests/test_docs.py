"""Code in README.md and docs/*.md, and the docstring examples, are executed: docs cannot rot.

Fences: ```python blocks run in one namespace per page, in order, in a fresh directory. A fence
```bash run holds `losstopo ...` command lines (one per line, `#` comments allowed); each runs,
at its place among the page's python blocks and in the same directory, through the command
line's entry point in this process, and must exit with status 0. Plain ``` / ```text / ```bash
blocks are shown, not run (commands too long for the test suite, or that need other tools).
"""

import doctest
import importlib
import pkgutil
import re
import shlex
from pathlib import Path

import pytest

import losstopo
from losstopo.cli.main import main as losstopo_main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(python|bash run)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
#: Guide pages announced in docs/index.md that are written separately; a link to one is allowed
#: to dangle until the page exists (then it is checked like any other).
PENDING_PAGES = {"compare.md", "sweep.md", "findings.md"}


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """``(kind, code)`` of the executed blocks of a page, in order: kind "python" or "bash run"."""
    return BLOCK.findall(path.read_text())


def python_blocks(path: Path) -> list[str]:
    return [code for kind, code in code_blocks(path) if kind == "python"]


def command_lines(block: str) -> list[list[str]]:
    """The argv of each ``losstopo`` line of a ``bash run`` block (comments and blanks skipped)."""
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        assert words[0] == "losstopo", f"a `bash run` block holds only losstopo commands: {line!r}"
        commands.append(words[1:])
    return commands


@pytest.mark.parametrize("path", [p for p in DOCS if code_blocks(p)], ids=lambda p: p.name)
def test_markdown_code_runs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # modules a page writes import as on the CLI
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for i, (kind, block) in enumerate(code_blocks(path)):
        if kind == "python":
            code = compile(block, f"{path.name}[block {i}]", "exec")
            exec(code, namespace)
            continue
        for argv in command_lines(block):
            try:
                status = losstopo_main(argv)
            except SystemExit as exc:  # --help, --version, argparse's own errors
                status = exc.code or 0
            assert status == 0, f"{path.name}[block {i}]: losstopo {shlex.join(argv)}"


def test_bash_run_blocks_hold_losstopo_commands():
    text = "```bash run\nlosstopo info a.h5  # describe\n\nlosstopo --version\n```\n```bash\nmake\n```\n"
    ((kind, block),) = BLOCK.findall(text)
    assert kind == "bash run" and command_lines(block) == [["info", "a.h5"], ["--version"]]
    with pytest.raises(AssertionError, match="only losstopo commands"):
        command_lines("make demo\n")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(path):
    """Every relative link of a page points at a file (or a heading of a page) that exists."""
    broken = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        where = (path.parent / file).resolve() if file else path
        if not where.exists():
            if Path(file).name not in PENDING_PAGES:
                broken.append(target)
            continue
        if anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(target)
    assert not broken, f"{path.name}: links to nothing: {broken}"


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of the headings of a Markdown page."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(losstopo.__path__, prefix="losstopo.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_every_public_name_documented_with_example():
    missing = []
    for name in losstopo.__all__:
        obj = getattr(losstopo, name)
        if name.startswith("_") or not callable(obj):
            continue
        doc = obj.__doc__ or ""
        module_doc = importlib.import_module(obj.__module__).__doc__ or ""
        if ">>>" not in doc and ">>>" not in module_doc:
            missing.append(name)
    assert not missing, f"public names without a runnable example: {missing}"

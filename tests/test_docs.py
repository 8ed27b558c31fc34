"""Code in README.md and docs/*.md, and the docstring examples, are executed: docs cannot rot.

Fences: ```python blocks run in one namespace per page, in order, in a fresh directory; a fence
```bash run runs as a bash script there too, at its place among the page's python blocks, with
`losstopo` meaning this checkout's command line. Plain ``` / ```text / ```bash blocks are shown,
not run (commands too long for the test suite, or that need other tools).
"""

import doctest
import importlib
import os
import pkgutil
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import losstopo

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


def losstopo_on_path(directory: Path) -> dict[str, str]:
    """An environment whose ``losstopo`` is this checkout's command line (``python -m losstopo.cli``)."""
    directory.mkdir()
    exe = directory / "losstopo"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m losstopo.cli "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    src = str(Path(losstopo.__file__).resolve().parents[1])
    env = dict(os.environ, PATH=f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.mark.parametrize("path", [p for p in DOCS if code_blocks(p)], ids=lambda p: p.name)
def test_markdown_code_runs(path, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    env = None
    for i, (kind, block) in enumerate(code_blocks(path)):
        if kind == "python":
            code = compile(block, f"{path.name}[block {i}]", "exec")
            exec(code, namespace)
            continue
        env = env or losstopo_on_path(tmp_path / "bin")
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, (
            f"{path.name}[block {i}] exited {run.returncode}:\n{block}\n"
            f"stdout:\n{run.stdout[-2000:]}\nstderr:\n{run.stderr[-2000:]}"
        )


def test_bash_run_blocks_are_found():
    text = "```bash run\nlosstopo --version\n```\n\n```bash\nmake demo\n```\n"
    assert BLOCK.findall(text) == [("bash run", "losstopo --version\n")]


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
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            out.add(slug)
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

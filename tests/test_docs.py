"""Code in README.md and docs/*.md, and the docstring examples, are executed: docs cannot rot."""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import losstopo

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text())


@pytest.mark.parametrize("path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_markdown_code_runs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for i, block in enumerate(python_blocks(path)):
        code = compile(block, f"{path.name}[block {i}]", "exec")
        exec(code, namespace)


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

"""The package's shape, checked by walking its imports with ``ast`` (docs/architecture.md).

- No module imports another module's private name (``from .x import _y``).
- No import cycle among the imports that run when a module is imported.
- Imports only go down the layers of the data flow, lazy ones (inside functions) included, except
  the documented exceptions of a field: ``LossField.save``/``load`` hand the HDF5 work to
  ``losstopo.io``, and ``LossField.topology`` is typed as (and checked to be) a ``TopologySummary``.
- No module over 500 lines.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "losstopo"

#: Lowest first. A module may import modules of its own layer or of a lower one.
LAYERS: list[tuple[str, ...]] = [
    ("_version", "errors", "jsonable"),
    (
        "space",
        "grid",
        "data",
        "datasets",
        "models",
        "directions",
        "checkpoints",
        "trajectory",
        "pinn",
        "field",
    ),
    ("projectors", "topology"),
    ("io", "testing"),
    ("engine", "distributed", "store", "evaluate", "fidelity"),
    ("hessian", "connectivity", "alignment", "verify", "compare"),
    ("plot", "export", "report", "comparison_report"),
    ("cli", "demo"),
]

#: Upward imports that are part of the design, with the reason.
ALLOWED_UPWARD = {
    # A field saves and loads itself through the io layer (which builds LossField objects).
    ("losstopo.field", "losstopo.io"),
    # A field carries its topology summary, typed, and refuses anything else.
    ("losstopo.field", "losstopo.topology"),
    # A field decodes through the projector stored with it (rebuilt from its saved state).
    ("losstopo.field", "losstopo.projectors"),
}

MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module
    name: str | None  # the name taken from it (None for ``import x``)
    lazy: bool  # inside a function, or under ``if TYPE_CHECKING``
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(source: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = source.split(".") if is_package(source) else source.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _lazy_nodes(tree: ast.AST) -> set[int]:
    """ids of import nodes inside functions or ``if TYPE_CHECKING:`` blocks."""
    lazy: set[int] = set()
    for node in ast.walk(tree):
        inside = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside = True
        if inside:
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    lazy.add(id(sub))
    return lazy


def imports_of(name: str) -> list[Import]:
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    lazy = _lazy_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = resolve(name, node)
            if not target.startswith("losstopo"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # ``from . import module``
                    out.append(Import(name, sub, None, id(node) in lazy, node.lineno))
                else:
                    out.append(Import(name, target, alias.name, id(node) in lazy, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("losstopo"):
                    out.append(Import(name, alias.name, None, id(node) in lazy, node.lineno))
    return out


ALL_IMPORTS = [imp for name in MODULES for imp in imports_of(name)]


def layer_of(name: str) -> int | None:
    """Layer index of a module, from its first component below ``losstopo``."""
    parts = name.split(".")
    if len(parts) == 1:
        return len(LAYERS)  # the package root re-exports everything: the top
    head = parts[1]
    for i, layer in enumerate(LAYERS):
        if head in layer:
            return i
    return None


def top_group(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2])


def test_every_module_has_a_layer():
    unplaced = sorted(n for n in MODULES if layer_of(n) is None)
    assert not unplaced, f"modules in no layer of LAYERS (add them where they belong): {unplaced}"


def test_no_private_names_imported_from_other_modules():
    bad = [
        f"{imp.source}:{imp.line} imports {imp.name} from {imp.target}"
        for imp in ALL_IMPORTS
        if imp.name is not None
        and imp.name.startswith("_")
        and not (imp.name.startswith("__") and imp.name.endswith("__"))
        and imp.target != imp.source
    ]
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_version_comes_from_the_leaf_module():
    bad = [
        f"{imp.source}:{imp.line}"
        for imp in ALL_IMPORTS
        if imp.name == "__version__" and imp.target != "losstopo._version"
    ]
    assert not bad, "import __version__ from losstopo._version, not the package root: " + str(bad)


def test_no_import_cycle_at_import_time():
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for imp in ALL_IMPORTS:
        if not imp.lazy and imp.target in MODULES and imp.target != imp.source:
            graph.add_edge(imp.source, imp.target)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_imports_only_go_down_the_layers():
    bad = []
    for imp in ALL_IMPORTS:
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if src is None or dst is None or dst <= src:
            continue
        if (top_group(imp.source), top_group(imp.target)) in ALLOWED_UPWARD:
            continue
        kind = "lazily " if imp.lazy else ""
        bad.append(f"{imp.source}:{imp.line} {kind}imports {imp.target} (a higher layer)")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_submodule_imports_the_package_root():
    bad = [
        f"{imp.source}:{imp.line}"
        for imp in ALL_IMPORTS
        if imp.target == "losstopo" and imp.source != "losstopo"
    ]
    assert not bad, (
        "submodules importing from the losstopo root (import the defining module): " + str(bad)
    )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    n = len(MODULES[name].read_text().splitlines())
    assert n <= MAX_LINES, f"{name} has {n} lines; split it by responsibility"


def test_the_checker_sees_a_private_import(tmp_path):
    """The walker itself: a planted private import and a planted cycle are found."""
    tree = ast.parse("from .merge_tree import _merge_tree_from_prepared\n")
    node = tree.body[0]
    assert isinstance(node, ast.ImportFrom)
    assert resolve("losstopo.topology.summary", node) == "losstopo.topology.merge_tree"
    graph = nx.DiGraph([("a", "b"), ("b", "a")])
    assert list(nx.simple_cycles(graph))


def test_the_design_script_is_the_one_docs_run():
    """docs/architecture.md runs the seven-line script of the design page, line for line."""
    design = SRC.parents[1] / "shared" / "DESIGN.md"
    if not design.exists():
        pytest.skip("the design page is not beside this checkout")
    block = re.compile(r"```python\n(.*?)```", re.S)

    def script(text: str) -> list[str]:
        found = [b for b in block.findall(text) if "space = ParameterSpace.from_module" in b]
        assert found, "no script block"
        lines = [ln.strip() for ln in found[0].splitlines() if ln.strip()]
        return [ln for ln in lines if "verify_topology" not in ln]  # lands with its own issue

    docs = (SRC.parent / "docs" / "architecture.md").read_text()
    assert script(docs) == script(design.read_text())

"""The layer rules of ADR 0008, checked on the source (every import, lazy ones included).

- the Qt-free core (``desktop_app/core``), ``inference/`` and ``cloud/`` never import PySide6;
- ``inference/`` never imports ``cloud/`` or ``desktop_app/``;
- ``cloud/`` never imports the GUI (``desktop_app/gui``) — nor the rest of ``desktop_app``;
- the core never imports the GUI or the CLI;
- no import cycles among our modules (imports under ``if TYPE_CHECKING:`` excepted: they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("desktop_app", "inference", "cloud")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _all_modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = _all_modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str) -> set[str]:
    """Every module name ``module`` imports anywhere in its file (absolute names)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _in(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _violations(source_prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{module} imports {imported}"
        for module in MODULES
        if _in(module, source_prefix)
        for imported in sorted(imports_of(module))
        if any(_in(imported, f) for f in forbidden)
    ]


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("desktop_app.core", ("PySide6", "desktop_app.gui", "desktop_app.cli", "shiboken6")),
        ("inference", ("PySide6", "shiboken6", "cloud", "desktop_app")),
        ("cloud", ("PySide6", "shiboken6", "desktop_app")),
    ],
)
def test_layer_never_imports(layer: str, forbidden: tuple[str, ...]) -> None:
    assert _violations(layer, forbidden) == []


def test_the_rules_see_imports() -> None:
    """The checker itself: it finds a lazy import inside a function and resolves relative ones."""
    assert any(_in(name, "PySide6") for name in imports_of("desktop_app.gui.app"))  # imported lazily there
    assert "inference.errors" in imports_of("inference.backends.registry")


def _cycles() -> list[list[str]]:
    graph = {m: sorted(i for i in imports_of(m) if i in MODULES and i != m) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def strongconnect(v: str) -> None:  # Tarjan; the graph is small, recursion depth is fine
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in graph:
        if v not in index:
            strongconnect(v)
    return components


def test_no_import_cycles() -> None:
    assert _cycles() == []

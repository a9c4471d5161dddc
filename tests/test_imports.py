"""No two modules of frame_daemon import each other, directly or in a loop.

The graph is read from the source with `ast`, so nothing is imported to build it. Every import
statement counts wherever it is: at the top of the module, inside a function (a late import still
ties the two modules together) and under `if TYPE_CHECKING:` (a type-only import is still a
dependency a reader must follow, and the commands <-> events circle was one). An import of
`frame_daemon.a.b` is an edge to that module only; the packages it runs on the way
(`frame_daemon.a`) are not counted, because their `__init__.py` files import nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "frame_daemon"
PACKAGE = "frame_daemon"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package by its dotted name (a package is its __init__.py)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path], package: str) -> set[str]:
    """The package's modules that this module imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def nearest_module(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..a import b
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod.
            targets = [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target == package or target.startswith(package + "."):
                module = nearest_module(target)
                if module is not None and module != name:
                    found.add(module)
    return found


def import_graph(root: Path = PACKAGE_DIR, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(root, package)
    return {name: imported_modules(name, path, modules, package) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as a loop to show."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [loop_through(sorted(group), graph) for group in groups]


def loop_through(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One import loop inside a strongly connected group, from its first module back to it."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    todo = [start]
    while todo:  # breadth first: the shortest loop back to start
        node = todo.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                todo.append(nxt)
    return group  # unreachable for a strongly connected group


def test_the_graph_sees_every_kind_of_import(tmp_path):
    """The reader itself: top-level, late, type-only and relative imports are all edges."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import x\n")
    (pkg / "b.py").write_text("def f():\n    import pkg.sub.c\n")
    (pkg / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import a\n")
    (pkg / "sub" / "d.py").write_text("from pkg.sub import c\nimport os\n")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a"}
    assert graph["pkg.sub.d"] == {"pkg.sub.c"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]


def test_no_module_imports_itself_back():
    graph = import_graph()
    assert len(graph) > 50, "the package's modules were not found"
    found = cycles(graph)
    if found:
        pytest.fail("import loops (each module imports the next):\n"
                    + "\n".join("  " + " -> ".join(loop) for loop in found))


def test_the_config_depends_on_nothing_but_errors():
    """The config is read first and by every part (the CLI, doctor, the daemon): it must not pull
    in a source, a model or a server adapter (the display schedule's time parser lives in it)."""
    assert import_graph()["frame_daemon.config"] <= {"frame_daemon.errors"}


def test_command_names_are_imported_from_where_they_live():
    """`CommandName` lives in events.py beside `Command`; commands.py only uses it. An import of
    it from commands would still work (the name is there), and would keep the old circle's shape
    alive, so every importer in the package, the tests and the scripts takes it from events."""
    root = PACKAGE_DIR.parent
    stale = []
    for folder in ("frame_daemon", "tests", "scripts"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if (isinstance(node, ast.ImportFrom) and node.module == "frame_daemon.commands"
                        and any(alias.name == "CommandName" for alias in node.names)):
                    stale.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not stale, f"import CommandName from frame_daemon.events: {', '.join(stale)}"

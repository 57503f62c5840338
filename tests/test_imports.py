"""Every module of the package and the built-in plugins imports, and no module imports
itself through others: the import graph, built from each module's top-level
``import``/``from`` statements (imports inside functions run later and don't count),
has no cycle."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import browserfarm
import browserfarm_plugins

PACKAGES = (browserfarm, browserfarm_plugins)


def all_modules() -> dict[str, str]:
    """module name -> its source file, for every module of PACKAGES (their files, so
    that folders without an ``__init__.py`` count too)."""
    found = {}
    for package in PACKAGES:
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package.__name__, *parts))] = str(path)
    return found


def top_level_imports(tree: ast.Module):
    """The import statements that run when the module is imported: at top level, and
    inside top-level if/try blocks, but not under ``if TYPE_CHECKING``."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [
                stmt for handler in node.handlers for stmt in handler.body]


def import_graph(modules: dict[str, str]) -> dict[str, set[str]]:
    """module -> the modules of ours it imports at import time."""
    graph = {}
    for name, path in modules.items():
        is_package = path.endswith("__init__.py")
        package = name if is_package else name.rpartition(".")[0]
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read(), path)
        targets = set()
        for node in top_level_imports(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # ``from pkg import mod`` imports the module pkg.mod; else pkg itself.
            submodules = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
            targets |= submodules or {base}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


MODULES = all_modules()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports(name):
    importlib.import_module(name)


def test_no_import_cycle():
    graph = import_graph(MODULES)
    found = cycles(graph)
    explained = ["; ".join(f"{m} -> {', '.join(sorted(graph[m] & set(c)))}" for m in c)
                 for c in found]
    assert not found, "import cycles:\n" + "\n".join(explained)


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []

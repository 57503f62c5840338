"""docs/architecture.md is the map of the code: it names every module of the package
where it lives, and names nothing that isn't there."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"


def mapped_modules() -> set[str]:
    """The modules the map's tree names, as paths ("browserfarm/agent/cloud.py")."""
    tree = DOC.read_text().split("```", 2)[1]
    found, package = set(), None
    for line in tree.splitlines():
        top = re.match(r"^(\w+)/", line)
        sub = re.match(r"^  (\w+)/", line)
        if top:
            package = top.group(1)
            continue
        if sub:
            package = f"browserfarm/{sub.group(1)}"
            continue
        if package is None:
            continue
        for name in re.findall(r"(?<![\w/.])(\w+)\.py\b", line):
            found.add(f"{package}/{name}.py")
    return found


def package_modules() -> set[str]:
    return {str(path.relative_to(ROOT)) for path in (ROOT / "browserfarm").rglob("*.py")
            if path.name != "__init__.py"}


def test_every_module_is_on_the_map():
    missing = package_modules() - mapped_modules()
    assert not missing, f"docs/architecture.md does not name {sorted(missing)}"


def test_the_map_names_only_modules_that_exist():
    gone = {path for path in mapped_modules() if not (ROOT / path).exists()}
    assert not gone, f"docs/architecture.md names modules that don't exist: {sorted(gone)}"


def test_every_built_in_plugin_is_on_the_map():
    text = DOC.read_text()
    for path in (ROOT / "plugins").glob("*.py"):
        if path.name != "__init__.py":
            assert re.search(rf"\b{path.stem}\b", text), f"plugins/{path.name} is not on the map"

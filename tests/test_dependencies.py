"""Every library the farm imports is declared in setup.cfg: a fresh install of the
package (not of this development venv) must have all it needs."""
from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUR_PACKAGES = {"browserfarm", "browserfarm_plugins", "browserfarm_migrations"}


def imported_top_level_modules() -> dict[str, str]:
    """Top-level module -> one file importing it (imports inside functions included)."""
    found = {}
    for folder in ("browserfarm", "plugins", "migrations"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def declared_distributions() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    requirements = config["options"]["install_requires"].split()
    return {_normal(re.split(r"[\[<>=!~ ;]", line, maxsplit=1)[0])
            for line in requirements if line.strip()}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_library_is_declared_in_setup_cfg():
    providers = importlib.metadata.packages_distributions()
    declared = declared_distributions()
    missing = {}
    for module, where in imported_top_level_modules().items():
        if module in OUR_PACKAGES or module in sys.stdlib_module_names:
            continue
        distributions = {_normal(d) for d in providers.get(module, ())}
        assert distributions, f"{module} (imported by {where}) is not installed"
        if not distributions & declared:
            missing[module] = (where, sorted(distributions))
    assert not missing, f"imported but not in setup.cfg install_requires: {missing}"


def test_every_declared_library_is_used():
    providers = importlib.metadata.packages_distributions()
    used = {_normal(d) for module in imported_top_level_modules()
            for d in providers.get(module, ())}
    # Declared for what they bring rather than imported by name: gunicorn is the
    # server `browserfarm serve` execs, psycopg2 the driver peewee loads for postgres.
    not_imported = {"gunicorn", "psycopg2-binary"}
    unused = declared_distributions() - used - not_imported
    assert not unused, f"declared in setup.cfg but never imported: {sorted(unused)}"

"""The dashboard and the CLI take shared helpers from neutral modules, never from route
modules (a route module is one HTTP route's handler, free to change with it)."""

from __future__ import annotations

import ast
from pathlib import Path

import lunos

SOURCE = Path(lunos.__file__).parent


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def test_the_dashboard_and_cli_import_no_route_module():
    files = [SOURCE / "cli.py", *sorted((SOURCE / "gateway" / "dashboard").glob("*.py"))]
    for path in files:
        routes = [name for name in _imports(path) if "routes" in name.split(".")]
        assert routes == [], (path.name, routes)

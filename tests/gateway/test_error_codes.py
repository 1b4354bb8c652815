"""Error codes are one vocabulary: every `code` the gateway's source can answer with is in
`errors.CODES`, every entry there is used, and docs/errors.md lists exactly those."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import lunos.gateway
from lunos.gateway.errors import CODES

GATEWAY = Path(lunos.gateway.__file__).parent
DOCS = Path(__file__).parents[2] / "docs" / "errors.md"


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def codes_in_source() -> dict[str, set[str]]:
    """code -> files, from `code="..."` keywords, `code` parameter defaults, and strings
    passed positionally where a helper takes a `code` parameter."""
    trees = {path: ast.parse(path.read_text()) for path in GATEWAY.rglob("*.py")}
    takes_code: dict[str, int] = {}
    found: dict[str, set[str]] = {}
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in node.args.args]
                if "code" in names:
                    index = names.index("code")
                    takes_code[node.name] = index - (names[0] == "self")
                    defaults = dict(zip(names[len(names) - len(node.args.defaults):],
                                        node.args.defaults, strict=True))
                    if "code" in defaults and _string(defaults["code"]):
                        found.setdefault(_string(defaults["code"]), set()).add(path.name)
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "code" and _string(keyword.value):
                    found.setdefault(_string(keyword.value), set()).add(path.name)
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            index = takes_code.get(name)
            if index is not None and index < len(node.args) and _string(node.args[index]):
                found.setdefault(_string(node.args[index]), set()).add(path.name)
    return found


def test_every_code_the_source_uses_is_in_the_vocabulary():
    unknown = {code: files for code, files in codes_in_source().items() if code not in CODES}
    assert unknown == {}


def test_every_code_in_the_vocabulary_is_used():
    assert set(CODES) - set(codes_in_source()) == set()


def test_the_docs_list_the_vocabulary():
    listed = re.findall(r"^\| `([a-z_]+)` \|", DOCS.read_text(), re.M)
    assert sorted(listed) == sorted(CODES)

"""Structured-output helpers the provider stand-ins share.

- `resolved(schema)`: the schema with its local `$ref`s inlined, so the fake model (which
  knows no references) builds a valid answer from it.
- `instructed(system)`: the JSON a system text asks for in words, as the gateway writes
  it where a provider cannot be told natively ("... JSON Schema: {...}" or "a single JSON
  object"); the stand-ins' model follows such an instruction the way a real model would.
- `shape(answer, conv)` gives a structured answer the form the provider guarantees (a text
  answer to a schema request is JSON built from the schema, as constrained decoding makes
  it, even where the fake model would have said something else, e.g. after tool results;
  an answer cut by `max_tokens` stays cut, a stop sequence does not cut it), then applies
  the markers below.
- Test markers in a user text make the model misbehave: `[[bad-json]]` answers with text
  that is not JSON, `[[off-schema]]` with JSON that matches no object schema (a tool input,
  which must be an object, becomes `{"off_schema": true}`). Plain markers act only while
  the marked text is the last user turn (the first answer: a retry appends a new user
  turn); `[[bad-json-always]]` / `[[off-schema-always]]` act on every answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .fake_model import value_for

MARKER = re.compile(r"\[\[(bad-json|off-schema)(-always)?\]\]")
BAD_JSON = '{"answer": "unfinished'
OFF_SCHEMA = '["off-schema"]'
OFF_SCHEMA_INPUT = {"off_schema": True}
SCHEMA_NOTE = "JSON Schema: "
OBJECT_NOTE = "a single JSON object"
MAX_DEPTH = 8


def resolved(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """`schema` with local `$ref`s replaced by their targets (recursion cut at MAX_DEPTH)."""
    root = schema if root is None else root
    if isinstance(schema, list):
        return [resolved(item, root, depth) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = pointer(root, ref)
        if target is None or depth >= MAX_DEPTH:
            return {}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return resolved({**target, **rest}, root, depth + 1)
    return {k: resolved(v, root, depth) for k, v in schema.items() if k not in ("$defs", "definitions")}


def pointer(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return None
    node = root
    for token in ref[1:].split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node


def instructed(system: str) -> tuple[dict | None, bool]:
    """(the schema a system text asks the answer to match, whether it asks for JSON at all)."""
    at = system.find(SCHEMA_NOTE)
    if at >= 0:
        try:
            schema, _ = json.JSONDecoder().raw_decode(system, at + len(SCHEMA_NOTE))
        except ValueError:
            return None, True
        return (schema if isinstance(schema, dict) else {}), True
    return None, OBJECT_NOTE in system


def marker(turns) -> str | None:
    """"bad-json" / "off-schema" when the conversation's markers apply to this answer."""
    users = [t for t in turns if t.role == "user"]
    if not users:
        return None
    found = MARKER.search(users[-1].text)
    if found:
        return found.group(1)
    for turn in users:
        for found in MARKER.finditer(turn.text):
            if found.group(2):
                return found.group(1)
    return None


def shape(answer, conv) -> None:
    """Constrain a structured answer to JSON, then apply the markers (module docstring)."""
    if conv.response_schema is None and not conv.json_mode and not answer.tool_calls:
        return
    if not answer.tool_calls and answer.finish != "length" and not _is_json(answer.text):
        value = value_for(conv.response_schema) if conv.response_schema is not None else {"said": answer.text}
        answer.text = json.dumps(value)
    kind = marker(conv.turns)
    if kind is None:
        return
    if answer.tool_calls:
        name, _ = answer.tool_calls[0]
        answer.tool_calls[0] = (name, dict(OFF_SCHEMA_INPUT))
    else:
        answer.text = BAD_JSON if kind == "bad-json" else OFF_SCHEMA


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True

"""What `response_format` asks of an adapter, and the instruction used where a provider
cannot be told natively.

`requested(body)` reads the validated `response_format`: None for plain text, else
`("json_object", None)` or `("json_schema", schema)` (a missing schema is `{}`: any JSON).
`instruction(kind, schema)` is the system text that asks a model for the same thing in
words; the gateway checks every answer against the schema anyway (tools/structured.py).
"""

from __future__ import annotations

from typing import Any

import orjson

OBJECT_INSTRUCTION = "Answer with a single JSON object and nothing else: no prose, no code fences."
SCHEMA_INSTRUCTION = ("Answer with only JSON that matches this JSON Schema, and nothing else: "
                      "no prose, no code fences.\nJSON Schema: ")


def requested(body: dict) -> tuple[str, dict | None] | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        return kind, None
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return kind, schema if isinstance(schema, dict) else {}
    return None


def instruction(kind: str, schema: Any = None) -> str:
    if kind == "json_schema":
        return SCHEMA_INSTRUCTION + orjson.dumps(schema or {}).decode()
    return OBJECT_INSTRUCTION

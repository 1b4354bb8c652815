"""Client JSON Schemas as Gemini takes them.

Tool parameters go upstream as `parametersJsonSchema` and response schemas as
`responseJsonSchema`: both take JSON Schema itself (a free-form value), so the client's schema
keeps `additionalProperties`, `$ref`/`$defs`, `anyOf`, `const`, type unions and the rest, where
the classic `parameters`/`responseSchema` (an OpenAPI-subset `Schema` message) would reject
many of them with "Unknown name ... Cannot find field". Keywords Gemini does not implement are
accepted and ignored there.

One rule of Gemini's JSON Schema support is enforced here: a sub-schema holding `$ref` may
hold no other keyword except those starting with `$`. Generators put `description` or
`default` beside `$ref` (pydantic does); those siblings are dropped.
"""

from __future__ import annotations

from typing import Any


def json_schema(schema: Any) -> Any:
    """`schema` with `$ref` siblings removed, at every depth; the input is not modified."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return {k: v for k, v in schema.items() if k.startswith("$")}
    # Keys of `properties`, `$defs` and the like are names, not keywords: recursing into
    # every value keeps them (a property may be called "$ref" only in theory).
    return {k: json_schema(v) for k, v in schema.items()}


def function_parameters(schema: Any) -> dict | None:
    """A tool's `parameters` as `parametersJsonSchema`, or None when it takes none.

    Gemini wants an object schema here; an empty schema (`{}`) or a bare
    `{"type": "object"}` without properties means "no parameters" and is left out.
    """
    if not isinstance(schema, dict) or not schema:
        return None
    if schema.get("type") in (None, "object") and not schema.get("properties") and not any(
        k in schema for k in ("anyOf", "oneOf", "allOf", "$ref", "additionalProperties")
    ):
        return None
    out = json_schema(schema)
    if "type" not in out and "$ref" not in out:
        out = {"type": "object", **out}
    return out

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


def response_schema(schema: Any) -> Any:
    """A response schema as `responseJsonSchema`: `json_schema`, plus what Gemini's dialect
    lacks spelled the way it takes it. Gemini implements `enum` (of strings and numbers) but
    not `const`, so a string or number `const` becomes a one-value `enum`; an `allOf` of one
    schema (older generators wrap a `$ref` so) becomes that schema. Other keywords Gemini
    ignores stay: the gateway checks every answer against the caller's own schema."""
    return json_schema(_spelled(schema))


_VALUES = ("const", "enum", "default", "examples")  # JSON values, not schemas
_NAMED = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")  # name -> schema


def _spelled(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_spelled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _VALUES:
            out[key] = value
        elif key in _NAMED and isinstance(value, dict):
            out[key] = {name: _spelled(sub) for name, sub in value.items()}
        else:
            out[key] = _spelled(value)
    const = out.get("const")
    if isinstance(const, (str, int, float)) and not isinstance(const, bool) and "enum" not in out:
        del out["const"]
        out["enum"] = [const]
    all_of = out.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        rest = {k: v for k, v in out.items() if k != "allOf"}
        out = {**rest, **all_of[0]}
    return out


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

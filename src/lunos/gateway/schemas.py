"""JSON Schemas that arrive in requests (tool parameters, `response_format`): bounded,
checked and compiled once.

A schema is the caller's code running in the gateway, so nothing here may cost more than
linear time on the event loop:

- Size: at most `MAX_BYTES` of JSON, `MAX_DEPTH` levels of nesting and `MAX_NODES` values,
  measured by one iterative walk before anything else looks at the schema.
- Compiling and validating use jsonschema-rs (Rust): meta-validation and `$ref` resolution
  take milliseconds where the pure-Python validator took seconds on a large schema, and
  `pattern` / `patternProperties` run on the linear-time `regex` crate engine, so a pattern
  like `^(a+)+$` cannot backtrack. A pattern that engine lacks (look-around,
  back-references) makes the schema invalid. Remote `$ref`s are never fetched.
- A `$ref` cycle that never moves into the instance (`a` -> `b` -> `a` through `$ref`,
  `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`) is refused: it describes nothing, and
  providers loop on it. Recursion through `properties` or `items` is fine.
  All the schemas of one request together are at most `MAX_REQUEST_BYTES`.
- Compiled validators are kept in an LRU bounded by the bytes of their schemas' JSON
  (`CACHE_BYTES`), not by their count: a compiled schema takes up to about 20 times its
  JSON, so the cache holds at most ~100 MB however large the schemas sent. A schema found
  there by its canonical JSON is not walked again: an agent's 20 tools, sent every turn,
  cost 60 µs to check instead of 190 µs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import jsonschema_rs
import orjson

MAX_BYTES = 256 * 1024
MAX_DEPTH = 64
MAX_NODES = 20_000
MAX_REQUEST_BYTES = 512 * 1024
CACHE_BYTES = 4 * 1024 * 1024

# Keywords whose sub-schemas apply to the same instance as the schema that holds them.
_IN_PLACE_ONE = ("not", "if", "then", "else")
_IN_PLACE_LIST = ("allOf", "anyOf", "oneOf")
_REFS = ("$ref", "$dynamicRef")


class SchemaInvalid(ValueError):
    """Why a schema is refused, phrased to follow the parameter's name."""


class _Cache:
    """Compiled validators by schema JSON, least recently used evicted past `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.entries: OrderedDict[bytes, Any] = OrderedDict()

    def get(self, key: bytes) -> Any:
        validator = self.entries.get(key)
        if validator is not None:
            self.entries.move_to_end(key)
        return validator

    def put(self, key: bytes, validator: Any) -> None:
        if len(key) > self.limit:
            return
        self.entries[key] = validator
        self.size += len(key)
        while self.size > self.limit:
            old, _ = self.entries.popitem(last=False)
            self.size -= len(old)

    def clear(self) -> None:
        self.entries.clear()
        self.size = 0


cache = _Cache(CACHE_BYTES)


def check(schema: Any) -> int:
    """The size of `schema` in bytes of JSON, once it is known to compile (the validator is
    cached for the answer check); SchemaInvalid says why it does not."""
    return len(_lookup(schema)[0])


def compiled(schema: Any) -> Any:
    """The validator of `schema` (cached); SchemaInvalid says why there is none."""
    return _lookup(schema)[1]


def _lookup(schema: Any) -> tuple[bytes, Any]:
    """A schema seen before is found by its canonical JSON alone: the walk that bounds
    depth and count ran when it was first compiled (agents send the same tools every turn)."""
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # past orjson's nesting limit, say: the walk says why
        key = b""
    validator = cache.get(key) if key else None
    if validator is None:
        key = _measure(schema)
        validator = _compile(schema)
        cache.put(key, validator)
    return key, validator


def _measure(schema: Any) -> bytes:
    """The schema as canonical JSON (the cache key), after checking depth, count and size
    without recursion (so even a body nested 1000 deep is refused, not a crash)."""
    nodes = 0
    stack = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise SchemaInvalid(f"is too complex: more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise SchemaInvalid(f"is nested too deep: more than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
    try:
        raw = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise SchemaInvalid(f"is not valid JSON ({exc})") from None
    if len(raw) > MAX_BYTES:
        raise SchemaInvalid(f"is too large: {len(raw)} bytes of JSON, at most {MAX_BYTES}")
    return raw


def _compile(schema: Any) -> Any:
    problem = _ref_problem(schema)
    if problem:
        raise SchemaInvalid(f"is not a valid JSON Schema: {problem}")
    try:
        return jsonschema_rs.validator_for(
            schema, validate_formats=False, offline=True,
            pattern_options=jsonschema_rs.RegexOptions(),
        )
    except jsonschema_rs.ValidationError as exc:
        where = "/".join(str(p) for p in exc.instance_path)
        raise SchemaInvalid(f"is not a valid JSON Schema: {exc.message}"
                            + (f" (at {where})" if where else "")) from None
    except (jsonschema_rs.ReferencingError, ValueError) as exc:
        raise SchemaInvalid(f"is not a valid JSON Schema: {exc}") from None


# ---------------------------------------------------------------- references


def _ref_problem(root: Any) -> str | None:
    """A `$ref` that points nowhere or elsewhere, or a cycle of in-place sub-schemas."""
    schemas = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            schemas.append(node)
            for key in _REFS:
                ref = node.get(key)
                if isinstance(ref, str) and _target(ref, root) is None:
                    return f"the reference {ref!r} points nowhere (only references inside " \
                           "the schema are followed)"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    cycle = _cycle(schemas, root)
    if cycle:
        return ("the references form a cycle that never reaches a value ("
                + " -> ".join(cycle) + ")")
    return None


def _target(ref: str, root: Any) -> Any:
    """What a local reference points at; None when it points nowhere. An anchor (`#name`)
    is left to the compiler, which resolves it or says so: `...` stands for it here."""
    if not ref.startswith("#"):
        return None
    if ref != "#" and not ref.startswith("#/"):
        return ...
    target: Any = root
    for token in ref[2:].split("/") if ref != "#" else ():
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            return None
    return target


def _in_place(node: dict, root: Any):
    """(how, sub-schema) for each schema that applies to the same instance as `node`."""
    for key in _REFS:
        ref = node.get(key)
        if isinstance(ref, str):
            target = _target(ref, root)
            if isinstance(target, dict):
                yield ref, target
    for key in _IN_PLACE_ONE:
        if isinstance(node.get(key), dict):
            yield key, node[key]
    for key in _IN_PLACE_LIST:
        if isinstance(node.get(key), list):
            for item in node[key]:
                if isinstance(item, dict):
                    yield key, item


def _cycle(schemas: list[dict], root: Any) -> list[str] | None:
    """The keywords along a cycle of in-place sub-schemas, or None (iterative DFS)."""
    done: set[int] = set()
    for start in schemas:
        if id(start) in done:
            continue
        on_path = {id(start): 0}
        path: list[str] = []
        stack = [(start, _in_place(start, root))]
        while stack:
            node, edges = stack[-1]
            step = next(edges, None)
            if step is None:
                stack.pop()
                done.add(id(node))
                del on_path[id(node)]
                if path:
                    path.pop()
                continue
            how, child = step
            if id(child) in on_path:
                return [*path[on_path[id(child)]:], how]
            if id(child) not in done:
                on_path[id(child)] = len(path) + 1
                path.append(how)
                stack.append((child, _in_place(child, root)))
    return None

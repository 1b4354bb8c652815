"""Structured outputs (`response_format` json_object / json_schema) held on every provider.

The caller asks for JSON (matching a schema) and gets exactly that, or a clear error:

- Request time (`wrap`): with `strict: true` the schema must follow OpenAI's strict-mode
  rules (a root object, every object closed with `additionalProperties: false` and all its
  properties required, no keywords strict mode lacks), else 400 naming the schema. A model
  the catalog marks unable (`supported_parameters` without `response_format`, or a
  `response_format_types` feature without the type) is a 400 too, unless `drop_params`
  asks to drop the parameter instead. A model that takes `json_object` but not
  `json_schema` gets `json_object` plus the schema as a system instruction.
- Response time: each content answer (a choice that finished with `stop` and holds no
  tool calls) must parse as JSON, an object for `json_object`, valid against the schema for
  `json_schema` (jsonschema-rs with a linear-time regex engine, one compiled validator
  per schema, cached by `schemas`). On a mismatch the
  request is sent once more with the bad answer and the validation errors appended; if
  that answer fails too, the caller gets a 502 naming the errors. The response's `usage`
  is the sum over both calls (its `cost` is the request's cost so far, as the engine
  reports it), and both calls are in the history row.
- Streaming: content streams through as it arrives and is checked when its choice
  finishes. A failing answer is never finished: the chunk carrying its `finish_reason`
  (and everything after it) is held back, the upstream stream is read to its end so its
  usage is counted, and the failure is raised, which the client sees as the SSE error
  event. A streamed answer is not retried: part of it has already reached the client.

Answers cut short (`length`), filtered (`content_filter`) or refused (`refusal`) say so in
their own way and are passed through unchecked; so are tool calls, which the caller's own
tool schemas govern.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from .. import schemas
from ..errors import GatewayError
from ..limits import call_plan
from ..providers.json_output import instruction, requested

MAX_ERRORS = 8
MAX_ERROR_CHARS = 300
# What the retry's feedback text may add to the prompt, besides the bad answer (reserved
# against tpm and budgets; each error line is a JSON path and a clipped message).
FEEDBACK_TOKENS = 512 + MAX_ERRORS * (MAX_ERROR_CHARS + 200)

# Keywords OpenAI's strict mode does not implement (its documented list).
STRICT_UNSUPPORTED = frozenset({
    "allOf", "oneOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
    "patternProperties", "unevaluatedProperties", "propertyNames", "minProperties",
    "maxProperties", "unevaluatedItems", "contains", "minContains", "maxContains", "uniqueItems",
})
_ONE_SCHEMA = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
               "propertyNames", "unevaluatedItems", "unevaluatedProperties")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")


def wrap(runner, gw, body: dict, options):
    """The runner that enforces `body["response_format"]`, or `runner` when none is asked."""
    wanted = requested(body)
    if wanted is None:
        return runner
    kind, schema = wanted
    if kind == "json_schema" and body["response_format"]["json_schema"].get("strict"):
        problem = strict_problem(schema)
        if problem:
            raise GatewayError(400, "'response_format.json_schema.schema' does not meet strict mode: "
                                    + problem, param="response_format.json_schema.schema",
                               code="invalid_schema")
    spec = OutputSpec(kind, schema)
    verdict, reason = capability(kind, gw.catalog.get(body["model"]))
    if verdict == "refuse":
        drop = options.drop_params if options.drop_params is not None else gw.settings.drop_params
        if not drop:
            raise GatewayError(400, reason + " (set drop_params to drop it instead)",
                               param="response_format", code="unsupported_parameter")
        return DroppedFormat(runner)
    return StructuredRunner(runner, spec, emulate=verdict == "emulate")


def capability(kind: str, info) -> tuple[str, str]:
    """("ok" | "emulate" | "refuse", why) for this response_format type on this catalog entry."""
    if info is None:
        return "ok", ""
    if "response_format" not in info.supported_parameters:
        return "refuse", f"'response_format' is not supported by model '{info.id}'"
    types = info.features.response_format_types
    if types and kind not in types:
        if kind == "json_schema" and "json_object" in types:
            return "emulate", ""
        return "refuse", (f"response_format of type '{kind}' is not supported by model '{info.id}' "
                          f"(it takes {', '.join(types)})")
    return "ok", ""


# ---------------------------------------------------------------- strict mode


def strict_problem(schema: dict) -> str | None:
    """The first way `schema` breaks OpenAI's strict-mode rules, or None."""
    if schema.get("type") != "object":
        return "the root must be an object schema ('type': 'object'), not a union or a reference"
    for node, path in _subschemas(schema, "#"):
        unsupported = sorted(STRICT_UNSUPPORTED & node.keys())
        if unsupported:
            return f"'{unsupported[0]}' is not supported in strict mode (at {path})"
        kind = node.get("type")
        if kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node:
            if node.get("additionalProperties") is not False:
                return f"'additionalProperties' must be false on every object (at {path})"
            required = node.get("required") or []
            missing = [name for name in node.get("properties") or {} if name not in required]
            if missing:
                return f"every property must be required; '{missing[0]}' is not (at {path})"
    return None


def _subschemas(node: Any, path: str):
    """(schema, JSON pointer) for `node` and every schema inside it, depth first."""
    if not isinstance(node, dict):
        return
    yield node, path
    for key in _ONE_SCHEMA:
        if isinstance(node.get(key), dict):
            yield from _subschemas(node[key], f"{path}/{key}")
    for key in _SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            for i, item in enumerate(node[key]):
                yield from _subschemas(item, f"{path}/{key}/{i}")
    for key in _SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            for name, item in node[key].items():
                yield from _subschemas(item, f"{path}/{key}/{_escape(name)}")


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


# ---------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class OutputSpec:
    kind: str  # "json_object" | "json_schema"
    schema: dict | None  # None for json_object

    def errors(self, text: str) -> list[str]:
        """Why `text` is not the asked-for JSON; empty when it is."""
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return [f"the answer is not valid JSON ({exc})"]
        if self.kind == "json_object":
            return [] if isinstance(value, dict) else ["the answer must be a JSON object"]
        validator = schemas.compiled(self.schema or {})  # checked with the request: cannot fail
        found = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.instance_path])
        return [f"{_where(e.instance_path)}: {_clip(e.message)}" for e in found[:MAX_ERRORS]]

    def failure(self, completion: dict) -> tuple[str, list[str]] | None:
        """(the bad answer, its errors) for the first content answer that fails, or None."""
        for choice in completion.get("choices") or ():
            message = choice.get("message") or {}
            if message.get("tool_calls") or message.get("refusal"):
                continue
            if choice.get("finish_reason") not in (None, "stop"):
                continue
            text = _text(message.get("content"))
            errors = self.errors(text)
            if errors:
                return text, errors
        return None

    def feedback(self, answer: str, errors: list[str]) -> list[dict]:
        """Messages that show the model its answer and what is wrong with it."""
        wanted = ("a single JSON object" if self.kind == "json_object"
                  else "JSON that matches the required JSON Schema")
        text = ("Your previous answer is not " + wanted + ":\n- " + "\n- ".join(errors)
                + "\nAnswer again with only the corrected JSON, nothing else.")
        out = [{"role": "assistant", "content": answer}] if answer.strip() else []
        out.append({"role": "user", "content": text})
        return out


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return ""


def _where(path) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _clip(message: str) -> str:
    return message if len(message) <= MAX_ERROR_CHARS else message[:MAX_ERROR_CHARS] + "..."


def mismatch(errors: list[str], retried: bool) -> GatewayError:
    after = "after one retry" if retried else "(a streamed answer is not retried)"
    return GatewayError(502, f"The model's answer does not match response_format {after}: "
                             + "; ".join(errors), param="response_format",
                        code="invalid_structured_output")


def add_usage(first: dict | None, second: dict | None, cost: float | None) -> dict | None:
    """The token counts of two calls added up (details too); `cost` replaces theirs."""
    if not first or not second:
        out = dict(second or first or {}) or None
    else:
        out = _add(first, second)
    if out is not None and cost is not None:
        out["cost"] = cost
    return out


def _add(a: dict, b: dict) -> dict:
    out = dict(b)
    for key, value in a.items():
        other = out.get(key)
        if key == "cost":
            continue
        if isinstance(value, dict) and isinstance(other, dict):
            out[key] = _add(value, other)
        elif _count(value) and _count(other):
            out[key] = value + other
        elif key not in out:
            out[key] = value
    return out


def _count(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------- runners


class StructuredRunner:
    """Checks every final answer of the runner below against `spec` (module docstring)."""

    def __init__(self, inner, spec: OutputSpec, emulate: bool = False) -> None:
        self.inner = inner
        self.spec = spec
        self.emulate = emulate

    def call_plan(self, body: dict, output: int) -> list[int]:
        """The calls below, and as many again for the retry (which adds the answer and the
        feedback); a stream is not retried. Emulation adds the schema to every call."""
        inner = call_plan(self.inner, body, output)
        if self.emulate:
            note = len(instruction("json_schema", self.spec.schema).encode())
            inner = [extra + note for extra in inner]
        if body.get("stream"):
            return inner
        return [*inner, *(extra + output + FEEDBACK_TOKENS for extra in inner)]

    def outgoing(self, body: dict) -> dict:
        """For a model without `json_schema`: `json_object` plus the schema in words."""
        if not self.emulate:
            return body
        note = {"role": "system", "content": instruction("json_schema", self.spec.schema)}
        return {**body, "response_format": {"type": "json_object"}, "messages": [note, *body["messages"]]}

    async def complete(self, body: dict, options, record) -> dict:
        sent = self.outgoing(body)
        first = await self.inner.complete(sent, options, record)
        failure = self.spec.failure(first)
        if failure is None:
            return first
        answer, errors = failure
        retry = {**sent, "messages": [*sent["messages"], *self.spec.feedback(answer, errors)]}
        second = await self.inner.complete(retry, options, record)
        usage = add_usage(first.get("usage"), second.get("usage"), record.cost)
        if usage is not None:
            second["usage"] = usage
        failure = self.spec.failure(second)
        if failure is not None:
            raise mismatch(failure[1], retried=True)
        return second

    async def stream(self, body: dict, options, record) -> AsyncIterator[list[dict]]:
        batches = self.inner.stream(self.outgoing(body), options, record)
        check = StreamCheck(self.spec)
        failure: GatewayError | None = None
        try:
            async for batch in batches:
                if failure is not None:
                    continue  # read on: the rest of the stream carries the usage
                passed, failure = check.feed(batch)
                if passed:
                    yield passed
        except GatewayError:
            if failure is None:
                raise
        finally:
            await batches.aclose()
        if failure is not None:
            record.status, record.error = failure.status, failure.message
            raise failure


class StreamCheck:
    """Folds streamed content per choice; checks a choice when it finishes."""

    __slots__ = ("exempt", "spec", "texts")

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.texts: dict[int, list[str]] = {}
        self.exempt: set[int] = set()

    def feed(self, batch: list[dict]) -> tuple[list[dict], GatewayError | None]:
        """(the chunks that may go out, the failure that stops the rest or None)."""
        for n, chunk in enumerate(batch):
            for choice in chunk.get("choices") or ():
                index = choice.get("index", 0)
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    self.texts.setdefault(index, []).append(delta["content"])
                if delta.get("tool_calls") or delta.get("refusal"):
                    self.exempt.add(index)
                if choice.get("finish_reason") == "stop" and index not in self.exempt:
                    errors = self.spec.errors("".join(self.texts.get(index, ())))
                    if errors:
                        return batch[:n], mismatch(errors, retried=False)
        return batch, None


class DroppedFormat:
    """`drop_params` for a model that cannot take response_format: sent without it, unchecked."""

    def __init__(self, inner) -> None:
        self.inner = inner

    @staticmethod
    def _note(record) -> None:
        if "response_format" not in record.dropped_params:
            record.dropped_params = [*record.dropped_params, "response_format"]

    async def complete(self, body: dict, options, record) -> dict:
        sent = {k: v for k, v in body.items() if k != "response_format"}
        completion = await self.inner.complete(sent, options, record)
        self._note(record)
        return completion

    async def stream(self, body: dict, options, record) -> AsyncIterator[list[dict]]:
        sent = {k: v for k, v in body.items() if k != "response_format"}
        batches = self.inner.stream(sent, options, record)
        try:
            noted = False
            async for batch in batches:
                if not noted:  # the engine has settled its own dropped params by now
                    self._note(record)
                    noted = True
                yield batch
        finally:
            await batches.aclose()

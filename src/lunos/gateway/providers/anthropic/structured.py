"""`response_format` on the Messages API: native where the model can, a response tool elsewhere.

Native: a `json_schema` request for a model whose catalog entry says
`native_structured_output` goes as `output_config.format` (`{"type": "json_schema",
"schema"}`), the answer then being the text. Anthropic's constrained decoding takes a
subset of JSON Schema, so the schema is adapted the way Anthropic's own SDKs do it: every
object is closed (`additionalProperties: false`), `oneOf` becomes `anyOf`, and keywords it
lacks (`minimum`, `maxLength`, `minItems` above 1, unknown `format`s, ...) move into the
`description` as text; the gateway validates the answer against the original schema, so
nothing is lost. Schemas that cannot be adapted without changing their meaning go the tool
way: recursive ones, open maps (`additionalProperties` other than false, or an object
without `properties`), `allOf`, and schemas that accept any value (no `type`, `enum`,
`const`, `anyOf` or `$ref`), which Anthropic refuses.

Tool: everywhere else (`json_object` always, since Anthropic has no "any JSON object" mode)
the request gets one more tool, `json_response`, whose `input_schema` is the schema; a
schema whose root is not an object is wrapped as `{"value": <schema>}`. The tool is forced
(`tool_choice` `tool`, or `any` next to the caller's own tools, so the model may still
call one of those); where forcing is not allowed (extended thinking, or a model whose
catalog says `forced_tool_choice: false`) the choice stays `auto` and a system instruction
asks for the JSON. The tool's input comes back as the message content, never as a tool
call; text the model wrote before calling it is dropped, and a stream carries the input's
`input_json_delta` pieces as content deltas. When the caller forces a tool of its own
(`required` or a named function), no response tool is added: the answer is a tool call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ...._sse import ServerSentEvent
from ...catalog import features_of
from ..base import ChatRequest
from ..json_output import instruction, requested
from .request import thinking_requested

RESPONSE_TOOL = "json_response"
TOOL_DESCRIPTION = "Give your final answer as this tool's input."
NATIVE_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "uri",
                            "ipv4", "ipv6", "uuid"})
NATIVE_KEYWORDS = frozenset({"type", "enum", "const", "$ref", "description", "title", "default",
                             "required", "pattern"})
DROPPED = frozenset({"$schema", "$comment"})
# Anthropic wants every schema to say what it is ("Schema type is missing" otherwise).
TYPED = frozenset({"type", "enum", "const", "anyOf", "oneOf", "$ref"})


@dataclass(frozen=True, slots=True)
class Plan:
    native: dict | None = None  # the output_config.format schema (native mode)
    tool: str = ""  # the response tool's name (tool mode)
    input_schema: dict | None = None
    wrapped: bool = False  # the tool input is {"value": answer}
    forced: bool = True
    instruction: str = ""  # system text when the tool cannot be forced


def plan(req: ChatRequest) -> Plan | None:
    wanted = requested(req.body)
    if wanted is None:
        return None
    kind, schema = wanted
    features = features_of(req.model_info)
    if kind == "json_schema" and features.native_structured_output:
        native = native_schema(schema)
        if native is not None:
            return Plan(native=native)
    tools = req.body.get("tools") or []
    choice = req.body.get("tool_choice")
    if tools and (choice == "required" or isinstance(choice, dict)):
        return None
    forced = not thinking_requested(req.body) and features.forced_tool_choice
    input_schema, wrapped = tool_input(kind, schema)
    return Plan(tool=_free_name(tools), input_schema=input_schema, wrapped=wrapped, forced=forced,
                instruction="" if forced else instruction(kind, schema))


def apply(out: dict, plan: Plan | None, body: dict) -> None:
    """Add the plan to a Messages API body built by `build_body`."""
    if plan is None:
        return
    if plan.native is not None:
        out["output_config"] = {**out.get("output_config", {}),
                                "format": {"type": "json_schema", "schema": plan.native}}
        return
    out["tools"] = [*out.get("tools", ()), {"name": plan.tool, "description": TOOL_DESCRIPTION,
                                            "input_schema": plan.input_schema}]
    previous = out.get("tool_choice") or {}
    if not plan.forced:
        choice: dict[str, Any] = {"type": "auto"}
    elif body.get("tools") and previous.get("type") != "none":
        choice = {"type": "any"}
    else:
        choice = {"type": "tool", "name": plan.tool}
    if previous.get("disable_parallel_tool_use"):
        choice["disable_parallel_tool_use"] = True
    out["tool_choice"] = choice
    if plan.instruction:
        out["system"] = [*out.get("system", ()), {"type": "text", "text": plan.instruction}]


def _free_name(tools: list[dict]) -> str:
    taken = {t["function"]["name"] for t in tools}
    name, n = RESPONSE_TOOL, 1
    while name in taken:
        name, n = f"{RESPONSE_TOOL}_{n}", n + 1
    return name


# ---------------------------------------------------------------- schemas


def tool_input(kind: str, schema: dict | None) -> tuple[dict, bool]:
    """(the response tool's input_schema, whether the answer is wrapped in {"value": ...})."""
    if kind == "json_object":
        return {"type": "object"}, False
    schema = schema or {}
    if _is_object(schema) or _is_object(_target(schema.get("$ref"), schema)):
        return {**schema, "type": "object"}, False
    defs = {k: schema[k] for k in ("$defs", "definitions") if k in schema}
    inner = {k: v for k, v in schema.items() if k not in defs}
    return {"type": "object", "properties": {"value": inner}, "required": ["value"], **defs}, True


class _Unfit(Exception):
    """The schema cannot be adapted for native structured output without changing its meaning."""


def native_schema(schema: dict) -> dict | None:
    """`schema` as Anthropic's constrained decoding takes it, or None (module docstring)."""
    if _recursive(schema):
        return None
    try:
        return _native(schema)
    except _Unfit:
        return None


def _native(node: Any) -> dict:
    if not isinstance(node, dict) or not TYPED & node.keys():
        raise _Unfit  # boolean schemas, tuple-form items, "any value" ({} or annotations only)
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions"):
            out[key] = {name: _native(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = _native(value)
        elif key in ("anyOf", "oneOf"):
            out["anyOf"] = [_native(sub) for sub in value]
        elif key == "allOf":
            raise _Unfit
        elif key == "additionalProperties":
            if value is not False:
                raise _Unfit
        elif _kept(key, value):
            out[key] = value
        elif key not in DROPPED:
            extra[key] = value
    if _is_object(node):
        if "properties" not in node and node.get("additionalProperties") is not False:
            raise _Unfit  # any object at all: constrained decoding would only allow {}
        out["additionalProperties"] = False
    if extra:
        note = orjson.dumps(extra).decode()
        out["description"] = f"{out['description']}\n\n{note}" if out.get("description") else note
    return out


def _kept(key: str, value: Any) -> bool:
    if key == "minItems":
        return value in (0, 1)
    if key == "format":
        return value in NATIVE_FORMATS
    return key in NATIVE_KEYWORDS


def _is_object(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or (
        kind is None and "properties" in node)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _target(ref: Any, root: dict) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    node: Any = root
    for token in ref[1:].split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node


def _recursive(root: dict) -> bool:
    """Whether a `$ref` leads, directly or not, back to itself."""
    settled: set[str] = set()

    def cycles(ref: str, path: frozenset[str]) -> bool:
        if ref in path:
            return True
        if ref in settled:
            return False
        found = any(cycles(r, path | {ref}) for r in _refs(_target(ref, root)))
        settled.add(ref)
        return found

    return any(cycles(ref, frozenset()) for ref in _refs(root))


# ---------------------------------------------------------------- answers


def to_content(completion: dict, plan: Plan | None) -> dict:
    """The response tool's call -> the message content (the text beside it is dropped)."""
    if plan is None or not plan.tool:
        return completion
    for choice in completion.get("choices") or ():
        message = choice.get("message") or {}
        calls = message.get("tool_calls") or []
        answer = next((c for c in calls if c["function"]["name"] == plan.tool), None)
        if answer is None:
            continue
        others = [c for c in calls if c is not answer]
        message["content"] = _unwrap(answer["function"]["arguments"], plan.wrapped)
        if others:
            message["tool_calls"] = others
        else:
            message.pop("tool_calls", None)
            if choice.get("finish_reason") == "tool_calls":
                choice["finish_reason"] = "stop"
    return completion


def _unwrap(arguments: str, wrapped: bool) -> str:
    if not wrapped:
        return arguments
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and "value" in value:
        return orjson.dumps(value["value"]).decode()
    return arguments


class ResponseToolStream:
    """Wraps the stream translator in tool mode: the response tool's input pieces become
    content deltas, later tool calls move down one index, and text is held until the end
    (dropped if the response tool was called, sent before the finish chunk otherwise)."""

    __slots__ = ("answer", "held", "inner", "others", "pieces", "plan")

    def __init__(self, inner, plan: Plan) -> None:
        self.inner = inner
        self.plan = plan
        self.answer: int | None = None  # the tool-call index of the response tool
        self.others = False
        self.held: list[str] = []
        self.pieces: list[str] = []  # a wrapped input, sent whole at the end

    def feed(self, event: ServerSentEvent) -> list[dict]:
        return self._map(self.inner.feed(event))

    def finish(self) -> list[dict]:
        return self._map(self.inner.finish())

    def _map(self, chunks: Iterable[dict]) -> list[dict]:
        out: list[dict] = []
        for chunk in chunks:
            choices = chunk.get("choices")
            if not choices:
                out.append(chunk)
                continue
            choice = choices[0]
            delta = dict(choice.get("delta") or {})
            had = bool(delta)
            content = self._calls(delta)
            if delta.get("content"):
                self.held.append(delta.pop("content"))
            finish = choice.get("finish_reason")
            if finish:
                if self.answer is not None:
                    if self.plan.wrapped and self.pieces:
                        content.append(_unwrap("".join(self.pieces), True))
                    if finish == "tool_calls" and not self.others:
                        finish = "stop"
                else:
                    content.extend(self.held)
                self.held = []
            if content:
                out.append({"choices": [{"index": choice.get("index", 0),
                                         "delta": {"content": "".join(content)}, "finish_reason": None}]})
            if finish or delta or not had:
                out.append({**chunk, "choices": [{**choice, "delta": delta, "finish_reason": finish}]})
        return out

    def _calls(self, delta: dict) -> list[str]:
        """Take the response tool out of `delta`'s tool calls; return its input pieces."""
        content: list[str] = []
        calls = delta.pop("tool_calls", None)
        if not calls:
            return content
        kept = []
        for call in calls:
            index = call.get("index", 0)
            fn = call.get("function") or {}
            if self.answer is None and call.get("id") and fn.get("name") == self.plan.tool:
                self.answer = index
                continue
            if index == self.answer:
                if fn.get("arguments"):
                    (self.pieces if self.plan.wrapped else content).append(fn["arguments"])
                continue
            if self.answer is not None and index > self.answer:
                call = {**call, "index": index - 1}
            self.others = True
            kept.append(call)
        if kept:
            delta["tool_calls"] = kept
        return content

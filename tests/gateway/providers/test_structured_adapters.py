"""`response_format` in the adapters (Anthropic native or response tool, Gemini's schema
dialect and JSON mode next to tools), and proof that the stand-ins refuse what the real
APIs refuse about structured outputs."""

from __future__ import annotations

import json

import httpx
import orjson
import pytest

from lunos._sse import ServerSentEvent
from lunos.gateway.catalog import ModelInfo
from lunos.gateway.providers.anthropic import AnthropicAdapter
from lunos.gateway.providers.anthropic.stream import AnthropicStreamTranslator
from lunos.gateway.providers.anthropic.structured import (
    ResponseToolStream,
    apply,
    native_schema,
    plan,
    to_content,
    tool_input,
)
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from lunos.gateway.providers.google import GoogleAdapter
from lunos.gateway.providers.google.request import json_with_tools
from lunos.gateway.providers.google.schema import response_schema
from lunos.gateway.providers.json_output import instruction, requested
from tests.standins.anthropic_api import AnthropicStandIn
from tests.standins.gemini_api import GeminiStandIn
from tests.standins.harness import ServerThread
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.structured import instructed

POINT = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
NATIVE = ModelInfo("anthropic/claude-sonnet-4-5", "anthropic", features={"native_structured_output": True})
NO_FORCING = ModelInfo("anthropic/claude-x-1", "anthropic", features={"forced_tool_choice": False})
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def fmt(schema=None) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "out", "schema": POINT if schema is None else schema}}


def claude(info: ModelInfo | None = None, stream: bool = False, **body) -> ChatRequest:
    model = info.id if info else "anthropic/claude-3-7-sonnet-20250219"
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], **body}
    return ChatRequest(body, model, "anthropic", model.split("/", 1)[1], info, stream=stream)


def anthropic_body(req: ChatRequest) -> dict:
    adapter = AnthropicAdapter(ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", "k"))
    return orjson.loads(adapter.build_request(req).body)


# ---------------------------------------------------------------- the shared reading


def test_requested_and_instruction():
    assert requested({"response_format": {"type": "text"}}) is None
    assert requested({}) is None
    assert requested({"response_format": {"type": "json_object"}}) == ("json_object", None)
    assert requested({"response_format": fmt()}) == ("json_schema", POINT)
    assert requested({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}) == ("json_schema", {})
    # the stand-ins' model reads the instruction back, as a real model would follow it
    assert instructed(instruction("json_schema", POINT)) == (POINT, True)
    assert instructed(instruction("json_object")) == (None, True)
    assert instructed("Be brief.") == (None, False)


# ---------------------------------------------------------------- Anthropic: native schema


def test_native_schema_closes_objects_and_describes_what_it_cannot_enforce():
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "$defs": {"Tag": {"type": "object", "properties": {"t": {"type": "string", "maxLength": 5}}}},
              "properties": {
                  "n": {"type": "integer", "minimum": 1, "description": "how many"},
                  "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "minItems": 1},
                  "many": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 2},
                  "when": {"type": "string", "format": "date-time"},
                  "code": {"type": "string", "format": "iban"},
                  "either": {"oneOf": [{"type": "string"}, {"type": "null"}]}},
              "required": ["n"]}
    out = native_schema(schema)
    assert out["additionalProperties"] is False and "$schema" not in out
    assert out["$defs"]["Tag"] == {"type": "object", "additionalProperties": False,
                                   "properties": {"t": {"type": "string", "description": '{"maxLength":5}'}}}
    props = out["properties"]
    assert props["n"] == {"type": "integer", "description": 'how many\n\n{"minimum":1}'}
    assert props["tags"] == {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "minItems": 1}
    assert props["many"] == {"type": "array", "items": {"type": "string", "format": "email"},
                             "description": '{"minItems":2}'}
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert props["code"] == {"type": "string", "description": '{"format":"iban"}'}
    assert props["either"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert out["required"] == ["n"]
    assert "additionalProperties" not in schema  # the caller's schema is not changed


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}},
    {"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
     "type": "object", "properties": {"head": {"$ref": "#/$defs/Node"}}},
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"type": "object"},
    {"type": "object", "properties": {"a": {"allOf": [{"type": "string"}]}}},
    {"type": "object", "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}},
    {},
    {"type": "object", "properties": {"anything": {"description": "any value"}}},
])
def test_schemas_native_decoding_would_change_go_the_tool_way(schema):
    assert native_schema(schema) is None
    chosen = plan(claude(NATIVE, response_format=fmt(schema)))
    assert chosen.native is None and chosen.tool == "json_response"


def test_tool_input_wraps_what_is_not_an_object():
    assert tool_input("json_object", None) == ({"type": "object"}, False)
    assert tool_input("json_schema", POINT) == ({**POINT, "type": "object"}, False)
    by_ref = {"$ref": "#/$defs/P", "$defs": {"P": POINT}}
    assert tool_input("json_schema", by_ref) == ({**by_ref, "type": "object"}, False)
    listing = {"type": "array", "items": {"$ref": "#/$defs/P"}, "$defs": {"P": POINT}}
    assert tool_input("json_schema", listing) == ({
        "type": "object", "properties": {"value": {"type": "array", "items": {"$ref": "#/$defs/P"}}},
        "required": ["value"], "$defs": {"P": POINT}}, True)


# ---------------------------------------------------------------- Anthropic: the plan on the wire


def test_native_model_gets_output_config_format():
    body = anthropic_body(claude(NATIVE, response_format=fmt(), reasoning_effort="low"))
    assert body["output_config"]["format"] == {"type": "json_schema", "schema": {**POINT, "additionalProperties": False}}
    assert "tools" not in body


def test_native_format_keeps_the_adaptive_effort():
    adaptive = ModelInfo("anthropic/claude-opus-4-7", "anthropic",
                         features={"native_structured_output": True, "thinking": "adaptive"})
    body = anthropic_body(claude(adaptive, response_format=fmt(), reasoning_effort="high"))
    assert body["output_config"] == {"effort": "high", "format": {"type": "json_schema", "schema": {
        **POINT, "additionalProperties": False}}}


@pytest.mark.parametrize(("extra", "choice"), [
    ({}, {"type": "tool", "name": "json_response"}),
    ({"tools": [WEATHER]}, {"type": "any"}),
    ({"tools": [WEATHER], "tool_choice": "auto"}, {"type": "any"}),
    ({"tools": [WEATHER], "tool_choice": "none"}, {"type": "tool", "name": "json_response"}),
    ({"tools": [WEATHER], "parallel_tool_calls": False}, {"type": "any", "disable_parallel_tool_use": True}),
])
def test_the_response_tool_is_forced(extra, choice):
    body = anthropic_body(claude(response_format=fmt(), **extra))
    assert body["tools"][-1] == {"name": "json_response", "description": body["tools"][-1]["description"],
                                 "input_schema": {**POINT, "type": "object"}}
    assert body["tool_choice"] == choice
    assert "system" not in body


@pytest.mark.parametrize(("info", "extra"), [(None, {"reasoning_effort": "low"}), (NO_FORCING, {})])
def test_where_a_tool_cannot_be_forced_the_json_is_asked_for_in_words(info, extra):
    body = anthropic_body(claude(info, response_format=fmt(), **extra))
    assert body["tool_choice"] == {"type": "auto"}
    assert body["system"][-1] == {"type": "text", "text": instruction("json_schema", POINT)}


def test_json_object_is_a_tool_even_on_a_native_model():
    body = anthropic_body(claude(NATIVE, response_format={"type": "json_object"}))
    assert body["tools"][-1]["input_schema"] == {"type": "object"} and "output_config" not in body


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_caller_forcing_its_own_tool_gets_no_response_tool(choice):
    assert plan(claude(response_format=fmt(), tools=[WEATHER], tool_choice=choice)) is None
    assert [t["name"] for t in anthropic_body(claude(response_format=fmt(), tools=[WEATHER], tool_choice=choice))[
        "tools"]] == ["get_weather"]


def test_the_response_tool_name_never_clashes():
    taken = [{"type": "function", "function": {"name": n}} for n in ("json_response", "json_response_1")]
    assert plan(claude(response_format=fmt(), tools=taken)).tool == "json_response_2"


def test_apply_without_a_plan_changes_nothing():
    out = {"model": "m"}
    apply(out, None, {})
    assert out == {"model": "m"}


# ---------------------------------------------------------------- Anthropic: answers


def call(name: str, arguments: str, call_id: str = "toolu_1") -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_the_response_tool_call_becomes_the_content():
    chosen = plan(claude(response_format=fmt()))
    done = to_content({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Here you go:", "tool_calls": [call("json_response", '{"x":1}')]}}]}, chosen)
    assert done["choices"][0] == {"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": '{"x":1}'}}
    both = to_content({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [call("get_weather", "{}", "toolu_w"), call("json_response", '{"x":2}')]}}]}, chosen)
    message = both["choices"][0]["message"]
    assert message["content"] == '{"x":2}' and [c["id"] for c in message["tool_calls"]] == ["toolu_w"]
    assert both["choices"][0]["finish_reason"] == "tool_calls"


def test_a_wrapped_answer_is_unwrapped():
    chosen = plan(claude(response_format=fmt({"type": "array", "items": {"type": "integer"}})))
    assert chosen.wrapped
    done = to_content({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [call("json_response", '{"value":[1,2]}')]}}]}, chosen)
    assert done["choices"][0]["message"]["content"] == "[1,2]"


def events(*blocks, stop: str = "tool_use") -> list[ServerSentEvent]:
    """A Messages stream with the given content blocks: ("text", str) or ("tool", name, id, pieces)."""
    out = [("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 5}}})]
    for i, block in enumerate(blocks):
        if block[0] == "text":
            out.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                "content_block": {"type": "text", "text": ""}}))
            out.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                "delta": {"type": "text_delta", "text": block[1]}}))
        else:
            _, name, call_id, pieces = block
            out.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                "type": "tool_use", "id": call_id, "name": name, "input": {}}}))
            out += [("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                "type": "input_json_delta", "partial_json": p}}) for p in pieces]
        out.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    out.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop},
                                  "usage": {"output_tokens": 7}}))
    out.append(("message_stop", {"type": "message_stop"}))
    return [ServerSentEvent(event=name, data=json.dumps(data)) for name, data in out]


def translate(req: ChatRequest, stream_events: list[ServerSentEvent]) -> list[dict]:
    translator = ResponseToolStream(AnthropicStreamTranslator("anthropic"), plan(req))
    chunks = []
    for event in stream_events:
        chunks += translator.feed(event)
    return chunks + translator.finish()


def deltas(chunks: list[dict]) -> list[dict]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def test_streamed_tool_input_pieces_are_content_deltas():
    chunks = translate(claude(response_format=fmt(), stream=True),
                       events(("tool", "json_response", "toolu_1", ['{"x"', ": 1}"])))
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": '{"x"'}, {"content": ": 1}"}, {}]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1] == {"choices": [], "usage": chunks[-1]["usage"]} and chunks[-1]["usage"]["prompt_tokens"] == 5


def test_streamed_caller_tool_calls_keep_their_own_numbers():
    chunks = translate(claude(response_format=fmt(), tools=[WEATHER], stream=True), events(
        ("tool", "json_response", "toolu_1", ['{"x": 1}']), ("tool", "get_weather", "toolu_2", ['{"city": "P"}'])))
    calls = [d["tool_calls"][0] for d in deltas(chunks) if "tool_calls" in d]
    assert calls[0] == {"index": 0, "id": "toolu_2", "type": "function",
                        "function": {"name": "get_weather", "arguments": ""}}
    assert calls[1] == {"index": 0, "function": {"arguments": '{"city": "P"}'}}
    assert {"content": '{"x": 1}'} in deltas(chunks)
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_streamed_text_is_held_and_dropped_when_the_tool_answers():
    req = claude(NO_FORCING, response_format=fmt(), stream=True)
    chunks = translate(req, events(("text", "Sure, here:"), ("tool", "json_response", "toolu_1", ['{"x": 2}'])))
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == '{"x": 2}'
    chunks = translate(req, events(("text", '{"x": 3}'), stop="end_turn"))
    texts = [d["content"] for d in deltas(chunks) if d.get("content")]
    assert texts == ['{"x": 3}'] and chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_a_streamed_wrapped_answer_arrives_whole_at_the_end():
    req = claude(response_format=fmt({"type": "array", "items": {"type": "integer"}}), stream=True)
    chunks = translate(req, events(("tool", "json_response", "toolu_1", ['{"value": [1,', " 2]}"])))
    assert [d["content"] for d in deltas(chunks) if d.get("content")] == ["[1,2]"]


# ---------------------------------------------------------------- Gemini


def gemini(model: str = "gemini-2.5-flash", info: ModelInfo | None = None, **body) -> ChatRequest:
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return ChatRequest({"model": f"google/{model}", **body}, f"google/{model}", "google", model, info)


def gemini_body(req: ChatRequest) -> dict:
    adapter = GoogleAdapter(ProviderConfig("google", "google", "https://generativelanguage.googleapis.com", "k"))
    return orjson.loads(adapter.build_request(req).body)


def test_response_schema_spells_const_as_enum_and_unwraps_a_lone_all_of():
    schema = {"type": "object", "$defs": {"C": {"type": "object", "properties": {
        "kind": {"type": "string", "const": "cat"}, "flag": {"const": True}}}},
        "properties": {"c": {"allOf": [{"$ref": "#/$defs/C"}], "description": "the cat"},
                       "n": {"const": 3, "description": "three"}}}
    out = response_schema(schema)
    assert out["$defs"]["C"]["properties"]["kind"] == {"type": "string", "enum": ["cat"]}
    assert out["$defs"]["C"]["properties"]["flag"] == {"const": True}  # Gemini's enum takes no booleans
    assert out["properties"]["c"] == {"$ref": "#/$defs/C"}
    assert out["properties"]["n"] == {"enum": [3], "description": "three"}
    assert schema["properties"]["n"] == {"const": 3, "description": "three"}


@pytest.mark.parametrize(("model", "info", "combines"), [
    ("gemini-2.5-flash", None, False),
    ("gemini-2.0-flash", None, False),
    ("gemini-3.5-flash", None, True),
    ("gemini-4-neon", None, True),
    ("gemini-3.5-flash", ModelInfo("google/gemini-3.5-flash", "google",
                                   features={"structured_output_with_tools": False}), False),
])
def test_json_with_tools(model, info, combines):
    assert json_with_tools(gemini(model, info)) is combines


def test_gemini_2_with_tools_gets_the_schema_in_words():
    body = gemini_body(gemini(response_format=fmt(), tools=[WEATHER],
                              messages=[{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Hi"}]))
    assert "responseMimeType" not in body.get("generationConfig", {})
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}, {"text": instruction("json_schema", POINT)}]
    body = gemini_body(gemini("gemini-3.5-flash", response_format=fmt(), tools=[WEATHER]))
    assert body["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": POINT}
    assert "systemInstruction" not in body
    assert gemini_body(gemini(response_format={"type": "json_object"}))["generationConfig"] == {
        "responseMimeType": "application/json"}


# ---------------------------------------------------------------- the stand-ins are strict


@pytest.fixture(scope="module")
def servers():
    apps = {"anthropic": AnthropicStandIn("k"), "gemini": GeminiStandIn("k"), "openai": OpenAIStandIn("k")}
    running = {name: ServerThread(app).start() for name, app in apps.items()}
    yield {name: server.url for name, server in running.items()}
    for server in running.values():
        server.stop()


def post_anthropic(url: str, **body) -> httpx.Response:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}], **body}
    return httpx.post(url + "/v1/messages", json=body, headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})


def output_format(schema: dict) -> dict:
    return {"format": {"type": "json_schema", "schema": schema}}


CLOSED = {**POINT, "additionalProperties": False}


@pytest.mark.parametrize(("body", "says"), [
    ({"model": "claude-3-7-sonnet-20250219", "output_config": output_format(CLOSED)}, "not supported on model"),
    ({"output_config": output_format(POINT)}, "'additionalProperties' must be explicitly set to false"),
    ({"output_config": output_format({**CLOSED, "properties": {"x": {"type": "integer", "minimum": 1}}})},
     "'minimum' is not supported"),
    ({"output_config": output_format({**CLOSED, "properties": {"x": {"oneOf": [{"type": "integer"}]}}})},
     "'oneOf' is not supported"),
    ({"output_config": output_format({**CLOSED, "properties": {"x": {"$ref": "#"}}})}, "recursive"),
    ({"output_config": output_format({**CLOSED, "properties": {"x": {"title": "X"}}})}, "Schema type is missing"),
    ({"output_config": {"format": {"type": "json_schema", "schema": CLOSED, "name": "x"}}}, "Extra inputs"),
    ({"tools": [{"name": "t", "input_schema": {"type": "object", "properties": {"a": {"type": "objekt"}}}}]},
     "JSON schema is invalid"),
])
def test_anthropic_standin_refuses_what_structured_outputs_refuse(servers, body, says):
    r = post_anthropic(servers["anthropic"], **body)
    assert r.status_code == 400 and says in r.json()["error"]["message"], r.text


def test_anthropic_standin_answers_a_format_with_json(servers):
    r = post_anthropic(servers["anthropic"], output_config=output_format(CLOSED))
    assert json.loads(r.json()["content"][0]["text"]) == {"x": 1}


def post_gemini(url: str, model: str, **body) -> httpx.Response:
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}], **body}
    return httpx.post(f"{url}/v1beta/models/{model}:generateContent", json=body, headers={"x-goog-api-key": "k"})


def test_gemini_standin_refuses_json_mode_next_to_functions_before_gemini_3(servers):
    body = {"tools": [{"functionDeclarations": [{"name": "f"}]}],
            "generationConfig": {"responseMimeType": "application/json"}}
    r = post_gemini(servers["gemini"], "gemini-2.5-flash", **body)
    assert r.status_code == 400 and "Function calling with a response mime type" in r.text
    assert post_gemini(servers["gemini"], "gemini-3.5-flash", **body).status_code == 200
    r = post_gemini(servers["gemini"], "gemini-3.5-flash", generationConfig={"responseMimeType": "text/html"})
    assert r.status_code == 400 and "allowed mimetypes" in r.text


def test_gemini_standin_ignores_const_as_gemini_does(servers):
    schema = {"type": "object", "properties": {"kind": {"type": "string", "const": "cat"}}, "required": ["kind"]}
    r = post_gemini(servers["gemini"], "gemini-3.5-flash", generationConfig={
        "responseMimeType": "application/json", "responseJsonSchema": schema})
    answer = json.loads(r.json()["candidates"][0]["content"]["parts"][0]["text"])
    assert answer == {"kind": "test"}  # which is why the adapter sends {"enum": ["cat"]}


def post_openai(url: str, **body) -> httpx.Response:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], **body}
    return httpx.post(url + "/v1/chat/completions", json=body, headers={"authorization": "Bearer k"})


@pytest.mark.parametrize(("body", "says"), [
    ({"response_format": {"type": "xml"}}, "Supported values are"),
    ({"response_format": {"type": "json_object"}}, "must contain the word 'json'"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": CLOSED}}},
     "'response_format.json_schema.name'"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "o", "strict": True, "schema": POINT}}},
     "'additionalProperties' is required to be supplied and to be false"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "o", "strict": True, "schema": {
        **CLOSED, "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}}}}}, "Missing 'y'"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "o", "strict": True, "schema": {
        **CLOSED, "properties": {"x": {"allOf": [{"type": "integer"}]}}}}}},
     "In context=('properties', 'x'), 'allOf' is not permitted"),
    ({"model": "deepseek-v4-pro", "response_format": {"type": "json_schema", "json_schema": {
        "name": "o", "schema": CLOSED}}}, "This response_format type is unavailable now"),
])
def test_openai_standin_refuses_what_openai_refuses(servers, body, says):
    r = post_openai(servers["openai"], **body)
    assert r.status_code == 400 and says in r.json()["error"]["message"], r.text


def test_openai_standin_follows_a_schema_given_in_words(servers):
    r = post_openai(servers["openai"], response_format={"type": "json_object"}, messages=[
        {"role": "system", "content": instruction("json_schema", POINT)}, {"role": "user", "content": "Hi"}])
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == {"x": 1}

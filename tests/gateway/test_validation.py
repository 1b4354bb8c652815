"""Every SPEC §4 parameter is checked before anything goes upstream; errors name the param."""

from __future__ import annotations

import base64

import orjson
import pytest

from lunos.gateway import schemas
from lunos.gateway.errors import GatewayError
from lunos.gateway.validation import parse_json, validate_chat

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()


def body(**extra):
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], **extra}


def rejects(payload, param, status=400):
    with pytest.raises(GatewayError) as info:
        validate_chat(payload)
    assert info.value.status == status
    assert info.value.param == param, info.value.message
    assert info.value.to_dict()["error"]["type"] == "invalid_request_error"
    return info.value


def test_minimal_body_passes_unchanged():
    payload = body()
    out, options = validate_chat(payload)
    assert out == payload
    assert options.observability is False and options.models == []


def test_malformed_json():
    with pytest.raises(GatewayError) as info:
        parse_json(b'{"model": ')
    assert info.value.status == 400 and info.value.code == "invalid_json"


def test_body_must_be_object():
    with pytest.raises(GatewayError):
        validate_chat(["not", "an", "object"])


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (body(model=""), "model"),
        (body(model=5), "model"),
        ({"model": "openai/gpt-4o"}, "messages"),
        (body(messages=[]), "messages"),
        (body(messages="hi"), "messages"),
        (body(messages=["hi"]), "messages[0]"),
        (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
        (body(messages=[{"content": "x"}]), "messages[0].role"),
        (body(messages=[{"role": "user"}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": []}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (body(messages=[{"role": "user", "content": [{"type": "audio"}]}]), "messages[0].content[0].type"),
        (body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content[0].text"),
        (body(messages=[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}]),
         "messages[0].content[0].type"),
        (body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]),
         "messages[0].content[0].image_url.url"),
        (body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]),
         "messages[0].content[0].image_url.url"),
        (body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}]}]),
         "messages[0].content[0].image_url.url"),
        (body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG, "detail": "max"}}]}]),
         "messages[0].content[0].image_url.detail"),
        (body(messages=[{"role": "assistant"}]), "messages[0].content"),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
        (body(messages=[{"role": "tool", "tool_call_id": "call_1", "content": "x"}]), "messages[0].tool_call_id"),
        (body(messages=[{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {}}}]}]),
         "messages[0].tool_calls[0].function.arguments"),
        (body(temperature=2.5), "temperature"),
        (body(temperature="hot"), "temperature"),
        (body(temperature=True), "temperature"),
        (body(top_p=1.5), "top_p"),
        (body(frequency_penalty=-3), "frequency_penalty"),
        (body(presence_penalty=2.1), "presence_penalty"),
        (body(max_tokens=0), "max_tokens"),
        (body(max_tokens=1.5), "max_tokens"),
        (body(max_completion_tokens=-1), "max_completion_tokens"),
        (body(n=0), "n"),
        (body(seed="x"), "seed"),
        (body(user=5), "user"),
        (body(stop=["a", "b", "c", "d", "e"]), "stop"),
        (body(stop=[1]), "stop"),
        (body(stream="yes"), "stream"),
        (body(stream_options={"include_usage": True}), "stream_options"),
        (body(stream=True, stream_options={"include_usage": "y"}), "stream_options.include_usage"),
        (body(parallel_tool_calls="no"), "parallel_tool_calls"),
        (body(logit_bias={"abc": 1}), "logit_bias"),
        (body(top_logprobs=3), "top_logprobs"),
        (body(reasoning_effort="extreme"), "reasoning_effort"),
        (body(tools={}), "tools"),
        (body(tools=[{"type": "retrieval"}]), "tools[0].type"),
        (body(tools=[{"type": "function", "function": {"name": "bad name"}}]), "tools[0].function.name"),
        (body(tools=[{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]),
         "tools[1].function.name"),
        (body(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "strnig"}}}]),
         "tools[0].function.parameters"),
        (body(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}}}]),
         "tools[0].function.parameters"),
        (body(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]),
         "tools[0].function.parameters"),
        (body(tool_choice="always"), "tool_choice"),
        (body(tool_choice="required"), "tool_choice"),
        (body(tools=[{"type": "function", "function": {"name": "f"}}],
              tool_choice={"type": "function", "function": {"name": "g"}}), "tool_choice.function.name"),
        (body(response_format={"type": "xml"}), "response_format.type"),
        (body(response_format={"type": "json_schema"}), "response_format.json_schema"),
        (body(response_format={"type": "json_schema", "json_schema": {"name": "a b"}}), "response_format.json_schema.name"),
        (body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}}),
         "response_format.json_schema.schema"),
        (body(tools=[{"type": "web_search", "parameters": {"max_results": 50}}]), "tools[0].parameters.max_results"),
        (body(tools=[{"type": "web_search", "parameters": {"engine": "bing"}}]), "tools[0].parameters.engine"),
        (body(tools=[{"type": "web_search", "parameters": {"depth": 3}}]), "tools[0].parameters.depth"),
        (body(observability="yes"), "observability"),
        (body(models="openai/gpt-4o"), "models"),
        (body(fallback_model=3), "fallback_model"),
        (body(drop_params=1), "drop_params"),
    ],
)
def test_rejects_naming_the_parameter(payload, param):
    rejects(payload, param)


@pytest.mark.parametrize("url", ["http://[::1/", "https://[::1/a.png", "http://[zz]/a.png",
                                 "https://example.com:port/a.png", "https:///a.png"])
def test_a_malformed_image_url_is_a_400_naming_it(url):
    payload = body(messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": url}}]}])
    error = rejects(payload, "messages[0].content[1].image_url.url")
    assert "not a valid URL" in error.message


def test_tool_round_trip_messages_pass():
    payload = body(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                                         {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "42"},
        ],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
    )
    out, _ = validate_chat(payload)
    assert out["messages"][3]["tool_call_id"] == "toolu_1"


def test_lunos_fields_are_taken_out():
    out, options = validate_chat(body(observability=True, models=["anthropic/claude-haiku-4-5"],
                                      fallback_model="google/gemini-2.5-flash", drop_params=True,
                                      cache=False))
    for name in ("observability", "models", "fallback_model", "drop_params", "cache"):
        assert name not in out
    assert options.observability is True
    assert options.models == ["anthropic/claude-haiku-4-5", "google/gemini-2.5-flash"]
    assert options.drop_params is True


def test_cache_must_be_a_boolean():
    with pytest.raises(GatewayError) as info:
        validate_chat(body(cache="yes"))
    assert info.value.param == "cache"


def test_web_search_tool_is_taken_out_of_tools():
    out, options = validate_chat(body(tools=[
        {"type": "web_search", "parameters": {"max_results": 3, "allowed_domains": ["Example.com"]}},
        {"type": "function", "function": {"name": "f"}},
    ]))
    assert [t["type"] for t in out["tools"]] == ["function"]
    assert options.web_search.max_results == 3
    assert options.web_search.allowed_domains == ("example.com",)


def test_web_search_options_switch():
    out, options = validate_chat(body(web_search_options={"search_context_size": "high"}))
    assert "web_search_options" not in out
    assert options.web_search.search_context_size == "high"


def test_defaults_and_ranges_that_are_fine():
    validate_chat(body(temperature=0, top_p=1, n=1, frequency_penalty=0, presence_penalty=-2,
                       stop="END", seed=42, max_tokens=1, logprobs=True, top_logprobs=5,
                       stream=True, stream_options={"include_usage": True}))


def test_tool_calls_must_be_answered_before_the_conversation_goes_on():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    unanswered_at_end = body(messages=[{"role": "user", "content": "x"},
                                       {"role": "assistant", "content": None, "tool_calls": [call]}])
    error = rejects(unanswered_at_end, "messages")
    assert "'call_1'" in error.message
    interrupted = body(messages=[{"role": "user", "content": "x"},
                                 {"role": "assistant", "content": None, "tool_calls": [call]},
                                 {"role": "user", "content": "never mind"}])
    assert "messages[2]" in rejects(interrupted, "messages").message


# ---------------------------------------------------------------- schemas: bounded, linear


def tool(parameters):
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}


def schema_format(schema):
    return {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}


def nested(depth):
    schema = {"type": "object"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize("depth", [40, 300, 1000])
def test_a_deeply_nested_tool_schema_is_a_400(depth):
    error = rejects(body(tools=[tool(nested(depth))]), "tools[0].function.parameters")
    assert "nested too deep" in error.message and error.code == "invalid_schema"


def test_a_schema_seen_before_is_not_walked_again_and_a_refused_one_is_refused_again(monkeypatch):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "title": "seen-once"}
    validate_chat(body(tools=[tool(schema)]))
    walks = []
    measure = schemas._measure
    monkeypatch.setattr(schemas, "_measure", lambda s: walks.append(s) or measure(s))
    validate_chat(body(tools=[tool(dict(reversed(schema.items())))]))  # the same JSON, keys reordered
    assert walks == []  # found by its canonical JSON
    for _ in range(2):  # never cached: walked, and refused, every time
        assert "nested too deep" in rejects(body(tools=[tool(nested(80))]), "tools[0].function.parameters").message
    assert len(walks) == 2


def test_a_large_schema_is_a_400_naming_it():
    huge = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 200}
                                             for i in range(2000)}}
    error = rejects(body(response_format=schema_format(huge)), "response_format.json_schema.schema")
    assert "too large" in error.message
    many = {"type": "object", "properties": {f"p{i}": {"enum": list(range(10))} for i in range(3000)}}
    assert "too complex" in rejects(body(tools=[tool(many)]), "tools[0].function.parameters").message


def test_the_schemas_of_one_request_are_bounded_together():
    big = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 100}
                                            for i in range(1000)}}
    fits = schemas.MAX_REQUEST_BYTES // schemas.check(big)
    assert 1 < fits < 10
    tools = [{"type": "function", "function": {"name": f"f{i}", "parameters": big}} for i in range(fits + 1)]
    error = rejects(body(tools=tools), f"tools[{fits}].function.parameters")
    assert "in all" in error.message
    rejects(body(tools=tools[:fits], response_format=schema_format(big)), "response_format.json_schema.schema")
    validate_chat(body(tools=tools[:fits]))


@pytest.mark.parametrize("schema", [
    {"$ref": "#"},
    {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    {"$defs": {"a": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"},
    {"type": "object", "properties": {"x": {"allOf": [{"$ref": "#/properties/x"}]}}},
    {"type": "object", "properties": {"x": {"allOf": [{"not": {"$ref": "#/properties/x"}}]}}},
])
def test_a_ref_cycle_that_never_reaches_a_value_is_a_400(schema):
    error = rejects(body(response_format=schema_format(schema)), "response_format.json_schema.schema")
    assert "cycle" in error.message or "points nowhere" in error.message


def test_recursion_through_properties_and_items_is_fine():
    tree = {"type": "object", "properties": {"name": {"type": "string"},
                                             "children": {"type": "array", "items": {"$ref": "#"}}}}
    linked = {"$defs": {"node": {"type": "object", "properties": {
        "next": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/node"}]}}}}, "$ref": "#/$defs/node"}
    validate_chat(body(response_format=schema_format(tree), tools=[tool(linked)]))


@pytest.mark.parametrize("pattern", ["(?=a)b", "(a)\\1", "(?<!x)y"])
def test_a_pattern_the_linear_engine_lacks_is_a_400(pattern):
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": pattern}}}
    error = rejects(body(tools=[tool(schema)]), "tools[0].function.parameters")
    assert "regex" in error.message
    props = {"type": "object", "patternProperties": {pattern: {"type": "string"}}}
    rejects(body(response_format=schema_format(props)), "response_format.json_schema.schema")


def test_remote_references_are_refused():
    schema = {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}
    assert "points nowhere" in rejects(body(tools=[tool(schema)]), "tools[0].function.parameters").message


def test_the_compiled_schema_cache_is_bounded_by_bytes():
    cache = schemas.cache
    cache.clear()
    filler = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 100}
                                               for i in range(1500)}}
    size = schemas.check(filler)
    count = schemas.CACHE_BYTES // size + 5
    for i in range(count):
        schemas.check({**filler, "title": str(i)})
    assert cache.size <= schemas.CACHE_BYTES
    assert len(cache.entries) < count
    assert schemas.compiled({**filler, "title": str(count - 1)}) is cache.entries[next(reversed(cache.entries))]
    first = orjson.dumps({**filler, "title": "0"}, option=orjson.OPT_SORT_KEYS)
    assert first not in cache.entries  # least recently used went first
    cache.clear()

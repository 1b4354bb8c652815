"""OpenAI request -> Gemini request: URL, headers, contents, tools, generation config."""

from __future__ import annotations

import base64

import orjson
import pytest

from lunos.gateway.catalog import ModelInfo
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from lunos.gateway.providers.google import GoogleAdapter
from lunos.gateway.providers.google.schema import function_parameters, json_schema

KEY = "gm-secret-key"
PNG = base64.b64encode(b"\x89PNG fake image").decode()
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}


def adapter(base_url: str = "https://generativelanguage.googleapis.com/") -> GoogleAdapter:
    return GoogleAdapter(ProviderConfig("google", "google", base_url, KEY,
                                        headers=(("x-extra", "1"),)))


def request(model: str = "gemini-2.5-flash", stream: bool = False, info: ModelInfo | None = None,
            **body) -> ChatRequest:
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return ChatRequest({"model": f"google/{model}", **body}, f"google/{model}", "google", model,
                       model_info=info, stream=stream)


def built(model: str = "gemini-2.5-flash", **body) -> dict:
    return orjson.loads(adapter().build_request(request(model, **body)).body)


def call(call_id: str, name: str, args: str, signature: str | None = None) -> dict:
    out = {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
    if signature:
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


# -- URL and headers ------------------------------------------------------------------------


def test_non_stream_url_and_headers_carry_the_key_only_in_a_header():
    up = adapter().build_request(request("gemini-2.5-flash"))
    assert up.method == "POST"
    assert up.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    assert ("x-goog-api-key", KEY) in up.headers
    assert ("content-type", "application/json") in up.headers
    assert ("x-extra", "1") in up.headers
    assert KEY not in up.url
    assert not any(name == "authorization" for name, _ in up.headers)


def test_stream_url_asks_for_sse():
    up = adapter("http://127.0.0.1:9/").build_request(request("gemini-3-pro-preview", stream=True))
    assert up.url == "http://127.0.0.1:9/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse"
    assert KEY not in up.url


def test_model_given_with_its_resource_prefix_is_not_doubled():
    up = adapter().build_request(request("models/gemini-2.5-pro"))
    assert up.url.endswith("/v1beta/models/gemini-2.5-pro:generateContent")


# -- contents -------------------------------------------------------------------------------


def test_system_and_developer_become_system_instruction_and_roles_map_to_user_model():
    body = built(messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "Ça va ?"},
    ])
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Bonjour"}]},
        {"role": "user", "parts": [{"text": "Ça va ?"}]},
    ]
    assert "generationConfig" not in body and "tools" not in body


def test_consecutive_turns_of_one_role_are_merged_and_empty_text_is_left_out():
    body = built(messages=[
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": ""}]},
        {"role": "assistant", "content": "three"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": "four"},
    ])
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "three"}, {"text": "four"}]},
    ]


def test_images_become_inline_data():
    body = built(messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
         "cache_control": {"type": "ephemeral"}},
    ]}])
    assert body["contents"][0]["parts"] == [
        {"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}]


def test_an_http_image_url_is_refused():
    with pytest.raises(GatewayError) as err:
        built(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}])
    assert err.value.status == 400
    assert err.value.param == "messages[0].content[0].image_url.url"


@pytest.mark.parametrize("turn", [[], [{"role": "user", "content": [{"type": "text", "text": ""}]}]])
def test_only_system_messages_is_a_400(turn):
    with pytest.raises(GatewayError) as err:
        built(messages=[{"role": "system", "content": "You are terse."}, *turn])
    assert err.value.status == 400 and err.value.param == "messages"


def test_tool_calls_and_results_round_trip_in_call_order():
    body = built(messages=[
        {"role": "user", "content": "Weather in Paris and London?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            call("call_a", "get_weather", '{"city": "Paris"}', signature="c2lnLWE="),
            call("call_b", "get_weather", '{"city":"London"}'),
            call("call_c", "get_time", ""),
        ]},
        # answered out of order: they go back in the order of the calls
        {"role": "tool", "tool_call_id": "call_c", "content": "noon"},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21, "sky": "clear"}'},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "[1, 2]"}]},
        {"role": "user", "content": "And tomorrow?"},
    ])
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and London?"}]},
        {"role": "model", "parts": [
            {"text": "Checking."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
             "thoughtSignature": "c2lnLWE="},
            {"functionCall": {"name": "get_weather", "args": {"city": "London"}}},
            {"functionCall": {"name": "get_time", "args": {}}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"result": {"temp": 21, "sky": "clear"}}}},
            {"functionResponse": {"name": "get_weather", "response": {"result": "[1, 2]"}}},
            {"functionResponse": {"name": "get_time", "response": {"result": "noon"}}},
            {"text": "And tomorrow?"},
        ]},
    ]


def test_tool_call_arguments_that_are_not_json_are_a_400_naming_the_call():
    with pytest.raises(GatewayError) as err:
        built(messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": None, "tool_calls": [call("c1", "f", "{oops")]},
            {"role": "tool", "tool_call_id": "c1", "content": "r"},
        ])
    assert err.value.status == 400
    assert err.value.param == "messages[1].tool_calls[0].function.arguments"


def test_text_signature_from_reasoning_details_goes_back_on_the_text_part():
    details = [{"type": "reasoning.encrypted", "data": "dGV4dC1zaWc=", "format": "google-gemini-v1",
                "index": 0},
               {"type": "reasoning.text", "text": "x", "signature": "s", "format": "anthropic-claude-v1",
                "index": 1}]
    body = built(messages=[
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "greeting",
         "reasoning_details": details},
        {"role": "user", "content": "Bye"},
    ])
    assert body["contents"][1] == {"role": "model",
                                   "parts": [{"text": "Hello!", "thoughtSignature": "dGV4dC1zaWc="}]}


GEMINI3_LOOP = [
    {"role": "user", "content": "Old question"},
    {"role": "assistant", "content": None, "tool_calls": [call("h1", "get_weather", '{"city":"Rome"}')]},
    {"role": "tool", "tool_call_id": "h1", "content": "sunny"},
    {"role": "assistant", "content": "Sunny in Rome."},
    {"role": "user", "content": "Paris and London?"},
    {"role": "assistant", "content": None, "tool_calls": [
        call("p1", "get_weather", '{"city":"Paris"}'), call("p2", "get_weather", '{"city":"London"}')]},
    {"role": "tool", "tool_call_id": "p1", "content": "rain"},
    {"role": "tool", "tool_call_id": "p2", "content": "fog"},
    {"role": "assistant", "content": None, "tool_calls": [
        call("p3", "get_time", '{}', signature="cmVhbA==")]},
    {"role": "tool", "tool_call_id": "p3", "content": "noon"},
]


def test_gemini3_current_turn_calls_without_signature_get_the_documented_placeholder():
    body = built("gemini-3-pro-preview", messages=GEMINI3_LOOP)
    contents = body["contents"]
    # history before the current user turn is left as sent
    assert "thoughtSignature" not in contents[1]["parts"][0]
    # current turn: the first call of each step needs one; a real one is kept
    assert contents[5]["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in contents[5]["parts"][1]
    assert contents[7]["parts"][0]["thoughtSignature"] == "cmVhbA=="


def test_gemini25_gets_no_placeholder_signatures():
    body = built("gemini-2.5-flash", messages=GEMINI3_LOOP)
    signatures = [p["thoughtSignature"] for c in body["contents"] for p in c["parts"]
                  if "thoughtSignature" in p]
    assert signatures == ["cmVhbA=="]


# -- tools ----------------------------------------------------------------------------------


def test_tools_become_one_function_declarations_entry_with_json_schema():
    no_args = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
    body = built(tools=[WEATHER, no_args])
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather of a city",
         "parametersJsonSchema": WEATHER["function"]["parameters"]},
        {"name": "now"},
    ]}]
    assert "toolConfig" not in body


@pytest.mark.parametrize(("choice", "config"), [
    ("auto", {"mode": "AUTO"}),
    ("none", {"mode": "NONE"}),
    ("required", {"mode": "ANY"}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
])
def test_tool_choice_maps_to_function_calling_config(choice, config):
    body = built(tools=[WEATHER], tool_choice=choice)
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_ref_siblings_are_dropped_and_other_keywords_kept():
    schema = {"type": "object", "$defs": {"Unit": {"enum": ["c", "f"], "description": "unit"}},
              "properties": {"unit": {"$ref": "#/$defs/Unit", "description": "which", "default": "c"},
                             "n": {"const": 3}, "tags": {"type": ["array", "null"], "items": {"type": "string"}}},
              "additionalProperties": False}
    out = json_schema(schema)
    assert out["properties"]["unit"] == {"$ref": "#/$defs/Unit"}
    assert out["$defs"] == schema["$defs"]
    assert out["properties"]["n"] == {"const": 3}
    assert out["properties"]["tags"] == schema["properties"]["tags"]
    assert out["additionalProperties"] is False
    assert schema["properties"]["unit"]["description"] == "which"  # input untouched


@pytest.mark.parametrize(("schema", "expected"), [
    (None, None),
    ({}, None),
    ({"type": "object"}, None),
    ({"type": "object", "properties": {}, "required": []}, None),
    ({"properties": {"a": {"type": "string"}}}, {"type": "object", "properties": {"a": {"type": "string"}}}),
    ({"type": "object", "additionalProperties": {"type": "number"}},
     {"type": "object", "additionalProperties": {"type": "number"}}),
])
def test_function_parameters(schema, expected):
    assert function_parameters(schema) == expected


# -- generation config ----------------------------------------------------------------------


def test_every_sampling_parameter_lands_in_generation_config():
    body = built(temperature=0.3, top_p=0.9, max_tokens=99, stop="END", presence_penalty=0.5,
                 frequency_penalty=-0.25, seed=7, n=3)
    assert body["generationConfig"] == {
        "temperature": 0.3, "topP": 0.9, "seed": 7, "maxOutputTokens": 99, "stopSequences": ["END"],
        "presencePenalty": 0.5, "frequencyPenalty": -0.25, "candidateCount": 3}


def test_max_completion_tokens_wins_and_defaults_are_left_out():
    body = built(max_tokens=10, max_completion_tokens=20, stop=["a", "b"], n=1, presence_penalty=0,
                 frequency_penalty=0, parallel_tool_calls=True, stream_options={"include_usage": True})
    assert body["generationConfig"] == {"maxOutputTokens": 20, "stopSequences": ["a", "b"]}


def test_temperature_zero_is_sent():
    assert built(temperature=0)["generationConfig"] == {"temperature": 0}


def test_response_format_json_object_and_json_schema():
    assert built(response_format={"type": "json_object"})["generationConfig"] == {
        "responseMimeType": "application/json"}
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/X", "title": "X"}},
              "$defs": {"X": {"type": "integer"}}}
    config = built(response_format={"type": "json_schema", "json_schema": {
        "name": "out", "strict": True, "schema": schema}})["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": {
        "type": "object", "properties": {"x": {"$ref": "#/$defs/X"}}, "$defs": {"X": {"type": "integer"}}}}
    assert "generationConfig" not in built(response_format={"type": "text"})


@pytest.mark.parametrize(("model", "effort", "thinking"), [
    ("gemini-3-pro-preview", "low", {"thinkingLevel": "LOW"}),
    ("gemini-3-pro-preview", "high", {"thinkingLevel": "HIGH"}),
    ("gemini-3-pro-preview", "minimal", {"thinkingLevel": "LOW"}),
    ("gemini-3-pro-preview", "medium", {"thinkingLevel": "HIGH"}),
    ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "MINIMAL"}),
    ("gemini-3-flash-preview", "medium", {"thinkingLevel": "MEDIUM"}),
    ("gemini-2.5-flash", "minimal", {"thinkingBudget": 0}),
    ("gemini-2.5-flash", "low", {"thinkingBudget": 1024}),
    ("gemini-2.5-flash", "medium", {"thinkingBudget": 8192}),
    ("gemini-2.5-pro", "high", {"thinkingBudget": 24576}),
    ("gemini-2.5-pro", "minimal", {"thinkingBudget": 128}),
    ("gemini-3-pro-preview", "xhigh", {"thinkingLevel": "HIGH"}),
    ("gemini-3-flash-preview", "xhigh", {"thinkingLevel": "HIGH"}),
    ("gemini-3-flash-preview", "none", {"thinkingLevel": "MINIMAL"}),
    ("gemini-2.5-flash", "xhigh", {"thinkingBudget": 24576}),
    ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
    ("gemini-2.5-pro", "xhigh", {"thinkingBudget": 32768}),
])
def test_reasoning_effort_becomes_thinking_config(model, effort, thinking):
    assert built(model, reasoning_effort=effort)["generationConfig"] == {"thinkingConfig": thinking}


def test_catalog_features_override_the_thinking_rules():
    info = ModelInfo(id="google/gemini-3.1-pro", provider="google",
                     features={"thinking_levels": ["low", "medium", "high"]})
    body = orjson.loads(adapter().build_request(
        request("gemini-3.1-pro", info=info, reasoning_effort="medium")).body)
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "MEDIUM"}
    info = ModelInfo(id="google/my-tuned", provider="google", features={"thinking": "budget"})
    body = orjson.loads(adapter().build_request(request("my-tuned", info=info, reasoning_effort="low")).body)
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024}


# -- check ----------------------------------------------------------------------------------


def test_check_refuses_what_gemini_cannot_do_and_accepts_the_rest():
    a = adapter()
    ok = request(temperature=1, top_p=0.5, max_tokens=5, max_completion_tokens=5, stop="x",
                 frequency_penalty=1, presence_penalty=1, seed=1, n=2, tools=[WEATHER],
                 tool_choice="auto", parallel_tool_calls=True, response_format={"type": "json_object"},
                 stream_options={"include_usage": True}, reasoning_effort="low")
    assert a.check(ok) == []
    found = {u.param: u.message for u in a.check(request(
        user="alice", parallel_tool_calls=False, logprobs=True, top_logprobs=2, logit_bias={"1": 2}))}
    assert set(found) == {"user", "logprobs", "top_logprobs", "logit_bias"}
    assert "user" in found["user"]


def test_check_refuses_reasoning_effort_on_a_model_without_thinking():
    found = adapter().check(request("gemini-2.0-flash", reasoning_effort="high"))
    assert [u.param for u in found] == ["reasoning_effort"]
    assert adapter().check(request("gemini-3-flash-preview", reasoning_effort="high")) == []


def test_check_narrows_by_the_catalog_entry():
    info = ModelInfo(id="google/gemini-x", provider="google",
                     supported_parameters=frozenset({"temperature", "tools"}))
    found = adapter().check(request("gemini-x", info=info, temperature=1, seed=3))
    assert [u.param for u in found] == ["seed"]


def test_xhigh_is_the_xhigh_level_where_the_model_lists_it():
    info = ModelInfo(id="google/gemini-4-neon", provider="google", features={
        "thinking": "level", "thinking_levels": ["low", "medium", "high", "xhigh"]})
    body = orjson.loads(adapter().build_request(
        request("gemini-4-neon", info=info, reasoning_effort="xhigh")).body)
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "XHIGH"}


@pytest.mark.parametrize("model", ["gemini-2.5-pro", "gemini-3-pro-preview"])
def test_effort_none_is_refused_on_models_that_always_think(model):
    found = adapter().check(request(model, reasoning_effort="none"))
    assert [u.param for u in found] == ["reasoning_effort"]
    assert "always thinks" in found[0].message
    assert adapter().check(request("gemini-2.5-flash", reasoning_effort="none")) == []

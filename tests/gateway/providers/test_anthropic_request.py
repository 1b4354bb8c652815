"""OpenAI chat body -> Anthropic Messages request: every translation rule."""

from __future__ import annotations

import json

import pytest

from lunos.gateway.catalog import ModelInfo
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.anthropic import AnthropicAdapter
from lunos.gateway.providers.base import ChatRequest, ProviderConfig

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFQ5AAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
SONNET = ModelInfo("anthropic/claude-sonnet-4-5", "anthropic", max_output=64000)
ADAPTIVE = ModelInfo("anthropic/claude-opus-4-7", "anthropic", max_output=128000,
                     features={"thinking": "adaptive"})
# Everything the Messages API (2023-06-01) knows at the top level.
MESSAGES_API_FIELDS = {"model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
                       "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "output_config",
                       "service_tier", "container", "inference_geo", "cache_control"}


def adapter(**options) -> AnthropicAdapter:
    return AnthropicAdapter(ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com/",
                                           api_key="sk-ant-k", headers=(("x-team", "lunos"),), options=options))


def request(body: dict | None = None, *, info: ModelInfo | None = None, stream: bool = False,
            **fields) -> ChatRequest:
    body = {"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}],
            **(body or {}), **fields}
    return ChatRequest(body, body["model"], "anthropic", body["model"].split("/", 1)[1], info, stream=stream)


def build(body: dict | None = None, *, info: ModelInfo | None = None, stream: bool = False,
          options: dict | None = None, **fields) -> dict:
    up = adapter(**(options or {})).build_request(request(body, info=info, stream=stream, **fields))
    return json.loads(up.body)


def msgs(*messages: dict) -> dict:
    return {"messages": list(messages)}


# ---------------------------------------------------------------- endpoint and headers


def test_url_headers_and_version_default():
    up = adapter().build_request(request())
    assert (up.method, up.url) == ("POST", "https://api.anthropic.com/v1/messages")
    assert up.headers == [("content-type", "application/json"), ("anthropic-version", "2023-06-01"),
                          ("x-api-key", "sk-ant-k"), ("x-team", "lunos")]


def test_version_comes_from_provider_options():
    up = adapter(anthropic_version="2026-10-21").build_request(request())
    assert ("anthropic-version", "2026-10-21") in up.headers


def test_no_key_no_key_header():
    a = AnthropicAdapter(ProviderConfig("anthropic", "anthropic", "http://proxy", api_key=None))
    assert [h for h, _ in a.build_request(request()).headers] == ["content-type", "anthropic-version"]


def test_minimal_body():
    assert build() == {"model": "claude-sonnet-4-5", "max_tokens": 8192,
                       "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}


def test_stream_flag_only_when_streaming():
    assert build(stream=True)["stream"] is True
    assert "stream" not in build({"stream": False})


# ---------------------------------------------------------------- system, roles, merging


def test_system_and_developer_become_top_level_blocks_with_cache_control():
    body = build(msgs(
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Long context",
                                           "cache_control": {"type": "ephemeral"}}]},
        {"role": "system", "content": ""},
        {"role": "user", "content": "Hi"},
    ))
    assert body["system"] == [{"type": "text", "text": "Be brief."},
                              {"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}]
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_consecutive_same_role_turns_are_merged():
    body = build(msgs(
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "three"},
        {"role": "system", "content": "mid-conversation system"},
        {"role": "assistant", "content": "four"},
        {"role": "user", "content": "five"},
    ))
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}]},
        {"role": "user", "content": [{"type": "text", "text": "five"}]},
    ]


def test_empty_messages_are_left_out():
    body = build(msgs({"role": "user", "content": "a"}, {"role": "assistant", "content": ""},
                      {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "b"}]}))
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                             {"type": "text", "text": "b"}]}]


# ---------------------------------------------------------------- content parts


def test_images_data_url_and_https_url_with_cache_control():
    body = build(msgs({"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"},
         "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "image_url", "image_url": {"url": f"data:image/jpg;base64,{PNG}"}},
    ]}))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"},
         "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
    ]


# ---------------------------------------------------------------- tools


TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                      "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                                                     "required": ["location"]}, "strict": True}},
    {"type": "function", "function": {"name": "ping"}},
]


def test_tools_translate_and_missing_parameters_get_an_empty_object_schema():
    assert build(tools=TOOLS)["tools"] == [
        {"name": "get_weather", "description": "Weather now",
         "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}},
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    ("auto", None, {"type": "auto"}),
    ("none", None, {"type": "none"}),
    ("required", None, {"type": "any"}),
    ({"type": "function", "function": {"name": "ping"}}, None, {"type": "tool", "name": "ping"}),
    (None, None, None),
    (None, True, None),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ({"type": "function", "function": {"name": "ping"}}, False,
     {"type": "tool", "name": "ping", "disable_parallel_tool_use": True}),
    ("none", False, {"type": "none"}),
])
def test_tool_choice_and_parallel_tool_calls(choice, parallel, expected):
    fields = {"tools": TOOLS}
    if choice is not None:
        fields["tool_choice"] = choice
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    assert build(**fields).get("tool_choice") == expected


def test_no_tools_no_tool_choice():
    assert "tool_choice" not in build(tool_choice="none", parallel_tool_calls=False)


def test_tool_calls_and_results_round_trip_shape():
    body = build(msgs(
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}},
            {"id": "toolu_01B", "type": "function", "function": {"name": "ping", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "toolu_01B", "content": [{"type": "text", "text": "pong",
                                                                  "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Thanks, and?"},
    ), tools=TOOLS)
    assert body["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "ping", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "Sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_01B",
             "content": [{"type": "text", "text": "pong", "cache_control": {"type": "ephemeral"}}]},
            {"type": "text", "text": "Thanks, and?"},
        ]},
    ]


def test_tool_results_come_first_in_their_user_turn_and_empty_results_have_no_content():
    body = build(msgs(
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "ping", "arguments": "{}"}}]},
        {"role": "user", "content": "by the way"},
        {"role": "tool", "tool_call_id": "call_1", "content": ""},
    ), tools=TOOLS)
    assert body["messages"][1]["content"] == [{"type": "tool_result", "tool_use_id": "call_1"},
                                              {"type": "text", "text": "by the way"}]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_bad_tool_call_arguments_are_a_400_naming_the_message(arguments):
    with pytest.raises(GatewayError) as info:
        build(msgs({"role": "user", "content": "x"}, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t", "type": "function", "function": {"name": "ping", "arguments": arguments}}]}))
    assert info.value.status == 400
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


# ---------------------------------------------------------------- reasoning state


def test_reasoning_details_become_thinking_blocks_before_text_and_tools():
    body = build(msgs(
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "Let me check.", "reasoning_content": "Thinking...",
         "reasoning_details": [
             {"type": "reasoning.text", "text": "Thinking...", "signature": "sig1", "format": "anthropic-claude-v1",
              "index": 0},
             {"type": "reasoning.encrypted", "data": "ENC", "format": "anthropic-claude-v1", "index": 1},
             {"type": "reasoning.text", "text": "unsigned", "format": "anthropic-claude-v1", "index": 2},
             {"type": "reasoning.encrypted", "data": "gsig", "format": "google-gemini-v1", "index": 3},
             {"type": "reasoning.summary", "summary": "s", "format": "anthropic-claude-v1", "index": 4},
         ],
         "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "ping", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "pong"},
    ))
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Thinking...", "signature": "sig1"},
        {"type": "redacted_thinking", "data": "ENC"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "ping", "input": {}},
    ]


def test_reasoning_content_alone_is_not_sent():
    body = build(msgs({"role": "user", "content": "x"},
                      {"role": "assistant", "content": "ok", "reasoning_content": "private"},
                      {"role": "user", "content": "y"}))
    assert body["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}


# ---------------------------------------------------------------- parameters


def test_sampling_stop_user_pass_through():
    body = build(temperature=0.2, top_p=0.9, stop="END", user="user-42")
    assert (body["temperature"], body["top_p"], body["stop_sequences"]) == (0.2, 0.9, ["END"])
    assert body["metadata"] == {"user_id": "user-42"}
    assert build(stop=["a", "", "b"])["stop_sequences"] == ["a", "b"]


def test_openai_metadata_is_not_sent():
    body = build(metadata={"app": "x"})
    assert "metadata" not in body
    assert build(metadata={"app": "x"}, user="u")["metadata"] == {"user_id": "u"}


def test_sampling_is_not_sent_to_version_2026_10_21():
    body = build(temperature=0.2, top_p=0.9, options={"anthropic_version": "2026-10-21"})
    assert "temperature" not in body and "top_p" not in body


@pytest.mark.parametrize(("fields", "info", "options", "expected"), [
    ({}, None, {}, 8192),
    ({}, SONNET, {}, 8192),
    ({}, ModelInfo("anthropic/claude-3-haiku", "anthropic", max_output=4096), {}, 4096),
    ({}, None, {"default_max_tokens": 1000}, 1000),
    ({"max_tokens": 300}, SONNET, {}, 300),
    ({"max_completion_tokens": 500, "max_tokens": 300}, SONNET, {}, 500),
    ({"max_tokens": 100000}, SONNET, {}, 64000),
])
def test_max_tokens(fields, info, options, expected):
    assert build(info=info, options=options, **fields)["max_tokens"] == expected


@pytest.mark.parametrize(("effort", "fields", "max_tokens", "budget"), [
    ("minimal", {}, 1024 + 8192, 1024),
    ("low", {}, 2048 + 8192, 2048),
    ("medium", {}, 8192 + 8192, 8192),
    ("high", {}, 16384 + 8192, 16384),
    ("high", {"max_tokens": 10000}, 10000, 5000),
    ("low", {"max_completion_tokens": 40000}, 40000, 2048),
    ("medium", {"max_tokens": 1500}, 1500, 1024),
])
def test_reasoning_effort_becomes_a_thinking_budget(effort, fields, max_tokens, budget):
    body = build(info=SONNET, reasoning_effort=effort, **fields)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == max_tokens
    assert "output_config" not in body


def test_thinking_budget_respects_a_small_model_cap():
    small = ModelInfo("anthropic/claude-small", "anthropic", max_output=8192)
    body = build(info=small, reasoning_effort="high")
    assert (body["max_tokens"], body["thinking"]) == (8192, {"type": "enabled", "budget_tokens": 4096})


def test_no_room_to_think_under_a_tiny_cap():
    body = build(info=SONNET, reasoning_effort="high", max_tokens=1024)
    assert "thinking" not in body and body["max_tokens"] == 1024


@pytest.mark.parametrize(("effort", "expected"), [("minimal", "low"), ("low", "low"), ("medium", "medium"),
                                                  ("high", "high")])
def test_adaptive_models_get_adaptive_thinking_and_effort(effort, expected):
    body = build(info=ADAPTIVE, reasoning_effort=effort)
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": expected}
    assert body["max_tokens"] == 8192


@pytest.mark.parametrize(("accepted", "effort", "expected"), [
    (["low", "medium", "high", "xhigh", "max"], "minimal", "low"),
    (["medium", "high"], "low", "medium"),
    (["low", "high"], "medium", "low"),
    (["xhigh", "max"], "high", "xhigh"),
])
def test_adaptive_effort_is_the_nearest_the_model_accepts(accepted, effort, expected):
    info = ModelInfo("anthropic/claude-x-5", "anthropic", features={"thinking": "adaptive",
                                                                     "reasoning_efforts": accepted})
    assert build(info=info, reasoning_effort=effort)["output_config"] == {"effort": expected}


def test_effort_none_turns_thinking_off_and_xhigh_thinks_most():
    assert build(reasoning_effort="none")["thinking"] == {"type": "disabled"}
    assert build(info=ADAPTIVE, reasoning_effort="none")["thinking"] == {"type": "disabled"}
    assert build(info=SONNET, reasoning_effort="xhigh", max_tokens=40000)["thinking"] == {
        "type": "enabled", "budget_tokens": 20000}
    assert build(reasoning_effort="xhigh")["thinking"] == {"type": "enabled", "budget_tokens": 32768}
    info = ModelInfo("anthropic/claude-x-5", "anthropic", features={
        "thinking": "adaptive", "reasoning_efforts": ["low", "medium", "high", "max"]})
    assert build(info=info, reasoning_effort="xhigh")["output_config"] == {"effort": "high"}
    assert build(info=ADAPTIVE, reasoning_effort="xhigh")["output_config"] == {"effort": "xhigh"}


def test_only_fields_the_messages_api_knows_are_sent():
    body = build(msgs({"role": "developer", "content": "sys"}, {"role": "user", "content": "hi", "name": "bob"}),
                 info=SONNET, temperature=1, top_p=0.99, max_tokens=4000, max_completion_tokens=4000, stop=["x"],
                 user="u", tools=TOOLS, tool_choice="auto", parallel_tool_calls=False,
                 response_format={"type": "text"}, stream_options={"include_usage": True},
                 reasoning_effort="low", metadata={"k": "v"}, n=1, seed=7, frequency_penalty=0,
                 presence_penalty=0, logprobs=False, store=False, service_tier="auto")
    assert set(body) <= MESSAGES_API_FIELDS
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert "service_tier" not in body  # OpenAI's service tiers are not Anthropic's

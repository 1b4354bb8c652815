"""Anthropic Messages bodies: validation, and translation to the chat body the engine and
its adapters (checked here through their real `build_request`) take."""

from __future__ import annotations

import base64
import copy

import orjson
import pytest

from lunos.gateway.doors.messages_in import (
    ANTHROPIC_ONLY,
    SIGNATURE_PREFIX,
    carry_signature,
    is_gateway_signature,
    read_signature,
    to_chat,
    validate_messages,
)
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from lunos.gateway.providers.google import GoogleAdapter
from lunos.gateway.providers.openai_compat import OpenAIAdapter
from lunos.gateway.validation import validate_chat

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
WEATHER = {"name": "weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def body(**fields) -> dict:
    out = {"model": "openai/gpt-x", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]}
    out.update(fields)
    return out


def refused(b: dict) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        validate_messages(b)
    assert info.value.status == 400
    return info.value


# ---------------------------------------------------------------- validation


def test_a_full_claude_code_style_body_passes():
    validate_messages(body(
        system=[{"type": "text", "text": "You are an agent.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                              {"type": "redacted_thinking", "data": "d"},
                                              {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": False,
                                          "content": [{"type": "text", "text": "sunny"}]}]},
            {"role": "system", "content": "Be brief."},
        ],
        tools=[WEATHER, {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
               {"type": "bash_20250124", "name": "bash"}, {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=2048,
        stop_sequences=["END"], temperature=1, top_p=0.9, top_k=40, metadata={"user_id": "u1"}, stream=True,
        output_config={"effort": "high"}, context_management={"edits": []}, some_new_field={"x": 1}))


@pytest.mark.parametrize(("change", "param", "code"), [
    ({"max_tokens": None}, "max_tokens", "missing_required_parameter"),
    ({"max_tokens": "10"}, "max_tokens", "invalid_type"),
    ({"max_tokens": 0}, "max_tokens", "invalid_value"),
    ({"model": None}, "model", "missing_required_parameter"),
    ({"model": 5}, "model", "invalid_type"),
    ({"messages": None}, "messages", "missing_required_parameter"),
    ({"messages": []}, "messages", "invalid_value"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", "invalid_value"),
    ({"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
    ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content", "invalid_type"),
    ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages[0].content[0].type", "invalid_value"),
    ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text",
     "missing_required_parameter"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "not base64!"}}]}]},
     "messages[0].content[0].source.data", "invalid_value"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/tiff", "data": PNG}}]}]},
     "messages[0].content[0].source.media_type", "invalid_value"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "ftp://x"}}]}]},
     "messages[0].content[0].source.url", "invalid_value"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]}]},
     "messages[0].content[0].type", "invalid_value"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": 5}]}]},
     "messages[0].content[0].content", "invalid_type"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a",
                                                 "content": [{"type": "tool_use"}]}]}]},
     "messages[0].content[0].content[0].type", "invalid_value"),
    ({"messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}]},
     "messages[0].content[0].signature", "missing_required_parameter"),
    ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": []}]}]},
     "messages[0].content[0].input", "invalid_type"),
    ({"system": 5}, "system", "invalid_type"),
    ({"system": [{"type": "image"}]}, "system[0].type", "invalid_value"),
    ({"tools": [{"name": "f"}]}, "tools[0].input_schema", "missing_required_parameter"),
    ({"tools": [{"name": "f", "input_schema": {"type": "array"}}]}, "tools[0].input_schema", "invalid_value"),
    ({"tools": [{"name": "f", "input_schema": {"type": "object", "properties": 3}}]}, "tools[0].input_schema",
     "invalid_schema"),
    ({"tools": [{"type": "teleport_20990101", "name": "t"}]}, "tools[0].type", "invalid_value"),
    ({"tools": [WEATHER, WEATHER]}, "tools[1].name", "invalid_value"),
    ({"tool_choice": {"type": "tool", "name": "nope"}, "tools": [WEATHER]}, "tool_choice.name", "invalid_value"),
    ({"tool_choice": {"type": "required"}}, "tool_choice.type", "invalid_value"),
    ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "thinking.budget_tokens", "invalid_value"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking.budget_tokens", "invalid_value"),
    ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens", "missing_required_parameter"),
    ({"thinking": {"type": "on"}}, "thinking.type", "invalid_value"),
    ({"temperature": 1.5}, "temperature", "invalid_value"),
    ({"top_k": "5"}, "top_k", "invalid_type"),
    ({"stop_sequences": "END"}, "stop_sequences", "invalid_type"),
    ({"metadata": {"user_id": 5}}, "metadata.user_id", "invalid_type"),
    ({"stream": "yes"}, "stream", "invalid_type"),
    ({"output_config": {"effort": "huge"}}, "output_config.effort", "invalid_value"),
    ({"output_config": {"format": {"type": "json_schema", "schema": {"type": 7}}}}, "output_config.format.schema",
     "invalid_schema"),
])
def test_a_bad_body_is_a_400_naming_the_parameter(change, param, code):
    b = body()
    for key, value in change.items():
        if value is None:
            b.pop(key)
        else:
            b[key] = value
    error = refused(b)
    assert (error.param, error.code) == (param, code), error.message


def test_a_body_that_is_not_an_object():
    assert refused([1]).code == "invalid_json"


# ---------------------------------------------------------------- translation


def chat(b: dict, drop: bool = False) -> tuple[dict, list[str]]:
    validate_messages(b)
    out, dropped = to_chat(copy.deepcopy(b), drop=drop)
    validate_chat(copy.deepcopy(out))  # what the engine gets is a valid chat body
    return out, dropped


def test_system_text_images_and_parameters():
    out, dropped = chat(body(
        system=[{"type": "text", "text": "One.", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "Two."}],
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "see", "cache_control": {"type": "ephemeral"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": "ok"},
            {"role": "system", "content": [{"type": "text", "text": "Now in French."}]},
            {"role": "user", "content": "again"}],
        stop_sequences=["END"], temperature=0.5, top_p=0.9, top_k=20, metadata={"user_id": "u-1"}, stream=True,
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
        **{name: {} for name in ANTHROPIC_ONLY}))
    assert dropped == []
    assert out == {
        "model": "openai/gpt-x", "max_tokens": 1024,
        "messages": [
            {"role": "system", "content": "One.\n\nTwo."},
            {"role": "user", "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": "ok"},
            {"role": "system", "content": "Now in French."},
            {"role": "user", "content": "again"}],
        "stop": ["END"], "temperature": 0.5, "top_p": 0.9, "top_k": 20, "user": "u-1", "stream": True,
        "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}},
    }


def tool_turns(results: list[dict], *extra: dict) -> list[dict]:
    return [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_b", "name": "weather", "input": {"city": "Rome"}}]},
        {"role": "user", "content": [*results, *extra]},
    ]


def test_tool_results_follow_their_calls_in_call_order_with_the_users_text_after():
    out, _ = chat(body(tools=[WEATHER], tool_choice={"type": "any", "disable_parallel_tool_use": True},
                       messages=tool_turns([
                           {"type": "text", "text": "here you go"},
                           {"type": "tool_result", "tool_use_id": "toolu_b", "content": [
                               {"type": "text", "text": "rain"}, {"type": "text", "text": "12C"}]},
                           {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sun", "is_error": True}])))
    assert out["messages"][1:] == [
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_a", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
            {"id": "toolu_b", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_a", "content": "Error: sun"},
        {"role": "tool", "tool_call_id": "toolu_b", "content": "rain\n12C"},
        {"role": "user", "content": [{"type": "text", "text": "here you go"}]},
    ]
    assert out["tools"] == [{"type": "function", "function": {
        "name": "weather", "description": "Weather for a city", "parameters": WEATHER["input_schema"]}}]
    assert out["tool_choice"] == "required" and out["parallel_tool_calls"] is False


def test_images_a_tool_returned_follow_the_tool_messages_under_a_label():
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    out, _ = chat(body(messages=tool_turns([
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": [{"type": "text", "text": "screenshot:"}, image]},
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "ok"}])))
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "tool", "tool", "user"]
    assert out["messages"][2]["content"] == "screenshot:"
    assert out["messages"][4]["content"] == [
        {"type": "text", "text": "The images returned by tool call toolu_a:"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]


@pytest.mark.parametrize(("results", "param"), [
    ([{"type": "tool_result", "tool_use_id": "toolu_a", "content": "x"}], "messages[2]"),
    ([{"type": "tool_result", "tool_use_id": "toolu_a", "content": "x"},
      {"type": "tool_result", "tool_use_id": "toolu_b", "content": "x"},
      {"type": "tool_result", "tool_use_id": "toolu_z", "content": "x"}], "messages[2].content[2].tool_use_id"),
])
def test_tool_results_that_do_not_pair_with_the_calls_are_refused(results, param):
    b = body(messages=tool_turns(results))
    validate_messages(b)
    with pytest.raises(GatewayError) as info:
        to_chat(b, drop=True)
    assert info.value.param == param


def test_a_tool_call_left_unanswered_is_refused():
    b = body(messages=[*tool_turns([])[:2], {"role": "user", "content": "never mind"}])
    with pytest.raises(GatewayError) as info:
        to_chat(b, drop=True)
    assert info.value.param == "messages[2]" and "toolu_a" in info.value.message


UNSUPPORTED = [
    ("tools[1]", {"tools": [WEATHER, {"type": "web_search_20250305", "name": "web_search"}]}),
    ("tools[1]", {"tools": [WEATHER, {"type": "bash_20250124", "name": "bash"}]}),
    ("tools[1]", {"tools": [WEATHER, {"type": "code_execution_20250825", "name": "code_execution"}]}),
    ("messages[0].content[1]", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "read"},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
         "citations": {"enabled": True}}]}]}),
    ("messages[0].content[1]", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "read"},
        {"type": "search_result", "source": "s", "title": "t", "content": [{"type": "text", "text": "x"}]}]}]}),
    ("messages[0].content[1]", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "read"}, {"type": "container_upload", "file_id": "f1"}]}]}),
    ("messages[0].content[1].source", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "read"}, {"type": "image", "source": {"type": "file", "file_id": "f1"}}]}]}),
]


@pytest.mark.parametrize(("path", "change"), UNSUPPORTED, ids=[p for p, _ in UNSUPPORTED])
def test_what_only_anthropic_honours_is_a_400_or_dropped_with_drop_params(path, change):
    b = body(**change)
    validate_messages(b)
    with pytest.raises(GatewayError) as info:
        to_chat(copy.deepcopy(b), drop=False)
    assert (info.value.status, info.value.param, info.value.code) == (400, path, "unsupported_parameter")
    out, dropped = chat(b, drop=True)
    assert dropped == [path]
    assert "document" not in orjson.dumps(out).decode() and "web_search" not in orjson.dumps(out).decode()


def test_a_tool_choice_naming_a_dropped_tool_is_dropped_too():
    out, dropped = chat(body(tools=[WEATHER, {"type": "bash_20250124", "name": "bash"}],
                             tool_choice={"type": "tool", "name": "bash"}), drop=True)
    assert dropped == ["tools[1]", "tool_choice"] and "tool_choice" not in out
    out, dropped = chat(body(tools=[{"type": "bash_20250124", "name": "bash"}], tool_choice={"type": "any"}), drop=True)
    assert dropped == ["tools[0]"] and "tools" not in out and "tool_choice" not in out


def test_server_tool_blocks_in_history_become_text():
    out, _ = chat(body(messages=[
        {"role": "user", "content": "news?"},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "news"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
                {"type": "web_search_result", "title": "Daily", "url": "https://news.example", "encrypted_content": "zz"}]},
            {"type": "text", "text": "Here is the news."}]},
        {"role": "user", "content": "thanks"}]))
    assert out["messages"][1] == {"role": "assistant", "content":
                                  '[web_search ran on the server with input {"query":"news"}]'
                                  "[web search results: Daily <https://news.example>]Here is the news."}


@pytest.mark.parametrize(("thinking", "effort", "expected"), [
    ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
    ({"type": "enabled", "budget_tokens": 4095}, None, "low"),
    ({"type": "enabled", "budget_tokens": 4096}, None, "medium"),
    ({"type": "enabled", "budget_tokens": 16383}, None, "medium"),
    ({"type": "enabled", "budget_tokens": 16384}, None, "high"),
    ({"type": "adaptive"}, None, "medium"),
    ({"type": "adaptive"}, "low", "low"),
    ({"type": "adaptive"}, "max", "xhigh"),
    ({"type": "disabled"}, "high", None),
    (None, "high", "high"),
    (None, None, None),
])
def test_thinking_and_effort_become_reasoning_effort(thinking, effort, expected):
    b = body(max_tokens=64000)
    if thinking:
        b["thinking"] = thinking
    if effort:
        b["output_config"] = {"effort": effort}
    out, _ = chat(b)
    assert out.get("reasoning_effort") == expected


def test_thinking_blocks_become_reasoning_with_their_signatures():
    gemini = [{"type": "reasoning.encrypted", "data": "CiQB", "format": "google-gemini-v1", "index": 0}]
    carrier = carry_signature(gemini, {"toolu_a": "Eq0D"})
    out, _ = chat(body(messages=[
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "first", "signature": "EqQBsig"},
            {"type": "redacted_thinking", "data": "ENCRYPTED"},
            {"type": "text", "text": "a"}]},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "summary", "signature": carrier},
            {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_a", "content": "x"}]}]))
    first, second = out["messages"][1], out["messages"][3]
    assert first == {"role": "assistant", "content": "a", "reasoning_content": "first", "reasoning_details": [
        {"type": "reasoning.text", "text": "first", "signature": "EqQBsig", "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "ENCRYPTED", "format": "anthropic-claude-v1", "index": 1}]}
    assert second["reasoning_content"] == "summary" and second["reasoning_details"] == gemini
    assert second["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "Eq0D"}}


def test_gateway_signatures():
    signature = carry_signature([{"type": "reasoning.encrypted", "data": "x", "format": "f"}], {"c": "s"})
    assert signature.startswith(SIGNATURE_PREFIX) and is_gateway_signature(signature)
    assert read_signature(signature) == ([{"type": "reasoning.encrypted", "data": "x", "format": "f"}], {"c": "s"})
    assert read_signature("EqQBanthropic") is None and not is_gateway_signature("EqQBanthropic")
    assert read_signature(SIGNATURE_PREFIX + "%%%") == ([], {})  # damaged: carries nothing, no crash
    assert read_signature(SIGNATURE_PREFIX + base64.urlsafe_b64encode(b"[1]").decode()) == ([], {})


# ---------------------------------------------------------------- through the chat adapters


CONVERSATION = body(
    model="google/gemini-3-pro-preview", max_tokens=8000,
    system="Be terse.", tools=[WEATHER], tool_choice={"type": "auto"},
    thinking={"type": "enabled", "budget_tokens": 2048}, stop_sequences=["STOP"], cache_control={"type": "ephemeral"},
    messages=[
        {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": carry_signature(
                [{"type": "reasoning.encrypted", "data": "TEXTSIG", "format": "google-gemini-v1", "index": 0}],
                {"toolu_a": "CALLSIG"})},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_b", "name": "weather", "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": '{"temp": 20}'},
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
            {"type": "text", "text": "Compare them."}]},
    ])


def request_for(adapter, out: dict, model: str) -> dict:
    provider, upstream = model.split("/", 1)
    req = ChatRequest(out, model, provider, upstream, stream=bool(out.get("stream")))
    assert adapter.check(req) == []
    return orjson.loads(adapter.build_request(req).body)


def test_a_tool_round_trip_with_signatures_reaches_gemini_as_gemini_expects():
    out, _ = chat(CONVERSATION)
    sent = request_for(GoogleAdapter(ProviderConfig("google", "google", "https://g.example", "k")), out,
                       "google/gemini-3-pro-preview")
    assert sent["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert sent["contents"] == [
        {"role": "user", "parts": [{"text": "Weather?"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}]},
        {"role": "model", "parts": [
            {"text": "Let me look.", "thoughtSignature": "TEXTSIG"},
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "CALLSIG"},
            {"functionCall": {"name": "weather", "args": {"city": "Rome"}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "weather", "response": {"result": "sunny"}}},
            {"functionResponse": {"name": "weather", "response": {"result": {"temp": 20}}}},
            {"text": "Compare them."}]},
    ]
    assert sent["generationConfig"]["stopSequences"] == ["STOP"]
    assert sent["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "LOW"}
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


def test_the_same_conversation_reaches_an_openai_compatible_api_as_chat():
    out, _ = chat({**CONVERSATION, "model": "openai/gpt-x"})
    sent = request_for(OpenAIAdapter(ProviderConfig("openai", "openai", "https://o.example/v1", "k")), out,
                       "openai/gpt-x")
    assert sent["model"] == "gpt-x" and sent["stop"] == ["STOP"] and sent["reasoning_effort"] == "low"
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool", "tool", "user"]
    assert [m.get("tool_call_id") for m in sent["messages"][3:5]] == ["toolu_a", "toolu_b"]
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert "cache_control" not in orjson.dumps(sent).decode()

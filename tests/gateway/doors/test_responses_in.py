"""OpenAI Responses bodies: validation, input items, and translation to the chat body the
engine and its adapters (checked here through their real `build_request`) take."""

from __future__ import annotations

import base64
import copy

import orjson
import pytest

from lunos.gateway.doors.messages_in import carry_signature
from lunos.gateway.doors.responses_in import (
    RESPONSES_ONLY,
    input_items,
    is_gateway_reasoning,
    to_chat,
    tool_names,
    validate_responses,
)
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.anthropic import AnthropicAdapter
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from lunos.gateway.providers.google import GoogleAdapter
from lunos.gateway.validation import validate_chat

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
WEATHER = {"type": "function", "name": "weather", "description": "Weather for a city", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def body(**fields) -> dict:
    out = {"model": "anthropic/claude-x", "input": "hi"}
    out.update(fields)
    return out


def refused(b: dict) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        validate_responses(b)
    assert info.value.status == 400
    return info.value


# ---------------------------------------------------------------- validation


def test_a_full_codex_style_body_passes():
    validate_responses(body(
        instructions="You are a coding agent.",
        input=[
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
            {"role": "user", "content": [{"type": "input_text", "text": "look"},
                                         {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
                                         {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AA=="}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "x"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
            {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{}", "namespace": "tools"},
            {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_text", "text": "done"}]},
            {"type": "item_reference", "id": "msg_1"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        ],
        tools=[WEATHER, {"type": "web_search", "search_context_size": "low", "filters": {"allowed_domains": ["a.com"]},
                         "user_location": {"type": "approximate", "country": "FR"}},
               {"type": "namespace", "name": "crm", "description": "CRM", "tools": [{**WEATHER, "name": "lookup"}]},
               {"type": "local_shell"}, {"type": "custom", "name": "apply_patch"}],
        tool_choice={"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "weather"}]},
        parallel_tool_calls=False, text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"},
                                                    "strict": True}, "verbosity": "low"},
        reasoning={"effort": "xhigh", "summary": "auto"}, max_output_tokens=16, temperature=2, top_p=0.5,
        metadata={"k": "v"}, store=False, stream=True, include=["reasoning.encrypted_content"],
        truncation="auto", user="u", safety_identifier="s", prompt_cache_key="p", service_tier="auto",
        client_metadata={"x": 1}, background=False, some_new_field={"x": 1}))


@pytest.mark.parametrize(("change", "param", "code"), [
    ({"model": None}, "model", "missing_required_parameter"),
    ({"model": 5}, "model", "invalid_type"),
    ({"input": None}, "input", "missing_required_parameter"),
    ({"input": 5}, "input", "invalid_type"),
    ({"input": [{"type": "teleport"}]}, "input[0].type", "invalid_value"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "invalid_value"),
    ({"input": [{"role": "user"}]}, "input[0].content", "missing_required_parameter"),
    ({"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]}, "input[0].content[0].type",
     "invalid_value"),
    ({"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://e.com/a.png"}]}]},
     "input[0].content[0].type", "invalid_value"),
    ({"input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "input[0].content[0].text",
     "missing_required_parameter"),
    ({"input": [{"role": "user", "content": "a"}, {"role": "user", "content": [
        {"type": "input_image", "image_url": "ftp://x"}]}]}, "input[1].content[0].image_url", "invalid_value"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,!!"}]}]},
     "input[0].content[0].image_url", "invalid_value"),
    ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input[0].content[0].image_url",
     "missing_required_parameter"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://e.com/a", "detail": "max"}]}]},
     "input[0].content[0].detail", "invalid_value"),
    ({"input": [{"role": "user", "content": [{"type": "input_file"}]}]}, "input[0].content[0].file_data",
     "missing_required_parameter"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments",
     "missing_required_parameter"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]}, "input[0].arguments",
     "invalid_type"),
    ({"input": [{"type": "function_call_output", "call_id": "c"}]}, "input[0].output", "missing_required_parameter"),
    ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "input[0].output", "invalid_type"),
    ({"input": [{"type": "reasoning", "id": "rs"}]}, "input[0].summary", "invalid_type"),
    ({"input": [{"type": "item_reference"}]}, "input[0].id", "missing_required_parameter"),
    ({"instructions": 5}, "instructions", "invalid_type"),
    ({"tools": {}}, "tools", "invalid_type"),
    ({"tools": [{"type": "function", "name": "bad name"}]}, "tools[0].name", "invalid_value"),
    ({"tools": [{**WEATHER, "parameters": {"type": "array"}}]}, "tools[0].parameters", "invalid_value"),
    ({"tools": [{**WEATHER, "parameters": {"type": 7}}]}, "tools[0].parameters", "invalid_schema"),
    ({"tools": [WEATHER, WEATHER]}, "tools[1].name", "invalid_value"),
    ({"tools": [{"type": "teleporter"}]}, "tools[0].type", "invalid_value"),
    ({"tools": [{"type": "web_search", "search_context_size": "huge"}]}, "tools[0].search_context_size",
     "invalid_value"),
    ({"tools": [{"type": "web_search", "filters": {"allowed_domains": "a.com"}}]},
     "tools[0].filters.allowed_domains", "invalid_type"),
    ({"tool_choice": "any"}, "tool_choice", "invalid_value"),
    ({"tool_choice": {"type": "function", "name": "nope"}, "tools": [WEATHER]}, "tool_choice.name", "invalid_value"),
    ({"tool_choice": {"type": "allowed_tools", "mode": "all", "tools": []}}, "tool_choice.mode", "invalid_value"),
    ({"text": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}, "text.format.name",
     "missing_required_parameter"),
    ({"text": {"format": {"type": "json_schema", "name": "o"}}}, "text.format.schema", "missing_required_parameter"),
    ({"text": {"format": {"type": "json_schema", "name": "o", "schema": {"type": 7}}}}, "text.format.schema",
     "invalid_schema"),
    ({"text": {"format": {"type": "xml"}}}, "text.format.type", "invalid_value"),
    ({"text": {"verbosity": "loud"}}, "text.verbosity", "invalid_value"),
    ({"reasoning": {"effort": "max"}}, "reasoning.effort", "invalid_value"),
    ({"max_output_tokens": 15}, "max_output_tokens", "invalid_value"),
    ({"max_output_tokens": "100"}, "max_output_tokens", "invalid_type"),
    ({"temperature": 2.5}, "temperature", "invalid_value"),
    ({"top_p": 2}, "top_p", "invalid_value"),
    ({"metadata": {"k": 1}}, "metadata.k", "invalid_type"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "invalid_value"),
    ({"store": "yes"}, "store", "invalid_type"),
    ({"previous_response_id": 5}, "previous_response_id", "invalid_type"),
    ({"include": "x"}, "include", "invalid_type"),
    ({"truncation": "middle"}, "truncation", "invalid_value"),
    ({"background": True}, "background", "unsupported_parameter"),
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


def test_input_may_be_left_out_when_continuing_a_stored_response():
    validate_responses({"model": "m", "previous_response_id": "resp_1"})
    assert refused({"model": "m"}).message == "Missing required parameter: 'input'."


def test_a_body_that_is_not_an_object():
    assert refused([1]).code == "invalid_json"


# ---------------------------------------------------------------- input items


def test_input_items_are_normalized_with_ids():
    assert [{k: v for k, v in i.items() if k != "id"} for i in input_items({"input": "hi"})] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    items = input_items({"input": [
        {"role": "assistant", "content": "ok"},
        {"type": "message", "id": "msg_keep", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
        {"type": "function_call_output", "call_id": "c", "output": "r"},
        {"type": "item_reference", "id": "msg_0"}]})
    assert items[0]["content"] == [{"type": "output_text", "text": "ok", "annotations": []}]
    assert items[0]["type"] == "message" and items[0]["id"].startswith("msg_")
    assert items[1]["id"] == "msg_keep" and items[2]["id"].startswith("fco_")
    assert items[3] == {"type": "item_reference", "id": "msg_0"}
    assert len({i["id"] for i in items}) == 4
    assert input_items({"model": "m"}) == []


# ---------------------------------------------------------------- translation


def chat(b: dict, items: list[dict] | None = None, drop: bool = False) -> tuple[dict, list[str]]:
    validate_responses(b)
    out, dropped = to_chat(copy.deepcopy(b), items if items is not None else input_items(b), drop=drop)
    validate_chat(copy.deepcopy(out))  # what the engine gets is a valid chat body
    return out, dropped


def test_instructions_messages_images_and_parameters():
    out, dropped = chat(body(
        instructions="Be brief.",
        input=[{"role": "developer", "content": "Answer in French."},
               {"role": "user", "content": [
                   {"type": "input_text", "text": "see"},
                   {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "high"},
                   {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "original"}]},
               {"role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
               {"role": "user", "content": "again"}],
        max_output_tokens=100, temperature=0.5, top_p=0.9, parallel_tool_calls=False, safety_identifier="u-1",
        reasoning={"effort": "low", "summary": "auto"}, stream=True,
        text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True},
              "verbosity": "low"},
        **{name: {"x": "y"} if name in ("metadata", "client_metadata") else None for name in RESPONSES_ONLY}))
    assert dropped == []
    assert out == {
        "model": "anthropic/claude-x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "again"}],
        "stream": True, "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "parallel_tool_calls": False,
        "user": "u-1", "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"},
                                                                   "strict": True}},
    }


def test_function_tools_web_search_and_tool_choice():
    out, _ = chat(body(tools=[WEATHER, {"type": "web_search_preview", "search_context_size": "high",
                                        "filters": {"allowed_domains": ["a.com"]}, "user_location": {"country": "FR"}}],
                       tool_choice={"type": "function", "name": "weather"}))
    assert out["tools"] == [
        {"type": "function", "function": {"name": "weather", "description": "Weather for a city",
                                          "parameters": WEATHER["parameters"], "strict": True}},
        {"type": "web_search", "parameters": {"search_context_size": "high", "allowed_domains": ["a.com"]}}]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    only_search, _ = chat(body(tools=[{"type": "web_search"}], tool_choice={"type": "web_search"}))
    assert only_search["tools"] == [{"type": "web_search", "parameters": {}}] and "tool_choice" not in only_search


def test_allowed_tools_narrow_the_functions():
    other = {**WEATHER, "name": "time"}
    out, _ = chat(body(tools=[WEATHER, other], tool_choice={
        "type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "time"}]}))
    assert [t["function"]["name"] for t in out["tools"]] == ["time"] and out["tool_choice"] == "required"


def test_namespace_tools_are_flattened_and_their_calls_come_back():
    b = body(tools=[{"type": "namespace", "name": "crm", "description": "CRM", "tools": [WEATHER]}],
             input=[{"role": "user", "content": "go"},
                    {"type": "function_call", "call_id": "c1", "namespace": "crm", "name": "weather", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "sunny"}])
    out, _ = chat(b)
    assert out["tools"][0]["function"]["name"] == "crm__weather"
    assert out["messages"][1]["tool_calls"][0]["function"]["name"] == "crm__weather"
    assert tool_names(b) == {"crm__weather": ("crm", "weather")}


CALLS = [{"role": "user", "content": "weather in Paris and Rome?"},
         {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
         {"type": "function_call", "call_id": "toolu_a", "name": "weather", "arguments": '{"city":"Paris"}'},
         {"type": "function_call", "call_id": "toolu_b", "name": "weather", "arguments": '{"city":"Rome"}'}]


def test_calls_are_one_assistant_turn_and_outputs_tool_messages():
    out, _ = chat(body(tools=[WEATHER], input=[
        *CALLS,
        {"type": "function_call_output", "call_id": "toolu_b", "output": [
            {"type": "input_text", "text": "rain"}, {"type": "input_image", "image_url": "https://e.com/radar.png"}]},
        {"type": "function_call_output", "call_id": "toolu_a", "output": "sun"},
        {"role": "user", "content": "compare"}]))
    assert out["messages"][1:] == [
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_a", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
            {"id": "toolu_b", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_b", "content": "rain"},
        {"role": "tool", "tool_call_id": "toolu_a", "content": "sun"},
        {"role": "user", "content": [{"type": "text", "text": "The images returned by tool call toolu_b:"},
                                     {"type": "image_url", "image_url": {"url": "https://e.com/radar.png"}}]},
        {"role": "user", "content": "compare"}]


@pytest.mark.parametrize("tail", [
    [{"role": "user", "content": "next"}],
    [{"type": "function_call_output", "call_id": "toolu_a", "output": "sun"}],
    [{"type": "function_call_output", "call_id": "nope", "output": "x"}],
])
def test_calls_left_unanswered_or_outputs_of_no_call_are_refused(tail):
    b = body(input=[*CALLS, *tail])
    validate_responses(b)
    with pytest.raises(GatewayError) as info:
        to_chat(b, input_items(b), drop=False)
    assert (info.value.status, info.value.param) == (400, "input")


@pytest.mark.parametrize(("path", "change"), [
    ("input[0].content[1]", {"input": [{"role": "user", "content": [
        {"type": "input_text", "text": "x"}, {"type": "input_file", "file_id": "file_1"}]}]}),
    ("input[0].content[0].file_id", {"input": [{"role": "user", "content": [
        {"type": "input_image", "file_id": "file_1"}]}]}),
    ("tools[1]", {"tools": [WEATHER, {"type": "code_interpreter", "container": {"type": "auto"}}]}),
    ("input[1]", {"input": [{"role": "user", "content": "x"},
                            {"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": None}]}),
    ("prompt", {"prompt": {"id": "pmpt_1"}}),
])
def test_what_only_openai_honours_is_a_400_or_dropped_with_drop_params(path, change):
    b = body(**change)
    validate_responses(b)
    with pytest.raises(GatewayError) as info:
        to_chat(copy.deepcopy(b), input_items(b), drop=False)
    assert (info.value.param, info.value.code) == (path, "unsupported_parameter")
    _, dropped = chat(b, drop=True)
    assert dropped == [path]


def test_openai_reasoning_and_search_records_are_left_out_for_other_providers():
    out, _ = chat(body(input=[
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}],
         "encrypted_content": "gAAAAopaque"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
        {"role": "user", "content": "more"}]))
    assert out["messages"] == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                               {"role": "user", "content": "more"}]


def test_gateway_reasoning_items():
    ours = {"type": "reasoning", "summary": [], "encrypted_content": carry_signature([], {})}
    assert is_gateway_reasoning(ours)
    assert not is_gateway_reasoning({"type": "reasoning", "summary": [], "encrypted_content": "gAAAA"})
    assert not is_gateway_reasoning({"type": "reasoning", "summary": []})


def test_an_unresolved_item_reference_is_refused():
    b = body(input=[{"type": "item_reference", "id": "msg_1"}])
    with pytest.raises(GatewayError) as info:
        to_chat(b, input_items(b), drop=False)
    assert info.value.param == "input"


# ---------------------------------------------------------------- reaching the providers


ANTHROPIC_THINKING = {"type": "reasoning.text", "text": "Paris first.", "signature": "ANTSIG",
                      "format": "anthropic-claude-v1", "index": 0}
GEMINI_TEXT = {"type": "reasoning.encrypted", "data": "TEXTSIG", "format": "google-gemini-v1", "index": 0}


def conversation(details: list[dict], calls: dict[str, str], model: str) -> dict:
    return body(model=model, instructions="Be terse.", tools=[WEATHER], input=[
        {"role": "user", "content": "Weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Paris first."}],
         "encrypted_content": carry_signature(details, calls)},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
        {"type": "function_call", "call_id": "call_a", "name": "weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_a", "output": "sunny"}])


def request_for(adapter, out: dict, model: str) -> dict:
    provider, upstream = model.split("/", 1)
    req = ChatRequest(out, model, provider, upstream, stream=bool(out.get("stream")))
    assert adapter.check(req) == []
    return orjson.loads(adapter.build_request(req).body)


def test_gemini_signatures_reach_gemini_through_the_items():
    model = "google/gemini-3-pro-preview"
    out, _ = chat(conversation([GEMINI_TEXT], {"call_a": "CALLSIG"}, model))
    sent = request_for(GoogleAdapter(ProviderConfig("google", "google", "https://g.example", "k")), out, model)
    assert sent["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    model_turn = sent["contents"][1]
    assert model_turn["role"] == "model"
    assert {"text": "Let me look.", "thoughtSignature": "TEXTSIG"} in model_turn["parts"]
    assert {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "CALLSIG"} in \
        model_turn["parts"]


def test_anthropic_thinking_reaches_anthropic_signed():
    model = "anthropic/claude-sonnet-4-5"
    out, _ = chat(conversation([ANTHROPIC_THINKING], {}, model))
    sent = request_for(AnthropicAdapter(ProviderConfig("anthropic", "anthropic", "https://a.example", "k")), out, model)
    assistant = sent["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {"type": "thinking", "thinking": "Paris first.", "signature": "ANTSIG"}
    assert [b["type"] for b in assistant["content"][1:]] == ["text", "tool_use"]
    assert assistant["content"][2]["id"] == "call_a"
    assert sent["messages"][2]["content"][0]["tool_use_id"] == "call_a"

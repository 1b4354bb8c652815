"""Anthropic Messages response -> OpenAI completion, and error bodies -> GatewayError."""

from __future__ import annotations

import json

import pytest

from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.anthropic import AnthropicAdapter
from lunos.gateway.providers.base import ChatRequest, ProviderConfig

KEY = "sk-ant-api03-secret"
ADAPTER = AnthropicAdapter(ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key=KEY))
REQ = ChatRequest({"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]},
                  "anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5")
USAGE = {"input_tokens": 10, "output_tokens": 5}


def parse(content: list, stop_reason: str | None = "end_turn", usage: dict | None = None) -> dict:
    message = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": content, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage or USAGE}
    return ADAPTER.parse_response(REQ, 200, json.dumps(message).encode())


def test_text_blocks_are_concatenated():
    out = parse([{"type": "text", "text": "Hello"}, {"type": "text", "text": " world", "citations": None}])
    assert out == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"},
                                "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 0}}}


def test_tool_use_becomes_tool_calls_with_ids_unchanged():
    out = parse([{"type": "text", "text": "Let me check."},
                 {"type": "tool_use", "id": "toolu_01NRL", "name": "get_weather",
                  "input": {"location": "Paris", "units": ["c", "f"]}},
                 {"type": "tool_use", "id": "toolu_02XYZ", "name": "ping", "input": {}}], "tool_use")
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "toolu_01NRL", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"location":"Paris","units":["c","f"]}'}},
        {"id": "toolu_02XYZ", "type": "function", "function": {"name": "ping", "arguments": "{}"}},
    ]}


def test_only_tool_calls_means_null_content():
    out = parse([{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}], "tool_use")
    assert out["choices"][0]["message"]["content"] is None


def test_thinking_becomes_reasoning_content_and_details():
    out = parse([{"type": "thinking", "thinking": "First, ", "signature": "sigA"},
                 {"type": "redacted_thinking", "data": "ENCRYPTED"},
                 {"type": "thinking", "thinking": "then.", "signature": "sigB"},
                 {"type": "text", "text": "42"}],
                usage={"input_tokens": 10, "output_tokens": 50, "output_tokens_details": {"thinking_tokens": 40}})
    message = out["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "42", "reasoning_content": "First, then.",
                       "reasoning_details": [
                           {"type": "reasoning.text", "text": "First, ", "signature": "sigA",
                            "format": "anthropic-claude-v1", "index": 0},
                           {"type": "reasoning.encrypted", "data": "ENCRYPTED", "format": "anthropic-claude-v1",
                            "index": 1},
                           {"type": "reasoning.text", "text": "then.", "signature": "sigB",
                            "format": "anthropic-claude-v1", "index": 2}]}
    assert out["usage"]["completion_tokens"] == 50
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 40}


def test_server_tool_blocks_are_not_client_tool_calls():
    out = parse([{"type": "text", "text": "Searching."},
                 {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
                 {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                 {"type": "text", "text": " Found it."}])
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Searching. Found it."}


def test_empty_content_is_an_empty_string():
    out = parse([], "refusal")
    assert out["choices"][0]["message"]["content"] == ""
    assert out["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter"),
    (None, "stop"), ("something_new", "stop"),
])
def test_stop_reasons(stop_reason, finish):
    assert parse([{"type": "text", "text": "x"}], stop_reason)["choices"][0]["finish_reason"] == finish


def test_cache_usage_counts_inside_prompt_tokens():
    out = parse([{"type": "text", "text": "x"}], usage={
        "input_tokens": 7, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000, "output_tokens": 3,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 0},
        "service_tier": "standard"})
    assert out["usage"] == {"prompt_tokens": 2107, "completion_tokens": 3, "total_tokens": 2110,
                            "prompt_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": 100},
                            "completion_tokens_details": {"reasoning_tokens": 0}}


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", b'{"id": "msg_1"}', b"[1]"])
def test_malformed_responses_are_upstream_errors(body):
    with pytest.raises(GatewayError) as info:
        ADAPTER.parse_response(REQ, 200, body)
    assert (info.value.status, info.value.code) == (502, "upstream_bad_response")


def test_error_shaped_200_body_is_an_error():
    body = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}).encode()
    with pytest.raises(GatewayError) as info:
        ADAPTER.parse_response(REQ, 200, body)
    assert info.value.status == 502 and info.value.retryable


# ---------------------------------------------------------------- parse_error


def error_body(kind: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message},
                       "request_id": "req_011CU"}).encode()


@pytest.mark.parametrize(("status", "kind", "expected_status", "code", "retryable"), [
    (400, "invalid_request_error", 400, "upstream_invalid_request", False),
    (401, "authentication_error", 502, "upstream_auth_failed", False),
    (403, "permission_error", 502, "upstream_auth_failed", False),
    (404, "not_found_error", 404, "model_not_found", False),
    (413, "request_too_large", 413, "upstream_request_too_large", False),
    (429, "rate_limit_error", 429, "upstream_rate_limited", True),
    (500, "api_error", 502, "upstream_error", True),
    (529, "overloaded_error", 502, "upstream_error", True),
])
def test_parse_error_maps_status_and_keeps_the_provider_message(status, kind, expected_status, code, retryable):
    err = ADAPTER.parse_error(status, error_body(kind, "messages.0.role: Input should be 'user'"), {})
    assert (err.status, err.code, err.retryable) == (expected_status, code, retryable)
    assert "messages.0.role: Input should be 'user'" in err.message
    assert err.message.startswith("anthropic")


def test_rate_limit_keeps_retry_after():
    err = ADAPTER.parse_error(429, error_body("rate_limit_error", "slow down"), {"retry-after": "17"})
    assert err.headers == {"retry-after": "17"}


def test_parse_error_of_a_non_json_body_keeps_its_text():
    err = ADAPTER.parse_error(502, b"upstream connect error", {})
    assert err.status == 502 and "upstream connect error" in err.message


def test_parse_error_never_includes_the_key():
    err = ADAPTER.parse_error(401, error_body("authentication_error", f"invalid x-api-key: {KEY}"), {})
    assert KEY not in err.message and KEY not in err.body().decode()
    assert "invalid x-api-key" in err.message

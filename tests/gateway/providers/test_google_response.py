"""Gemini responses and error bodies -> OpenAI completions and gateway errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from lunos.gateway.providers.google import GoogleAdapter

FIXTURES = Path(__file__).parents[2] / "fixtures" / "gemini"
KEY = "gm-secret-key"
CALL_ID = re.compile(r"call_[0-9a-f]{24}")
PLACEHOLDER = re.compile(r"<id:(\d+)>")


def adapter() -> GoogleAdapter:
    return GoogleAdapter(ProviderConfig("google", "google", "https://gemini.example", KEY))


REQ = ChatRequest({"model": "google/gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]},
                  "google/gemini-2.5-flash", "google", "gemini-2.5-flash")


def parse(data: dict) -> dict:
    return adapter().parse_response(REQ, 200, orjson.dumps(data))


def assert_matches(actual, expected, ids: dict) -> None:
    """Equality where `"<id:N>"` stands for one gateway-made tool-call id per N."""
    if isinstance(expected, str) and PLACEHOLDER.fullmatch(expected):
        assert isinstance(actual, str) and CALL_ID.fullmatch(actual), actual
        n = PLACEHOLDER.fullmatch(expected).group(1)
        assert ids.setdefault(n, actual) == actual
        assert list(ids.values()).count(actual) == 1, "two calls share an id"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), (actual, expected)
        for key in expected:
            assert_matches(actual[key], expected[key], ids)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (actual, expected)
        for a, e in zip(actual, expected, strict=True):
            assert_matches(a, e, ids)
    else:
        assert actual == expected


RESPONSES = sorted(p for p in FIXTURES.glob("*.json") if not p.name.endswith(".expected.json"))


def test_every_response_fixture_has_an_expected_output():
    assert RESPONSES, "no response fixtures"
    for path in RESPONSES:
        assert path.with_name(path.stem + ".expected.json").exists(), path.name


@pytest.mark.parametrize("path", RESPONSES, ids=lambda p: p.name)
def test_response_fixture(path: Path):
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())
    assert_matches(adapter().parse_response(REQ, 200, path.read_bytes()), expected, {})


def candidate(parts: list[dict], finish: str | None = "STOP", index: int | None = 0) -> dict:
    out: dict = {"content": {"parts": parts, "role": "model"}}
    if finish:
        out["finishReason"] = finish
    if index is not None:
        out["index"] = index
    return out


@pytest.mark.parametrize(("reason", "calls", "expected"), [
    ("STOP", False, "stop"),
    ("STOP", True, "tool_calls"),
    ("MAX_TOKENS", False, "length"),
    ("MAX_TOKENS", True, "length"),
    ("SAFETY", False, "content_filter"),
    ("RECITATION", False, "content_filter"),
    ("BLOCKLIST", False, "content_filter"),
    ("PROHIBITED_CONTENT", False, "content_filter"),
    ("SPII", False, "content_filter"),
    ("IMAGE_SAFETY", False, "content_filter"),
    ("OTHER", False, "stop"),
    ("LANGUAGE", False, "stop"),
    ("MALFORMED_FUNCTION_CALL", False, "stop"),
    ("FINISH_REASON_UNSPECIFIED", False, "stop"),
])
def test_finish_reasons(reason, calls, expected):
    parts = [{"functionCall": {"name": "f", "args": {}}}] if calls else [{"text": "hi"}]
    out = parse({"candidates": [candidate(parts, reason)]})
    assert out["choices"][0]["finish_reason"] == expected


def test_api_call_ids_are_kept_and_missing_ones_made():
    out = parse({"candidates": [candidate([
        {"functionCall": {"id": "fc-upstream-1", "name": "a", "args": {"x": [1, {"y": None}]}}},
        {"functionCall": {"name": "b"}},
    ])]})
    calls = out["choices"][0]["message"]["tool_calls"]
    assert calls[0]["id"] == "fc-upstream-1"
    assert calls[0]["function"] == {"name": "a", "arguments": '{"x":[1,{"y":null}]}'}
    assert CALL_ID.fullmatch(calls[1]["id"])
    assert calls[1]["function"] == {"name": "b", "arguments": "{}"}
    assert out["choices"][0]["message"]["content"] is None


def test_thought_parts_go_to_reasoning_content_not_content():
    out = parse({"candidates": [candidate([
        {"text": "Let me think. ", "thought": True},
        {"text": "More thought.", "thought": True, "thoughtSignature": "dGhvdWdodA=="},
        {"text": "Answer: "},
        {"text": "42"},
    ])]})
    message = out["choices"][0]["message"]
    assert message["content"] == "Answer: 42"
    assert message["reasoning_content"] == "Let me think. More thought."
    assert message["reasoning_details"] == [{"type": "reasoning.encrypted", "data": "dGhvdWdodA==",
                                             "format": "google-gemini-v1", "index": 0}]


def test_candidates_become_choices_by_index_even_when_index_zero_is_omitted():
    out = parse({"candidates": [candidate([{"text": "second"}], index=1),
                                candidate([{"text": "first"}], index=None)],
                 "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}})
    assert [(c["index"], c["message"]["content"]) for c in out["choices"]] == [(0, "first"), (1, "second")]
    assert out["usage"]["total_tokens"] == 7


def test_safety_stop_without_content_is_an_empty_content_filter_answer():
    out = parse({"candidates": [{"finishReason": "SAFETY", "index": 0,
                                 "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT",
                                                    "probability": "HIGH", "blocked": True}]}]})
    assert out["choices"] == [{"index": 0, "message": {"role": "assistant", "content": ""},
                               "finish_reason": "content_filter"}]
    assert out["usage"]["total_tokens"] == 0


def test_usage_counts_tool_use_prompt_cache_and_thoughts():
    out = parse({"candidates": [candidate([{"text": "x"}])], "usageMetadata": {
        "promptTokenCount": 100, "cachedContentTokenCount": 60, "toolUsePromptTokenCount": 7,
        "candidatesTokenCount": 10, "thoughtsTokenCount": 25, "totalTokenCount": 142}})
    assert out["usage"] == {"prompt_tokens": 107, "completion_tokens": 35, "total_tokens": 142,
                            "prompt_tokens_details": {"cached_tokens": 60},
                            "completion_tokens_details": {"reasoning_tokens": 25}}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"usageMetadata": {}}'])
def test_malformed_responses_are_502(body):
    with pytest.raises(GatewayError) as err:
        adapter().parse_response(REQ, 200, body)
    assert err.value.status == 502 and err.value.code == "upstream_bad_response"


# -- errors ---------------------------------------------------------------------------------


def error_body(code: int, message: str, status: str, details: list | None = None) -> bytes:
    error = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return orjson.dumps({"error": error})


def test_bad_request_keeps_the_providers_message():
    message = 'Invalid JSON payload received. Unknown name "x" at \'generation_config\': Cannot find field.'
    err = adapter().parse_error(400, error_body(400, message, "INVALID_ARGUMENT"), {})
    assert err.status == 400
    assert err.code == "upstream_invalid_request"
    assert err.message == f"google: {message}"


def test_invalid_api_key_is_the_gateways_problem_not_the_callers():
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com"}]
    err = adapter().parse_error(400, error_body(
        400, f"API key not valid: {KEY}. Please pass a valid API key.", "INVALID_ARGUMENT", details), {})
    assert err.status == 502
    assert err.code == "upstream_auth_failed"
    assert KEY not in err.message and KEY not in err.body().decode()
    assert "API key not valid" in err.message


def test_permission_denied_is_502():
    err = adapter().parse_error(403, error_body(403, "Method doesn't allow unregistered callers",
                                                "PERMISSION_DENIED"), {})
    assert err.status == 502 and err.code == "upstream_auth_failed"


def test_rate_limit_takes_retry_after_from_retry_info_when_no_header():
    details = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
               {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.2s"}]
    body = error_body(429, "You exceeded your current quota.", "RESOURCE_EXHAUSTED", details)
    err = adapter().parse_error(429, body, {})
    assert err.status == 429 and err.retryable
    assert err.headers == {"retry-after": "37"}
    assert adapter().parse_error(429, body, {"retry-after": "5"}).headers == {"retry-after": "5"}


@pytest.mark.parametrize(("status", "expected"), [(404, 404), (500, 502), (503, 502), (504, 504)])
def test_statuses_map_like_every_provider(status, expected):
    err = adapter().parse_error(status, error_body(status, "boom", "X"), {})
    assert err.status == expected
    assert err.message == "google: boom"


def test_non_json_error_body_is_kept_as_text():
    err = adapter().parse_error(502, b"<html>Bad Gateway</html>", {})
    assert err.status == 502 and "Bad Gateway" in err.message


def test_error_array_from_a_json_stream_is_understood():
    body = b"[" + error_body(400, "bad thing", "INVALID_ARGUMENT") + b"]"
    err = adapter().parse_error(400, body, {})
    assert err.status == 400 and err.message == "google: bad thing"

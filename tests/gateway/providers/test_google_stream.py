"""`streamGenerateContent?alt=sse` transcripts -> OpenAI chunks, replayed from fixtures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

from lunos._sse import ServerSentEvent, SSEDecoder
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from lunos.gateway.providers.google import GoogleAdapter

FIXTURES = Path(__file__).parents[2] / "fixtures" / "gemini"
TRANSCRIPTS = sorted(FIXTURES.glob("*.chunks.jsonl"))
KEY = "gm-secret-key"
CALL_ID = re.compile(r"call_[0-9a-f]{24}")
PLACEHOLDER = re.compile(r"<id:(\d+)>")
REQ = ChatRequest({"model": "google/gemini-3-pro-preview", "messages": [{"role": "user", "content": "x"}],
                   "stream": True}, "google/gemini-3-pro-preview", "google", "gemini-3-pro-preview",
                  stream=True)


def translator():
    return GoogleAdapter(ProviderConfig("google", "google", "https://gemini.example", KEY)).stream_translator(REQ)


def replay(lines: list[str], piece: int = 7) -> tuple[list[dict], GatewayError | None]:
    """Frame the lines as the API does (`data: ...` CRLF CRLF), feed them in small reads."""
    wire = b"".join(b"data: " + line.encode() + b"\r\n\r\n" for line in lines)
    decoder, t, out = SSEDecoder(), translator(), []
    try:
        for k in range(0, len(wire), piece):
            for event in decoder.feed(wire[k:k + piece]):
                out.extend(t.feed(event))
        for event in decoder.flush():
            out.extend(t.feed(event))
        out.extend(t.finish())
    except GatewayError as exc:
        return out, exc
    return out, None


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


def test_every_transcript_has_an_expected_output():
    assert len(TRANSCRIPTS) >= 9
    for path in TRANSCRIPTS:
        assert path.with_name(path.name.replace(".jsonl", ".expected.json")).exists(), path.name


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.name)
@pytest.mark.parametrize("piece", [7, 4096])
def test_transcript(path: Path, piece: int):
    expected = json.loads(path.with_name(path.name.replace(".jsonl", ".expected.json")).read_text())
    chunks, error = replay(path.read_text().splitlines(), piece)
    assert_matches(chunks, expected["chunks"], {})
    if "error" in expected:
        assert error is not None
        want = expected["error"]
        assert (error.status, error.code, error.message) == (want["status"], want["code"], want["message"])
        assert error.retryable == want.get("retryable", False)
    else:
        assert error is None


def test_recorded_tool_call_arguments_parse_and_ids_are_stable():
    chunks, _ = replay((FIXTURES / "parallel_calls.chunks.jsonl").read_text().splitlines())
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls", ()):
                entry = calls.setdefault(delta["index"], {"id": None, "arguments": ""})
                if "id" in delta:
                    assert entry["id"] is None, "an id is sent once per call"
                    entry["id"] = delta["id"]
                entry["arguments"] += delta["function"].get("arguments", "")
    assert sorted(calls) == [0, 1, 2]
    assert len({c["id"] for c in calls.values()}) == 3
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"city": "Paris"}, {"city": "London", "unit": "celsius"}, {"zone": "Europe/Paris"}]


def test_no_empty_content_delta_is_ever_emitted_after_the_role():
    for path in TRANSCRIPTS:
        chunks, _ = replay(path.read_text().splitlines())
        for chunk in chunks:
            for choice in chunk["choices"]:
                delta = choice["delta"]
                if "role" not in delta and "content" in delta:
                    assert delta["content"], path.name


def test_role_delta_comes_first_for_every_choice():
    for path in TRANSCRIPTS:
        chunks, _ = replay(path.read_text().splitlines())
        seen: set[int] = set()
        for chunk in chunks:
            for choice in chunk["choices"]:
                if choice["index"] not in seen:
                    assert choice["delta"].get("role") == "assistant", path.name
                    seen.add(choice["index"])


def event(data: dict | str) -> ServerSentEvent:
    return ServerSentEvent(data if isinstance(data, str) else orjson.dumps(data).decode())


def test_rate_limit_error_event_is_429_with_retry_after():
    t = translator()
    with pytest.raises(GatewayError) as err:
        t.feed(event({"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED",
                                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]}}))
    assert err.value.status == 429 and err.value.headers == {"retry-after": "2"}


def test_error_event_never_repeats_the_key():
    with pytest.raises(GatewayError) as err:
        translator().feed(event({"error": {"code": 400, "message": f"bad key {KEY}", "status": "INVALID_ARGUMENT",
                                           "details": [{"reason": "API_KEY_INVALID"}]}}))
    assert err.value.status == 502
    assert KEY not in err.value.message


def test_an_event_that_is_not_json_is_502():
    with pytest.raises(GatewayError) as err:
        translator().feed(event("{not json"))
    assert err.value.status == 502 and err.value.code == "upstream_bad_response"


def test_blank_events_are_ignored():
    assert translator().feed(event("")) == []


def test_stream_that_ends_before_the_finish_reason_raises():
    t = translator()
    t.feed(event({"candidates": [{"content": {"parts": [{"text": "Hal"}], "role": "model"}, "index": 0}]}))
    with pytest.raises(GatewayError) as err:
        t.finish()
    assert err.value.status == 502 and not err.value.retryable


def test_empty_stream_raises_a_retryable_error():
    with pytest.raises(GatewayError) as err:
        translator().finish()
    assert err.value.status == 502 and err.value.retryable


def test_stream_without_usage_emits_no_usage_chunk():
    t = translator()
    out = t.feed(event({"candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"},
                                        "finishReason": "STOP"}]}))
    assert [c["choices"][0]["delta"] for c in out] == [{"role": "assistant", "content": ""}, {"content": "ok"}, {}]
    assert out[-1]["choices"][0]["finish_reason"] == "stop"
    assert t.finish() == []


def test_usage_is_taken_from_the_last_event_only():
    t = translator()
    t.feed(event({"candidates": [{"content": {"parts": [{"text": "a"}]}, "index": 0}],
                  "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1, "totalTokenCount": 6}}))
    t.feed(event({"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP", "index": 0}],
                  "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7}}))
    (usage_chunk,) = t.finish()
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 5
    assert usage_chunk["usage"]["completion_tokens"] == 2

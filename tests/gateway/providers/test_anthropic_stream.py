"""Anthropic stream translation: every recorded transcript in tests/fixtures/anthropic/
replayed through the translator and compared with its expected OpenAI chunks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lunos._sse import ServerSentEvent, SSEDecoder
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.anthropic import AnthropicAdapter, AnthropicStreamTranslator
from lunos.gateway.providers.base import ChatRequest, ProviderConfig

FIXTURES = Path(__file__).parents[2] / "fixtures" / "anthropic"
TRANSCRIPTS = sorted(FIXTURES.glob("*.sse"))
KEY = "sk-ant-secret-key"


def translator() -> AnthropicStreamTranslator:
    adapter = AnthropicAdapter(ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key=KEY))
    req = ChatRequest({"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}],
                       "stream": True}, "anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", stream=True)
    return adapter.stream_translator(req)


def replay(data: bytes, piece: int | None = None) -> tuple[list[dict], GatewayError | None]:
    """Decode `data` (whole, or in `piece`-byte reads) and translate it."""
    decoder, t, chunks = SSEDecoder(), translator(), []
    reads = [data] if piece is None else [data[i:i + piece] for i in range(0, len(data), piece)]
    try:
        for read in reads:
            for event in decoder.feed(read):
                chunks.extend(t.feed(event))
        for event in decoder.flush():
            chunks.extend(t.feed(event))
        chunks.extend(t.finish())
    except GatewayError as exc:
        return chunks, exc
    return chunks, None


def event(kind: str, payload: dict) -> ServerSentEvent:
    return ServerSentEvent(json.dumps({"type": kind, **payload}), kind)


def feed_all(t: AnthropicStreamTranslator, events: list[ServerSentEvent]) -> list[dict]:
    out = []
    for e in events:
        out.extend(t.feed(e))
    return out


START = event("message_start", {"message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                            "model": "claude-x", "usage": {"input_tokens": 3, "output_tokens": 1}}})
STOP = event("message_stop", {})


def test_every_transcript_has_expected_output():
    assert len(TRANSCRIPTS) >= 11
    missing = [p.name for p in TRANSCRIPTS if not p.with_suffix(".expected.json").exists()]
    assert missing == []


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
@pytest.mark.parametrize("piece", [None, 7], ids=["whole", "7-byte-reads"])
def test_transcript_translates_to_expected_chunks(path: Path, piece):
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    chunks, error = replay(path.read_bytes(), piece)
    assert chunks == expected["chunks"]
    if expected["error"] is None:
        assert error is None
    else:
        assert error is not None
        assert {"status": error.status, "code": error.code, "retryable": error.retryable,
                "message": error.message} == expected["error"]


def test_streamed_tool_arguments_reassemble_to_json():
    chunks, _ = replay((FIXTURES / "parallel_tool_use_response.sse").read_bytes())
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls", ()):
                entry = calls.setdefault(call["index"], {"id": None, "arguments": ""})
                entry["id"] = call.get("id") or entry["id"]
                entry["arguments"] += call["function"]["arguments"]
    assert {i: (c["id"], json.loads(c["arguments"])) for i, c in calls.items()} == {
        0: ("toolu_01ParisWeatherCall", {"location": "Paris"}),
        1: ("toolu_01TokyoTimeCall", {"city": "Tokyo"}),
    }


def test_nothing_is_emitted_before_real_output_so_early_errors_stay_retryable():
    t = translator()
    assert feed_all(t, [START, event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
                        ServerSentEvent('{"type": "ping"}', "ping")]) == []
    with pytest.raises(GatewayError) as info:
        t.feed(ServerSentEvent('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "error"))
    assert info.value.retryable


def test_unknown_events_and_block_types_are_skipped():
    t = translator()
    out = feed_all(t, [
        START,
        event("content_block_start", {"index": 0, "content_block": {"type": "future_block", "x": 1}}),
        event("content_block_delta", {"index": 0, "delta": {"type": "future_delta", "x": "y"}}),
        event("content_block_stop", {"index": 0}),
        event("some_new_event", {"anything": True}),
        event("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
        event("content_block_delta", {"index": 1, "delta": {"type": "citations_delta", "citation": {}}}),
        event("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": "ok"}}),
        event("content_block_stop", {"index": 1}),
        event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
        STOP,
    ])
    assert [c["choices"][0]["delta"] for c in out[:-1]] == [
        {"role": "assistant", "content": ""}, {"content": "ok"}, {}]
    assert out[-1]["usage"]["completion_tokens"] == 2


def test_server_tool_blocks_do_not_shift_client_tool_indexes():
    t = translator()
    out = feed_all(t, [
        START,
        event("content_block_start", {"index": 0, "content_block": {"type": "server_tool_use", "id": "srvtoolu_1",
                                                                   "name": "web_search", "input": {}}}),
        event("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        event("content_block_stop", {"index": 0}),
        event("content_block_start", {"index": 1, "content_block": {"type": "web_search_tool_result",
                                                                   "tool_use_id": "srvtoolu_1", "content": []}}),
        event("content_block_stop", {"index": 1}),
        event("content_block_start", {"index": 2, "content_block": {"type": "tool_use", "id": "toolu_9",
                                                                   "name": "f", "input": {}}}),
    ])
    assert out[-1]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    assert len(out) == 2


def test_tool_input_given_whole_on_block_start_still_reaches_client():
    t = translator()
    out = feed_all(t, [
        START,
        event("content_block_start", {"index": 0, "content_block": {"type": "tool_use", "id": "toolu_1",
                                                                   "name": "f", "input": {"a": 1}}}),
        event("content_block_stop", {"index": 0}),
    ])
    assert out[-1] == {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": '{"a":1}'}}]}, "finish_reason": None}]}


def test_role_comes_first_even_without_message_start():
    t = translator()
    out = feed_all(t, [
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": "Hi"}}),
        event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
        STOP,
    ])
    assert [c["choices"][0]["delta"] for c in out[:3]] == [
        {"role": "assistant", "content": ""}, {"content": "Hi"}, {}]
    assert out[3]["usage"]["prompt_tokens"] == 0  # no input count was ever sent


def test_no_usage_chunk_when_upstream_sent_no_usage():
    t = translator()
    out = feed_all(t, [event("message_start", {"message": {"id": "m", "content": []}}),
                       event("message_delta", {"delta": {"stop_reason": "end_turn"}}), STOP])
    assert out[-1] == {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


def test_events_after_message_stop_are_ignored_and_finish_adds_nothing():
    t = translator()
    feed_all(t, [START, event("message_delta", {"delta": {"stop_reason": "end_turn"}}), STOP])
    assert t.feed(event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": "x"}})) == []
    assert t.finish() == []


def test_stream_cut_after_stop_reason_still_finishes():
    t = translator()
    feed_all(t, [START, event("message_delta", {"delta": {"stop_reason": "max_tokens"},
                                                "usage": {"output_tokens": 9}})])
    out = t.finish()
    assert [c["choices"][0]["delta"] for c in out[:2]] == [{"role": "assistant", "content": ""}, {}]
    assert out[1]["choices"][0]["finish_reason"] == "length"
    assert out[2]["usage"]["completion_tokens"] == 9


def test_stream_cut_before_the_end_is_an_error():
    t = translator()
    feed_all(t, [START, event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})])
    with pytest.raises(GatewayError) as info:
        t.finish()
    assert info.value.status == 502
    assert info.value.code == "upstream_incomplete_stream"


def test_event_that_is_not_json_is_an_error():
    t = translator()
    with pytest.raises(GatewayError) as info:
        t.feed(ServerSentEvent("{not json", "content_block_delta"))
    assert info.value.status == 502


@pytest.mark.parametrize(("kind", "status", "retryable"), [
    ("overloaded_error", 502, True),
    ("api_error", 502, True),
    ("rate_limit_error", 429, True),
    ("invalid_request_error", 400, False),
    ("request_too_large", 413, False),
    ("authentication_error", 502, False),
    ("timeout_error", 504, True),
    ("brand_new_error", 502, True),
])
def test_error_events_map_to_gateway_errors(kind, status, retryable):
    t = translator()
    t.feed(START)
    with pytest.raises(GatewayError) as info:
        t.feed(ServerSentEvent(json.dumps({"type": "error", "error": {"type": kind, "message": "went wrong"}}),
                               "error"))
    assert (info.value.status, info.value.retryable) == (status, retryable)
    assert "went wrong" in info.value.message


def test_error_event_never_leaks_the_provider_key():
    t = translator()
    with pytest.raises(GatewayError) as info:
        t.feed(ServerSentEvent(json.dumps({"type": "error", "error": {
            "type": "authentication_error", "message": f"key {KEY} is not valid"}}), "error"))
    assert KEY not in info.value.message
    assert KEY not in info.value.body().decode()


def test_error_event_without_a_body_shape_is_still_an_error():
    t = translator()
    with pytest.raises(GatewayError) as info:
        t.feed(ServerSentEvent('{"oops": 1}', "error"))
    assert info.value.status == 502

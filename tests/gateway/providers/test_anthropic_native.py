"""The Messages pass-through (providers/anthropic/native.py), from recorded streams: every
event reaches the client with the data Anthropic sent (only the model renamed), usage is
folded for the row, and errors before and after the first content block raise."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lunos._sse import SSEDecoder
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.anthropic import AnthropicAdapter
from lunos.gateway.providers.anthropic.native import native_headers
from lunos.gateway.providers.base import ChatRequest, NativeBody, ProviderConfig

FIXTURES = Path(__file__).parents[2] / "fixtures" / "anthropic"
STREAMS = sorted(p.stem for p in FIXTURES.glob("*.sse") if "error" not in p.stem)
ADAPTER = AnthropicAdapter(ProviderConfig("anthropic", "anthropic", "https://api.anthropic.test",
                                          "sk-ant-secret", headers=(("anthropic-beta", "server-beta"),)))


def _req(body: dict | None = None, headers=()) -> ChatRequest:
    body = body or {"model": "claude-sonnet-4-5", "max_tokens": 10,
                    "messages": [{"role": "user", "content": "hi"}]}
    return ChatRequest(body, "anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5",
                       native=NativeBody("messages", body, list(headers)))


def _events(raw: bytes) -> list:
    decoder = SSEDecoder()
    return [*decoder.feed(raw), *decoder.flush()]


def _relay(name: str, trace: bool = False):
    raw = (FIXTURES / f"{name}.sse").read_bytes()
    relay = ADAPTER.native_relay(_req(), trace=trace)
    out: list[bytes] = []
    for event in _events(raw):
        out += relay.feed(event)
    out += relay.finish()
    return raw, relay, _events(b"".join(out))


@pytest.mark.parametrize("name", STREAMS)
def test_every_event_is_relayed_as_sent_with_the_model_renamed(name):
    raw, _, relayed = _relay(name)
    sent = _events(raw)
    assert [e.event for e in relayed] == [e.event for e in sent]
    for before, after in zip(sent, relayed, strict=True):
        if before.event == "message_start":
            expected = orjson.loads(before.data)
            expected["message"]["model"] = "anthropic/claude-sonnet-4-5"
            assert orjson.loads(after.data) == expected
        else:
            assert after.data == before.data  # not even re-serialized


@pytest.mark.parametrize("name", STREAMS)
def test_usage_is_folded_from_start_and_delta(name):
    raw, relay, _ = _relay(name)
    given: dict = {}
    for event in _events(raw):
        data = orjson.loads(event.data)
        usage = (data.get("message") or {}).get("usage") if event.event == "message_start" else data.get("usage")
        if event.event in ("message_start", "message_delta") and usage:
            given.update((k, v) for k, v in usage.items() if v is not None)
    cached = given.get("cache_read_input_tokens") or 0
    written = given.get("cache_creation_input_tokens") or 0
    assert relay.usage["prompt_tokens"] == given["input_tokens"] + cached + written
    assert relay.usage["completion_tokens"] == given["output_tokens"]


def test_trace_folds_the_answer():
    _, relay, _ = _relay("tool_use_response", trace=True)
    out = relay.output.to_dict()
    assert out["content"].startswith("I'll check the current weather in Paris")
    assert out["tool_calls"][0]["function"]["name"] == "get_weather"
    assert orjson.loads(out["tool_calls"][0]["function"]["arguments"]) == {"location": "Paris"}
    assert out["finish_reason"] == "tool_calls"


def test_start_and_ping_wait_for_the_first_block():
    """Until a content block starts nothing is sent, so the engine may still retry."""
    raw = (FIXTURES / "basic_response.sse").read_bytes()
    relay = ADAPTER.native_relay(_req())
    events = _events(raw)
    assert relay.feed(events[0]) == []  # message_start
    assert not relay.started
    first = relay.feed(events[1])
    assert relay.started and [e.event for e in _events(b"".join(first))] == ["message_start", events[1].event]


def test_an_error_event_raises_with_the_providers_status():
    raw = (FIXTURES / "error_midstream_response.sse").read_bytes()
    relay = ADAPTER.native_relay(_req())
    with pytest.raises(GatewayError) as exc:
        for event in _events(raw):
            relay.feed(event)
    assert exc.value.upstream_status in (500, 529)


def test_a_stream_cut_before_message_stop_is_incomplete():
    raw = (FIXTURES / "basic_response.sse").read_bytes()
    events = _events(raw)
    relay = ADAPTER.native_relay(_req())
    for event in events[:4]:
        relay.feed(event)
    with pytest.raises(GatewayError) as exc:
        relay.finish()
    assert exc.value.code == "upstream_incomplete_stream"


def test_the_body_goes_upstream_as_sent_with_only_the_model_renamed():
    body = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 10,
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [{"role": "user", "content": "hi"}], "context_management": {"edits": []},
            "thinking": {"type": "enabled", "budget_tokens": 2048}, "metadata": {"user_id": "u"}}
    req = _req(body, [("anthropic-version", "2023-06-01"), ("anthropic-beta", "client-beta")])
    up = ADAPTER.build_native_request(req)
    assert up.url == "https://api.anthropic.test/v1/messages"
    assert orjson.loads(up.body) == {**body, "model": "claude-sonnet-4-5"}
    headers = dict(up.headers)
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "client-beta,server-beta"
    assert headers["x-api-key"] == "sk-ant-secret"


def test_betas_and_version_default_to_the_adapters():
    assert native_headers([("anthropic-version", "2023-06-01")], [("anthropic-beta", "b1")]) == [
        ("anthropic-version", "2023-06-01"), ("anthropic-beta", "b1")]


def test_a_json_answer_comes_back_as_sent_with_the_model_renamed():
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [{"type": "thinking", "thinking": "hm", "signature": "sig"},
                           {"type": "text", "text": "hi", "citations": None}],
               "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 7,
                         "cache_creation_input_tokens": 3}}
    answer, usage = ADAPTER.parse_native_response(_req(), orjson.dumps(message))
    assert answer == {**message, "model": "anthropic/claude-sonnet-4-5"}
    assert usage["prompt_tokens"] == 15 and usage["prompt_tokens_details"]["cached_tokens"] == 7

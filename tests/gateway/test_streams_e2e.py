"""Streams that go wrong after they started, and what a stream reports, with the openai SDK.

Each upstream answer here is scripted byte for byte (the stand-ins' `scripted` replies), so
the cases real providers produce rarely are exact: an event that does not decode, one whose
shape surprises the translator, a tool call streamed without arguments.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from tests.gateway_process import MASTER_KEY
from tests.standins.harness import send_json, send_sse

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
NO_ARGS_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "The time now", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def row(gateway, row_id: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        r = httpx.get(f"{gateway.url}/v1/logs/{row_id}", headers=MASTER)
        if r.status_code == 200 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            return r.json()
        time.sleep(0.05)


# ---------------------------------------------------------------- scripted upstream streams
def _data(payload) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return b"data: " + text.encode() + b"\n\n"


def _openai_chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _anthropic(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **payload})}\n\n".encode()


ANTHROPIC_START = _anthropic("message_start", {"message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],
    "stop_reason": None, "usage": {"input_tokens": 5, "output_tokens": 1}}})


def _gemini(parts: list[dict], finish: str | None = None) -> bytes:
    candidate: dict = {"index": 0, "content": {"role": "model", "parts": parts}}
    if finish:
        candidate["finishReason"] = finish
    return _data({"candidates": [candidate],
                  "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7}})


def hello_then(bad: bytes) -> dict[str, list[bytes]]:
    """Per provider: a first piece of text, then `bad` (or a provider-specific bad event)."""
    return {
        "openai": [_data(_openai_chunk({"role": "assistant", "content": "Hel"})), bad],
        "anthropic": [ANTHROPIC_START,
                      _anthropic("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
                      _anthropic("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
                      bad],
        "gemini": [_gemini([{"text": "Hel"}]), bad],
    }


MODELS = {"openai": "openai/gpt-4o", "anthropic": "anthropic/claude-haiku-4-5",
          "gemini": "google/gemini-2.5-flash"}

SURPRISES = {  # valid JSON that the translators do not expect: an exception inside them
    "openai": _data({"id": "x", "object": "chat.completion.chunk", "choices": [None]}),
    "anthropic": _anthropic("content_block_delta", {"index": [0], "delta": {"type": "text_delta", "text": "x"}}),
    "gemini": _data({"candidates": [{"index": 0, "content": "not an object"}]}),
}


def _script(events: list[bytes]):
    async def reply(rec, send):
        await send_sse(send, events)
    return reply


def _stream_until_error(client, model: str, **extra) -> tuple[str, openai.APIError]:
    """Stream through the SDK; the text that arrived and the error the SDK raised."""
    text = []
    stream = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello"}], stream=True, **extra)
    with pytest.raises(openai.APIError) as info:
        for chunk in stream.parse():
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
    info.value.request_id = stream.headers["x-request-id"]
    return "".join(text), info.value


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_an_undecodable_event_mid_stream_ends_with_an_error_event(gateway, client, upstreams, provider):
    getattr(upstreams, provider).scripted.append(_script(hello_then(_data("{not json"))[provider]))
    text, error = _stream_until_error(client, MODELS[provider])
    assert text == "Hel"
    assert error.body["type"] == "upstream_error" and error.body["code"] == "upstream_bad_response"
    assert set(error.body) == {"message", "type", "param", "code"}
    logged = row(gateway, error.request_id)
    assert logged["status"] == 502 and "not JSON" in logged["error"]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_translator_exception_mid_stream_ends_with_an_error_event(gateway, client, upstreams, provider):
    getattr(upstreams, provider).scripted.append(_script(hello_then(SURPRISES[provider])[provider]))
    text, error = _stream_until_error(client, MODELS[provider])
    assert text == "Hel"
    assert error.body["code"] == "internal_error" and error.body["type"] == "internal_error"
    logged = row(gateway, error.request_id)
    assert logged["status"] == 500 and "could not translate" in logged["error"]


def test_a_translator_exception_before_the_first_byte_is_a_json_error(gateway, client, upstreams):
    upstreams.anthropic.scripted.append(_script([ANTHROPIC_START, SURPRISES["anthropic"]]))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODELS["anthropic"], stream=True,
                                       messages=[{"role": "user", "content": "hello"}])
    assert info.value.body["code"] == "internal_error"
    assert len(upstreams.anthropic.requests) == 1  # the gateway's own failure is not retried


# ---------------------------------------------------------------- tool calls without arguments
NO_ARGS_STREAMS = {
    "openai": [  # the head carries "" and no fragment follows
        _data(_openai_chunk({"role": "assistant", "content": None})),
        _data(_openai_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                             "function": {"name": "get_time", "arguments": ""}}]})),
        _data(_openai_chunk({}, "tool_calls")),
        _data("[DONE]"),
    ],
    "openai-one-chunk": [  # the call and the finish in one chunk, without an arguments field
        _data(_openai_chunk({"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_time"}}]}, "tool_calls")),
        _data("[DONE]"),
    ],
    "openai-no-finish": [  # a server that never says finish_reason
        _data(_openai_chunk({"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": None}}]})),
        _data("[DONE]"),
    ],
    "anthropic": [  # what Anthropic streams for an empty input: one empty partial_json
        ANTHROPIC_START,
        _anthropic("content_block_start", {"index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}}),
        _anthropic("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        _anthropic("content_block_stop", {"index": 0}),
        _anthropic("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}),
        _anthropic("message_stop", {}),
    ],
    "gemini": [_gemini([{"functionCall": {"name": "get_time"}}], "STOP")],
}


@pytest.mark.parametrize("case", list(NO_ARGS_STREAMS))
def test_a_streamed_tool_call_without_arguments_carries_an_empty_object(gateway, client, upstreams, case):
    provider = case.split("-")[0]
    getattr(upstreams, provider).scripted.append(_script(NO_ARGS_STREAMS[case]))
    calls: dict[int, dict] = {}
    finish = None
    with client.chat.completions.create(model=MODELS[provider], stream=True, tools=[NO_ARGS_TOOL],
                                        extra_body={"observability": True},
                                        messages=[{"role": "user", "content": "what time is it?"}]) as stream:
        row_id = None
        for chunk in stream:
            row_id = chunk.id
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for call in choice.delta.tool_calls or ():
                    acc = calls.setdefault(call.index, {"name": "", "arguments": ""})
                    acc["name"] += (call.function.name or "") if call.function else ""
                    acc["arguments"] += (call.function.arguments or "") if call.function else ""
    assert calls == {0: {"name": "get_time", "arguments": "{}"}}
    assert finish == (None if case == "openai-no-finish" else "tool_calls")
    traced = row(gateway, row_id)["response"]
    assert traced["tool_calls"][0]["function"]["arguments"] == "{}"


def test_a_non_streamed_tool_call_without_arguments_carries_an_empty_object(client, upstreams):
    async def reply(rec, send):
        await send_json(send, 200, {
            "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": ""}}]}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
    upstreams.openai.scripted.append(reply)
    r = client.chat.completions.create(model=MODELS["openai"], tools=[NO_ARGS_TOOL],
                                       messages=[{"role": "user", "content": "what time is it?"}])
    assert r.choices[0].message.tool_calls[0].function.arguments == "{}"


# ---------------------------------------------------------------- the gateway's own time
def test_stream_overhead_excludes_the_wait_for_the_first_event(gateway, client, upstreams):
    """The upstream answers its headers at once and its first event 1 s later: that second
    is upstream time (the attempt's latency), not the gateway's (`x-lunos-overhead-ms`)."""
    async def reply(rec, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await asyncio.sleep(1.0)
        for event in (_data(_openai_chunk({"role": "assistant", "content": "Hi"})),
                      _data(_openai_chunk({}, "stop")), _data("[DONE]")):
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    upstreams.openai.scripted.append(reply)
    raw = client.chat.completions.with_raw_response.create(
        model=MODELS["openai"], stream=True, messages=[{"role": "user", "content": "hello"}])
    overhead = float(raw.headers["x-lunos-overhead-ms"])
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices) == "Hi"
    logged = row(gateway, raw.headers["x-request-id"])
    (attempt,) = logged["attempts"]
    assert attempt["latency_ms"] >= 500  # the wait for the first event is upstream time
    assert 0 <= overhead <= logged["ttft_ms"] - 500  # and is not in the gateway's own time

"""`Stream` / `AsyncStream` over Server-Sent Events: framing edge cases, the end of a stream,
errors inside it, and closing the connection however iteration stops."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

import lunos
from lunos import AsyncStream, ChatCompletionChunk, Stream
from tests.sdk.conftest import Chunks, Server, collect, make_client, resolve, sse_event


def chunk(content: str, **extra) -> dict:
    return {
        "id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
        **extra,
    }


def open_stream(kind: str, pieces: list[bytes]) -> tuple[Stream | AsyncStream, Chunks]:
    body = Chunks(pieces)
    response = httpx.Response(
        200,
        headers={"content-type": "text/event-stream", "x-request-id": "req_s"},
        stream=body,
        request=httpx.Request("POST", "http://gw/v1/chat/completions"),
    )
    cls = Stream if kind == "sync" else AsyncStream
    return cls(response, ChatCompletionChunk), body


def texts(chunks: list[ChatCompletionChunk]) -> list[str]:
    return [c.choices[0].delta.content for c in chunks]


# A body that exercises the framing rules: comments, a keep-alive event without data,
# CRLF and bare CR line endings, multi-line data, multi-byte UTF-8, an `event:`/`id:` field.
TRICKY = (
    b": connected\n\n"
    + sse_event(chunk("Hel", provider="anthropic"))
    + b": OPENROUTER PROCESSING\n\n"
    + b"event: ping\n\n"
    + b'data: {"id": "chatcmpl-9", "choices": [{"index": 0,\r\n'
    + b'data:  "delta": {"content": "l\xc3\xa9 \xe2\x98\x83"}}]}\r\n\r\n'
    + b"id: 7\rdata: " + json.dumps(chunk("o")).encode() + b"\r\r"
    + b"data: [DONE]\n\n"
)
TRICKY_TEXTS = ["Hel", "l\u00e9 \u2603", "o"]


async def test_framing_edge_cases(kind):
    stream, body = open_stream(kind, [TRICKY])
    chunks = await collect(stream)
    assert texts(chunks) == TRICKY_TEXTS
    assert chunks[0].provider == "anthropic"
    assert body.closed


async def test_lines_split_across_reads_at_every_byte_position(kind):
    for cut in range(1, len(TRICKY)):
        stream, body = open_stream(kind, [TRICKY[:cut], TRICKY[cut:]])
        assert texts(await collect(stream)) == TRICKY_TEXTS, cut
        assert body.closed


async def test_one_byte_per_read(kind):
    stream, _ = open_stream(kind, [TRICKY[i : i + 1] for i in range(len(TRICKY))])
    assert texts(await collect(stream)) == TRICKY_TEXTS


async def test_crlf_split_between_reads_is_one_line_ending(kind):
    first = b'data: {"choices": [{"delta": {"content": "a"}}]}\r'
    stream, _ = open_stream(kind, [first, b"\n\r", b"\n", b"data: [DONE]\r\n\r\n"])
    assert texts(await collect(stream)) == ["a"]


async def test_done_ends_the_stream_and_what_follows_is_ignored(kind):
    pieces = [sse_event(chunk("a")), b"data: [DONE]\n\n", sse_event(chunk("never")), b"data: {oops"]
    stream, body = open_stream(kind, pieces)
    assert texts(await collect(stream)) == ["a"]
    assert body.closed


async def test_end_of_body_without_done_raises_after_the_chunks_it_had(kind):
    stream, body = open_stream(kind, [sse_event(chunk("a")), b"data: " + json.dumps(chunk("b")).encode()])
    seen = []
    with pytest.raises(lunos.IncompleteStreamError, match=r"before `data: \[DONE\]`"):
        if isinstance(stream, AsyncStream):
            async for item in stream:
                seen.append(item)
        else:
            seen.extend(item for item in stream)
    assert texts(seen) == ["a", "b"]
    assert body.closed


async def test_final_completion_of_a_cut_stream_raises(kind):
    stream, _ = open_stream(kind, [sse_event(chunk("a"))])
    with pytest.raises(lunos.APIConnectionError):  # IncompleteStreamError is one
        await resolve(stream.get_final_completion())


async def test_malformed_json_is_a_clear_error_and_closes(kind):
    stream, body = open_stream(kind, [sse_event(chunk("a")), b"data: {not json}\n\n"])
    with pytest.raises(lunos.APIResponseValidationError, match=r"not valid JSON.*\{not json\}") as caught:
        await collect(stream)
    assert caught.value.body == "{not json}"
    assert body.closed


async def test_event_of_the_wrong_shape_is_a_clear_error(kind):
    stream, _ = open_stream(kind, [sse_event({"choices": [{"delta": {"content": 5}}]})])
    with pytest.raises(lunos.APIResponseValidationError, match="ChatCompletionChunk"):
        await collect(stream)


async def test_error_event_after_chunks_raises_typed_error_and_closes(kind):
    error = {"error": {"message": "Upstream failed: overloaded", "type": "upstream_error",
                       "param": None, "code": "upstream_error"}}
    stream, body = open_stream(kind, [sse_event(chunk("a")), sse_event(error), b"data: [DONE]\n\n"])
    seen = []
    with pytest.raises(lunos.InternalServerError, match="overloaded") as caught:
        if isinstance(stream, AsyncStream):
            async for item in stream:
                seen.append(item)
        else:
            for item in stream:
                seen.append(item)
    assert texts(seen) == ["a"]
    assert caught.value.status_code == 502 and caught.value.code == "upstream_error"
    assert caught.value.request_id == "req_s"
    assert body.closed


async def test_named_error_event_with_text_data(kind):
    stream, body = open_stream(kind, [b"event: error\ndata: upstream went away\n\n"])
    with pytest.raises(lunos.APIError, match="upstream went away"):
        await collect(stream)
    assert body.closed


async def test_named_error_event_with_a_bare_error_object(kind):
    payload = {"message": "slow down", "type": "rate_limit_error"}
    stream, _ = open_stream(kind, [b"event: error\n" + sse_event(payload)])
    with pytest.raises(lunos.RateLimitError, match="slow down"):
        await collect(stream)


async def test_error_given_as_a_string(kind):
    stream, _ = open_stream(kind, [sse_event({"error": "boom"})])
    with pytest.raises(lunos.APIError, match="boom"):
        await collect(stream)


# --- closing ------------------------------------------------------------------------------

MANY = [sse_event(chunk(str(i))) for i in range(10)] + [b"data: [DONE]\n\n"]


def test_break_closes_the_response_at_once():
    stream, body = open_stream("sync", MANY)
    for item in stream:
        assert item.choices[0].delta.content == "0"
        break
    assert body.closed
    assert body.served < len(MANY)
    assert list(stream) == []  # a closed stream yields nothing more


async def test_async_break_closes_the_response():
    stream, body = open_stream("async", MANY)
    async for _ in stream:
        break
    # The dropped async generator is finalized by the event loop on one of its next turns.
    for _ in range(20):
        if body.closed:
            break
        await asyncio.sleep(0)
    assert body.closed
    assert body.served < len(MANY)


def test_sync_context_manager_closes_on_break_and_on_error():
    stream, body = open_stream("sync", MANY)
    with stream:
        for _ in stream:
            break
    assert body.closed

    stream, body = open_stream("sync", MANY)
    with pytest.raises(RuntimeError), stream:
        next(stream)
        raise RuntimeError("user code failed")
    assert body.closed


async def test_async_context_manager_closes_on_break_and_on_error():
    stream, body = open_stream("async", MANY)
    async with stream:
        async for _ in stream:
            break
    assert body.closed

    stream, body = open_stream("async", MANY)
    with pytest.raises(RuntimeError):
        async with stream:
            await stream.__anext__()
            raise RuntimeError("user code failed")
    assert body.closed


async def test_close_without_iterating(kind):
    stream, body = open_stream(kind, MANY)
    await resolve(stream.close())
    assert body.closed and body.served == 0


def test_next_reads_one_item_at_a_time():
    stream, body = open_stream("sync", MANY)
    assert next(stream).choices[0].delta.content == "0"
    assert next(stream).choices[0].delta.content == "1"
    assert not body.closed
    assert texts(list(stream)) == [str(i) for i in range(2, 10)]
    assert body.closed
    with pytest.raises(StopIteration):
        next(stream)


# --- through the client -------------------------------------------------------------------


async def test_create_stream_returns_the_stream_type_of_the_client(kind):
    pieces = [sse_event(chunk("Hi", provider="openai")), sse_event(chunk(" there")),
              b"data: [DONE]\n\n"]
    server = Server(httpx.Response(200, headers={"x-request-id": "req_1"}, stream=Chunks(pieces)))
    client = make_client(kind, server)
    stream = await resolve(
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert isinstance(stream, Stream if kind == "sync" else AsyncStream)
    assert stream.request_id == "req_1"
    assert server.body()["stream"] is True
    final = await resolve(stream.get_final_completion())
    assert final.choices[0].message.content == "Hi there"
    assert final.provider == "openai" and final.id == "chatcmpl-9"

"""A fast OpenAI- and Anthropic-compatible upstream for the benchmark: raw asyncio (uvloop)
+ httptools.

    python bench/standin.py --port 0 [--chunks 64] [--chunk-delay-ms 10] [--workers 1]

Prints one line `standin listening on PORT` when ready. Answers POST .../chat/completions:

- JSON: a ~1 KB `chat.completion` with usage.
- SSE (`"stream": true`): a role chunk at once, then `--chunks` content deltas, a finish
  chunk, a usage chunk (when `stream_options.include_usage`), then `data: [DONE]`.
  Content deltas are ` t<ns>`: the stand-in's CLOCK_MONOTONIC time when it wrote the chunk,
  so a client on the same machine measures each chunk's relay delay exactly.
  With a chunk delay, one shared ticker advances every open stream once per tick (as a
  batched inference server does); without one, a stream is written in one go.
- A model whose name contains `fail` gets a 500 error body (for error-path load).

and POST .../v1/messages as Anthropic does, with the same text and pacing: a ~1 KB
`message`, or the events `message_start`, `content_block_start` and `ping` at once, then
`--chunks` `text_delta`s (` t<ns>` as above), then `content_block_stop`, `message_delta`
(stop reason, usage) and `message_stop`.

and POST .../v1/responses as OpenAI's Responses API does, with the same text and pacing: a
`response` object, or `response.created`, `.in_progress`, `.output_item.added` and
`.content_part.added` at once, then `--chunks` `response.output_text.delta`s (` t<ns>`), then
`.output_text.done`, `.content_part.done`, `.output_item.done` and `response.completed` (the
whole response with usage), every event with its `sequence_number`.

and the media routes as OpenAI documents them: POST .../v1/completions (legacy text
completions): a `text_completion` object with the same text and usage, or its SSE chunks
(`choices[].text`, ` t<ns>` as above, paced as chat), a finish chunk, a usage chunk (when
`stream_options.include_usage`) and `data: [DONE]`; POST .../v1/images/generations:
`{"created", "data": [{"b64_json"}], "usage"}` with one fixed ~100 KB base64 image (75 KB of
bytes); POST .../v1/audio/speech: a fixed ~100 KB `audio/mpeg` body; POST
.../v1/audio/transcriptions (multipart/form-data): `{"text", "usage"}` as `gpt-4o-transcribe`
answers. A body without the route's required fields (`prompt`; `prompt`; `input` and
`voice`; `file` and `model`) gets a 400.

`GET /stats` answers this process's counts `{"requests", "streams", "failed"}`; any other
request gets a small 200 JSON body (health checks). No TLS, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import os
import random
import re
import signal
import socket
import sys
import time

import httptools
import orjson

CONTENT = (
    "Benchmarks measure what a gateway adds: the time between receiving a request and "
    "forwarding it, the time between the upstream's bytes and the client's, the CPU spent "
    "per request and per streamed event, and the memory held while doing it. This answer is "
    "a fixed paragraph of realistic length so that the response body is about one kilobyte "
    "once the usage block and the envelope are added, which is typical of a short chat "
    "completion. The numbers that matter are the differences against a direct connection, "
    "measured in the same run on the same machine, with the same load generator and the "
    "same upstream."
)
USAGE = {
    "prompt_tokens": 84,
    "completion_tokens": 128,
    "total_tokens": 212,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                  "accepted_prediction_tokens": 0,
                                  "rejected_prediction_tokens": 0},
}
CREATED = 1_760_000_000
RESPONSES_USAGE = {"input_tokens": 84, "input_tokens_details": {"cached_tokens": 0},
                   "output_tokens": 128, "output_tokens_details": {"reasoning_tokens": 0},
                   "total_tokens": 212}
ANTHROPIC_USAGE = {"input_tokens": 84, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 0, "output_tokens": 128}
ERROR_BODY = orjson.dumps({"error": {"message": "The server had an error while processing "
                                                "your request.", "type": "server_error",
                                     "param": None, "code": None}})
IMAGE = b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(75_000 - 8)  # PNG-sized, fixed
AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00" + random.Random(2).randbytes(100_000 - 10)  # ~mp3
REQUIRED = {"/v1/completions": ("prompt",), "/images/generations": ("prompt",),
            "/audio/speech": ("input", "voice"), "/audio/transcriptions": ("file", "model")}
SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")


def _chunk(data: bytes, name: bytes = b"") -> bytes:
    """One HTTP/1.1 chunk holding one SSE event (named `name`, if given)."""
    return _chunk_of((b"event: " + name + b"\n" if name else b"") + b"data: " + data + b"\n\n")


def _response(status: bytes, body: bytes, ctype: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: " + ctype +
            b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body)


class Templates:
    """Pre-rendered bytes per model name: the per-request work is a few joins."""

    first_seq = None  # content events are numbered from here (their format takes it first)

    def __init__(self, model: str) -> None:
        m = model.encode()
        self.json_head = b'{"id":"chatcmpl-bench'
        self.json_tail = orjson.dumps({
            "object": "chat.completion", "created": CREATED, "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": CONTENT,
                                                 "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": USAGE,
        })[1:]  # without its "{": appended after the id
        head = b'{"id":"chatcmpl-bench%d","object":"chat.completion.chunk","created":%d,' \
               b'"model":"' + m + b'","system_fingerprint":"fp_bench","choices":'
        self.chunk_head = head
        self.role = b'[{"index":0,"delta":{"role":"assistant","content":""},' \
                    b'"logprobs":null,"finish_reason":null}]}'
        self.content = b'[{"index":0,"delta":{"content":" t%d"},"logprobs":null,' \
                       b'"finish_reason":null}]}'
        self.finish = b'[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}'
        self.usage = b'[],"usage":' + orjson.dumps(USAGE) + b"}"

    def json(self, rid: int) -> bytes:
        body = self.json_head + b'%d",' % rid + self.json_tail
        return _response(b"200 OK", body)

    def event(self, rid: int, choices: bytes) -> bytes:
        return _chunk(self.chunk_head % (rid, CREATED) + choices)

    def stream(self, rid: int, req: dict) -> tuple[bytes, bytes, bytes]:
        """(what is written at once, the content event's format, the closing bytes)."""
        # "data: {...head...}[{...content:" t%d"...}]}\n\n": one format per chunk.
        content = b"data: " + (self.chunk_head % (rid, CREATED)).replace(b"%", b"%%") \
            + self.content + b"\n\n"
        tail = self.event(rid, self.finish)
        if (req.get("stream_options") or {}).get("include_usage"):
            tail += self.event(rid, self.usage)
        first = self.event(rid, self.role) if self.role else b""
        return first, content, tail + _chunk(b"[DONE]")


class MessagesTemplates:
    """The same answer in Anthropic's Messages format, pre-rendered per model name."""

    first_seq = None

    def __init__(self, model: str) -> None:
        self.json_head = b'{"id":"msg_bench'
        self.json_tail = orjson.dumps({
            "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": CONTENT}],
            "stop_reason": "end_turn", "stop_sequence": None, "usage": ANTHROPIC_USAGE,
        })[1:]
        self.start = orjson.dumps({
            "type": "message_start",
            "message": {"id": "msg_bench%d", "type": "message", "role": "assistant",
                        "model": model, "content": [], "stop_reason": None,
                        "stop_sequence": None, "usage": {**ANTHROPIC_USAGE, "output_tokens": 1}},
        }).replace(b"%", b"%%").replace(b"msg_bench%%d", b"msg_bench%d")
        self.opening = (
            _chunk(b'{"type":"content_block_start","index":0,'
                   b'"content_block":{"type":"text","text":""}}', b"content_block_start")
            + _chunk(b'{"type":"ping"}', b"ping"))
        self.content = (b'event: content_block_delta\ndata: {"type":"content_block_delta",'
                        b'"index":0,"delta":{"type":"text_delta","text":" t%d"}}\n\n')
        self.tail = (
            _chunk(b'{"type":"content_block_stop","index":0}', b"content_block_stop")
            + _chunk(b'{"type":"message_delta","delta":{"stop_reason":"end_turn",'
                     b'"stop_sequence":null},"usage":{"output_tokens":128}}', b"message_delta")
            + _chunk(b'{"type":"message_stop"}', b"message_stop"))

    def json(self, rid: int) -> bytes:
        return _response(b"200 OK", self.json_head + b'%d",' % rid + self.json_tail)

    def stream(self, rid: int, req: dict) -> tuple[bytes, bytes, bytes]:
        first = _chunk(self.start % rid, b"message_start") + self.opening
        return first, self.content, self.tail


class ResponsesTemplates:
    """The same answer as an OpenAI Responses `response`, pre-rendered per model name (event
    shapes as OpenAI's Responses stream sends them, fields in its order)."""

    def __init__(self, model: str, chunks: int) -> None:
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": CONTENT}
        item = {"id": "msg_bench", "type": "message", "status": "completed", "content": [part],
                "role": "assistant"}
        done = {
            "id": "resp_bench%d", "object": "response", "created_at": CREATED,
            "status": "completed", "background": False, "error": None,
            "incomplete_details": None, "instructions": None, "max_output_tokens": None,
            "max_tool_calls": None, "model": model, "output": [item],
            "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None}, "service_tier": "default",
            "store": False, "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto", "tools": [], "top_logprobs": 0, "top_p": 1.0,
            "truncation": "disabled", "usage": RESPONSES_USAGE, "user": None, "metadata": {},
        }
        started = {**done, "status": "in_progress", "output": [], "usage": None}
        self.json_body = _template(done)
        at = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
        head = [
            ("response.created", {"response": started}),
            ("response.in_progress", {"response": started}),
            ("response.output_item.added", {"output_index": 0, "item": {
                **item, "status": "in_progress", "content": []}}),
            ("response.content_part.added", {**at, "part": {**part, "text": ""}}),
        ]
        self.head = _events(head, 0)
        self.first_seq = len(head)
        self.content = (b'event: response.output_text.delta\ndata: {"type":'
                        b'"response.output_text.delta","sequence_number":%d,'
                        b'"item_id":"msg_bench","output_index":0,"content_index":0,'
                        b'"delta":" t%d","logprobs":[],"obfuscation":"a1b2c3d4"}\n\n')
        tail = [
            ("response.output_text.done", {**at, "text": CONTENT, "logprobs": []}),
            ("response.content_part.done", {**at, "part": part}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            ("response.completed", {"response": done}),
        ]
        self.tail = _events(tail, len(head) + chunks)

    def json(self, rid: int) -> bytes:
        return _response(b"200 OK", self.json_body % {b"id": rid})

    def stream(self, rid: int, req: dict) -> tuple[bytes, bytes, bytes]:
        return (_chunk_of(self.head % {b"id": rid}), self.content,
                _chunk_of(self.tail % {b"id": rid}))


class CompletionsTemplates(Templates):
    """The same answer as OpenAI's legacy text completion (`text_completion`), pre-rendered
    per model name: no role chunk, each chunk's text in `choices[].text`."""

    role = None

    def __init__(self, model: str) -> None:
        usage = {k: USAGE[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
        self.json_head = b'{"id":"cmpl-bench'
        self.json_tail = orjson.dumps({
            "object": "text_completion", "created": CREATED, "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [{"text": CONTENT, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": usage,
        })[1:]
        self.chunk_head = b'{"id":"cmpl-bench%d","object":"text_completion","created":%d,' \
                          b'"model":"' + model.encode() + b'","system_fingerprint":"fp_bench",' \
                          b'"choices":'
        self.content = b'[{"text":" t%d","index":0,"logprobs":null,"finish_reason":null}]}'
        self.finish = b'[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}]}'
        self.usage = b'[],"usage":' + orjson.dumps(usage) + b"}"


class ImagesTemplates:
    """OpenAI's images answer (as `gpt-image-1` gives it): one fixed image as `b64_json`."""

    first_seq = None

    def __init__(self, model: str) -> None:
        self.body = _response(b"200 OK", orjson.dumps({
            "created": CREATED, "data": [{"b64_json": base64.b64encode(IMAGE).decode()}],
            "usage": {"total_tokens": 4224, "input_tokens": 64, "output_tokens": 4160,
                      "input_tokens_details": {"text_tokens": 64, "image_tokens": 0}},
        }))

    def json(self, rid: int) -> bytes:
        return self.body


class SpeechTemplates:
    """OpenAI's speech answer: the audio bytes, chunked, with their content type."""

    first_seq = None

    def __init__(self, model: str) -> None:
        self.body = (b"HTTP/1.1 200 OK\r\ncontent-type: audio/mpeg\r\n"
                     b"transfer-encoding: chunked\r\n\r\n" + _chunk_of(AUDIO) + b"0\r\n\r\n")

    def json(self, rid: int) -> bytes:
        return self.body


class TranscriptionsTemplates:
    """OpenAI's transcription answer (`response_format: json`, as `gpt-4o-transcribe` gives it)."""

    first_seq = None

    def __init__(self, model: str) -> None:
        self.body = _response(b"200 OK", orjson.dumps({"text": CONTENT, "usage": {
            "type": "tokens", "input_tokens": 1250, "output_tokens": 128, "total_tokens": 1378,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 1250}}}))

    def json(self, rid: int) -> bytes:
        return self.body


def _form(body: bytes) -> dict:
    """A multipart/form-data body's fields (for a file: its size), its boundary read from its
    first line; {} for any other body."""
    delimiter = b"\r\n" + body[:body.find(b"\r\n")]
    fields: dict = {}
    for part in (b"\r\n" + body).split(delimiter)[1:-1]:
        head, _, value = part.partition(b"\r\n\r\n")
        m = re.search(rb'name="([^"]*)"(; filename=)?', head)
        if m:
            fields[m.group(1).decode()] = len(value) if m.group(2) else value.decode("utf-8", "replace")
    return fields


def _template(data: dict) -> bytes:
    """JSON with `%(id)d` as the response id's slot (any other `%` escaped)."""
    return orjson.dumps(data).replace(b"%", b"%%").replace(b"resp_bench%%d", b"resp_bench%(id)d")


def _events(events: list[tuple[str, dict]], first: int) -> bytes:
    """SSE events, named and numbered from `first`, as one format (see `_template`)."""
    return b"".join(b"event: %b\ndata: %b\n\n" % (name.encode(), _template(
        {"type": name, "sequence_number": first + n, **data})) for n, (name, data) in enumerate(events))


def _chunk_of(events: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(events), events)


class Stream:
    """One open stream: `left` content events to write from `content` (a format with the
    clock's slot, after the event's sequence number's when `seq` is not None), then `tail`."""

    __slots__ = ("content", "left", "seq", "tail", "transport")

    def __init__(self, transport, chunks: int, content: bytes, tail: bytes,
                 seq: int | None = None):
        self.transport = transport
        self.left = chunks
        self.content = content
        self.tail = tail
        self.seq = seq

    def next_event(self) -> bytes:
        """The next content chunk, or the closing events when none are left."""
        if self.left > 0:
            self.left -= 1
            if self.seq is None:
                event = self.content % time.monotonic_ns()
            else:
                event = self.content % (self.seq, time.monotonic_ns())
                self.seq += 1
            return b"%x\r\n%b\r\n" % (len(event), event)
        return self.tail + b"0\r\n\r\n"


class Ticker:
    """Advances every open stream by one chunk per tick, on a fixed schedule."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.streams: set[Stream] = set()
        self.task: asyncio.Task | None = None

    def add(self, stream: Stream) -> None:
        self.streams.add(stream)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        streams = self.streams
        deadline = loop.time()
        while streams:
            deadline = max(deadline + self.delay, loop.time())
            await asyncio.sleep(deadline - loop.time())
            for s in list(streams):
                if s.transport.is_closing():
                    streams.discard(s)
                    continue
                last = s.left == 0
                s.transport.write(s.next_event())
                if last:
                    streams.discard(s)
        self.task = None


class Server:
    def __init__(self, chunks: int, delay: float) -> None:
        self.chunks = chunks
        self.ticker = Ticker(delay) if delay > 0 else None
        self.templates: dict[tuple, Templates | MessagesTemplates | ResponsesTemplates] = {}
        self.kinds = {b"/chat/completions": Templates, b"/v1/messages": MessagesTemplates,
                      b"/v1/responses": functools.partial(ResponsesTemplates, chunks=chunks),
                      b"/v1/completions": CompletionsTemplates,
                      b"/images/generations": ImagesTemplates, b"/audio/speech": SpeechTemplates,
                      b"/audio/transcriptions": TranscriptionsTemplates}
        self.counter = 0
        self.streams = 0
        self.failed = 0

    def templates_for(self, kind, model: str) -> Templates | MessagesTemplates | ResponsesTemplates:
        tpl = self.templates.get((kind, model))
        if tpl is None:
            if len(self.templates) > 64:
                self.templates.clear()
            tpl = self.templates[kind, model] = kind(model)
        return tpl

    def handle(self, transport, method: bytes, url: bytes, body: bytes) -> None:
        suffix, kind = next(((s, k) for s, k in self.kinds.items() if url.endswith(s)), (b"", None))
        if method != b"POST" or kind is None:
            if url == b"/stats":
                stats = {"requests": self.counter + self.failed, "streams": self.streams,
                         "failed": self.failed}
                transport.write(_response(b"200 OK", orjson.dumps(stats)))
            else:
                transport.write(_response(b"200 OK", b'{"ok":true}'))
            return
        try:
            req = _form(body) if kind is TranscriptionsTemplates else orjson.loads(body)
            model = str(req.get("model") or "gpt-bench")
        except (orjson.JSONDecodeError, AttributeError):
            transport.write(_response(b"400 Bad Request", b'{"error":{"message":"bad json"}}'))
            return
        missing = [f for f in REQUIRED.get(suffix.decode(), ()) if not req.get(f)]
        if missing:
            transport.write(_response(b"400 Bad Request", orjson.dumps({"error": {
                "message": f"Missing required parameter: '{missing[0]}'.",
                "type": "invalid_request_error", "param": missing[0],
                "code": "missing_required_parameter"}})))
            return
        if "fail" in model:
            self.failed += 1
            transport.write(_response(b"500 Internal Server Error", ERROR_BODY))
            return
        self.counter += 1
        tpl = self.templates_for(kind, model)
        if not req.get("stream"):
            transport.write(tpl.json(self.counter))
            return
        self.streams += 1
        first, content, tail = tpl.stream(self.counter, req)
        stream = Stream(transport, self.chunks, content, tail, tpl.first_seq)
        first = SSE_HEAD + first
        if self.ticker is None:
            parts = [first]
            while stream.left > 0:
                parts.append(stream.next_event())
            parts.append(stream.next_event())
            transport.write(b"".join(parts))
        else:
            transport.write(first)
            self.ticker.add(stream)


class Connection(asyncio.Protocol):
    __slots__ = ("body", "method", "parser", "server", "transport", "url")

    def __init__(self, server: Server) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self.body)
        self.body = []
        url, self.url = self.url, b""
        self.server.handle(self.transport, self.parser.get_method(), url, body)


def _bind(port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


async def _serve(sock: socket.socket, chunks: int, delay: float, announce: bool) -> None:
    loop = asyncio.get_running_loop()
    server = Server(chunks, delay)
    srv = await loop.create_server(lambda: Connection(server), sock=sock, backlog=4096)
    if announce:
        print(f"standin listening on {sock.getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    srv.close()


def run(port: int, chunks: int, delay_ms: float, workers: int = 1) -> None:
    import uvloop

    sock = _bind(port, workers > 1)
    port = sock.getsockname()[1]  # with several workers, shared through SO_REUSEPORT
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            uvloop.run(_serve(sock, chunks, delay_ms / 1000, False))
            os._exit(0)
        children.append(pid)
    try:
        uvloop.run(_serve(sock, chunks, delay_ms / 1000, True))
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--chunks", type=int, default=64, help="content chunks per stream")
    p.add_argument("--chunk-delay-ms", type=float, default=10.0,
                   help="pacing between stream chunks (0: write the stream at once)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    args = p.parse_args(argv)
    run(args.port, args.chunks, args.chunk_delay_ms, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

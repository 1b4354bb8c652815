"""Closed-loop HTTP/1.1 load generator for chat completions, Anthropic Messages, OpenAI
Responses and OpenAI's media routes (uvloop + httptools, keep-alive).

    python bench/load.py --url http://127.0.0.1:8000/v1/chat/completions --model M \
        --mix json=1 --concurrency 64 --warmup 3 --duration 10 [--pid GATEWAY_PID]

A URL ending in `/v1/messages` gets Messages bodies (the same prompt, `system` apart, with
`max_tokens`) and Anthropic's stream events (`message_stop` ends a stream, each
`text_delta` is a content chunk); one ending in `/v1/responses` gets Responses bodies (the
prompt as `input`, `"store": false`) and reads Responses events (`response.completed` ends a
stream, each `response.output_text.delta` is a content chunk); one ending in `/v1/completions`
gets a legacy text completion body (the prompt as `prompt`) and reads its chunks (`[DONE]`
ends a stream, each `choices[].text` is a content chunk); `/v1/images/generations` and
`/v1/audio/speech` get OpenAI's bodies (one `b64_json` image; `mp3` speech of the prompt),
and `/v1/audio/transcriptions` a multipart/form-data upload (`model`, `response_format`, a
fixed ~100 KB `speech.mp3`); their answers are read whole, never streamed; any other URL gets chat completion bodies.

Each of `--concurrency` virtual users owns one connection and sends its next request as soon
as the previous answer is complete. `--mix` picks each request's kind by weight:

- `json`: a non-streaming completion; latency is send -> last byte.
- `stream`: `"stream": true` with usage; records time to first event, stream duration, and
  for every content chunk its relay delay (arrival time minus the stand-in's write time,
  carried in the chunk: both processes read the same CLOCK_MONOTONIC).
- `fail`: the `--fail-model`, which the stand-in answers with 500.
- `disconnect`: a stream the client closes after a few events.

Only answers completed inside the measured phase count (after `--warmup` seconds or
`--warmup-requests` answers; for `--duration` seconds or `--requests` answers). The gateway's
CPU and RSS (`--pid`, with its descendants) and this process's own CPU are read at the
phase's edges. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import re
import resource
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httptools
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.procstat import Watch
from bench.standin import AUDIO  # the stand-in's speech, uploaded for transcription

PROMPT = (
    "Summarise in three sentences why a gateway in front of language model providers should "
    "add as little latency as possible, and what a team should measure before choosing one: "
    "per-request overhead, streaming behaviour under many concurrent clients, memory over "
    "time, and the cost of keeping a history of every request. Answer plainly."
)
KINDS = ("json", "stream", "fail", "disconnect")


def body_for(model: str, stream: bool, extra: dict | None = None) -> bytes:
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": PROMPT},
        ],
        "max_tokens": 256,
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(extra or {})
    return orjson.dumps(body)


def messages_body_for(model: str, stream: bool, extra: dict | None = None) -> bytes:
    """The same request in Anthropic's Messages format."""
    body = {
        "model": model,
        "system": "You are a concise assistant.",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 256,
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
    body.update(extra or {})
    return orjson.dumps(body)


def responses_body_for(model: str, stream: bool, extra: dict | None = None) -> bytes:
    """The same request as OpenAI's Responses API takes it, stored nowhere."""
    body = {"model": model, "instructions": "You are a concise assistant.", "input": PROMPT,
            "max_output_tokens": 256, "temperature": 0.7, "stream": stream, "store": False}
    body.update(extra or {})
    return orjson.dumps(body)


def completions_body_for(model: str, stream: bool, extra: dict | None = None) -> bytes:
    """The same request as a legacy text completion: one prompt string."""
    body = {"model": model, "prompt": "You are a concise assistant.\n\n" + PROMPT,
            "max_tokens": 256, "temperature": 0.7}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(extra or {})
    return orjson.dumps(body)


def images_body_for(model: str, stream: bool, extra: dict | None = None) -> bytes:
    """One image of the prompt, as base64 (no stream: `stream` is ignored)."""
    body = {"model": model, "prompt": PROMPT, "n": 1, "size": "1024x1024",
            "response_format": "b64_json", **(extra or {})}
    return orjson.dumps(body)


def speech_body_for(model: str, stream: bool, extra: dict | None = None) -> bytes:
    """The prompt read aloud as mp3 (no SSE: `stream` is ignored)."""
    body = {"model": model, "input": PROMPT, "voice": "alloy", "response_format": "mp3",
            **(extra or {})}
    return orjson.dumps(body)


BOUNDARY = "lunosbench7MA4YWxkTrZu0gW"


def transcriptions_body_for(model: str, stream: bool, extra: dict | None = None) -> bytes:
    """A transcription upload: the text fields (`extra`'s too), then the audio file."""
    fields = {"model": model, "response_format": "json", **(extra or {})}
    parts = [f'--{BOUNDARY}\r\ncontent-disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{BOUNDARY}\r\ncontent-disposition: form-data; name="file"; '
                 f'filename="speech.mp3"\r\ncontent-type: audio/mpeg\r\n\r\n'.encode())
    return b"".join(parts) + AUDIO + f"\r\n--{BOUNDARY}--\r\n".encode()


@dataclass(frozen=True)
class Wire:
    """One API's request body and stream events."""

    body: Callable[[str, bool, dict | None], bytes]
    content: re.Pattern  # a content chunk; group 1 is the stand-in's write time
    end: bytes  # how a stream's last event starts
    error: re.Pattern  # an event reporting a failure
    content_type: str = "application/json"  # of the request body


CHAT = Wire(body_for, re.compile(rb'"content": ?" t(\d+)"'), b"data: [DONE]",
            re.compile(rb'"error"'))
NEVER = re.compile(rb"(?!)")  # the routes without SSE: their answers are read whole
WIRES = {
    "/v1/messages": Wire(messages_body_for, re.compile(rb'"text": ?" t(\d+)"'),
                         b"event: message_stop", re.compile(rb'"error"')),
    "/v1/responses": Wire(responses_body_for,
                          re.compile(rb'^event: response\.output_text\.delta\n.*"delta": ?" t(\d+)"'),
                          b"event: response.completed",
                          re.compile(rb"^event: (?:error|response\.failed)\n")),
    "/v1/completions": Wire(completions_body_for, re.compile(rb'"text": ?" t(\d+)"'),
                            b"data: [DONE]", re.compile(rb'"error"')),
    "/v1/images/generations": Wire(images_body_for, NEVER, b"data: [DONE]", NEVER),
    "/v1/audio/speech": Wire(speech_body_for, NEVER, b"data: [DONE]", NEVER),
    "/v1/audio/transcriptions": Wire(transcriptions_body_for, NEVER, b"data: [DONE]", NEVER,
                                     f"multipart/form-data; boundary={BOUNDARY}"),
}


def wire_for(url: str) -> Wire:
    path = urlsplit(url).path
    return next((w for suffix, w in WIRES.items() if path.endswith(suffix)), CHAT)


def request_bytes(url: str, headers: list[tuple[str, str]], body: bytes,
                  content_type: str = "application/json") -> bytes:
    u = urlsplit(url)
    lines = [f"POST {u.path or '/'} HTTP/1.1", f"host: {u.netloc}",
             f"content-type: {content_type}", f"content-length: {len(body)}",
             *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    v = sorted(values)

    def at(q: float) -> float:  # nearest rank
        return v[min(len(v) - 1, max(0, math.ceil(q * len(v) - 1e-9) - 1))]

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": v[-1],
            "mean": sum(v) / len(v), "n": len(v)}


@dataclass
class Stats:
    """Everything measured; `measuring` is true only inside the measured phase."""

    measuring: bool = False
    done_phase: bool = False
    counts: Counter = field(default_factory=Counter)  # measured answers per kind
    latency: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    ttfb: list[float] = field(default_factory=list)
    duration: list[float] = field(default_factory=list)
    relay: list[float] = field(default_factory=list)
    content_events: Counter = field(default_factory=Counter)  # per stream -> streams
    events: int = 0  # SSE data events received while measuring
    totals: Counter = field(default_factory=Counter)  # every phase
    statuses: Counter = field(default_factory=Counter)


class SSECounter:
    """Splits a streamed body into events; counts them and times content chunks."""

    __slots__ = ("content", "cut_after", "done", "error", "events", "first", "last",
                 "stats", "t0", "tail", "wire")

    def __init__(self, stats: Stats, t0: int, cut_after: int | None, wire: Wire = CHAT) -> None:
        self.stats = stats
        self.wire = wire
        self.t0 = t0
        self.tail = b""
        self.events = self.content = 0
        self.first = self.last = 0
        self.done = self.error = False
        self.cut_after = cut_after

    def feed(self, data: bytes, now: int) -> bool:
        """Returns True when the client should hang up now (a `disconnect` request)."""
        buf = self.tail + data if self.tail else data
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        parts = buf.split(b"\n\n")
        self.tail = parts.pop()
        stats = self.stats
        for ev in parts:
            if b"[DONE]" in ev:
                self.done = True
                continue
            if b"data:" not in ev:
                continue  # a comment or keep-alive
            if ev.startswith(self.wire.end):  # Messages, Responses: the last event
                self.done = True
            self.events += 1
            if self.first == 0:
                self.first = now
                if stats.measuring:
                    stats.ttfb.append((now - self.t0) / 1e6)
            self.last = now
            if stats.measuring:
                stats.events += 1
            m = self.wire.content.search(ev)
            if m is not None:
                self.content += 1
                if stats.measuring:
                    stats.relay.append((now - int(m.group(1))) / 1e6)
            elif self.wire.error.search(ev):
                self.error = True
        return self.cut_after is not None and self.events >= self.cut_after


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.sse: SSECounter | None = None
        self.status = 0
        self.keep_alive = True
        self.open = False
        self.cut = False
        self.error_body = b""

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.open = True
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc) -> None:
        self.open = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def send(self, data: bytes, sse: SSECounter | None) -> asyncio.Future:
        self.waiter = asyncio.get_running_loop().create_future()
        self.sse = sse
        self.status = 0
        self.cut = False
        self.error_body = b""
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self._now = time.monotonic_ns()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.transport.close()
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(ConnectionError(f"bad HTTP: {exc}"))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.status != 200:
            if len(self.error_body) < 300:
                self.error_body += body[:300]
        elif self.sse is not None and not self.cut and self.sse.feed(body, self._now):
            self.cut = True
            self.open = False
            self.transport.close()
            self.waiter.set_result(None)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


@dataclass
class Plan:
    url: str
    requests: dict[str, bytes]
    wire: Wire
    weights: list[tuple[str, float]]
    concurrency: int
    warmup: float = 3.0
    duration: float = 10.0
    warmup_requests: int | None = None
    requests_count: int | None = None
    drain: float = 30.0
    expect_content: int | None = None
    cut_after: int = 5
    stagger: float = 0.0


class Load:
    def __init__(self, plan: Plan, watch: Watch, standin: Watch) -> None:
        self.plan = plan
        self.stats = Stats()
        self.watch = watch
        self.standin = standin
        self.stop = False
        self.completed = 0
        self.phase_done = asyncio.Event()
        self.marks: dict[str, tuple] = {}
        u = urlsplit(plan.url)
        self.host, self.port = u.hostname, u.port or 80
        kinds = [k for k, _ in plan.weights]
        cum, acc = [], 0.0
        for _, w in plan.weights:
            acc += w
            cum.append(acc)
        self.kinds, self.cum = kinds, cum
        self.rng = random.Random(1)

    def pick(self) -> str:
        if len(self.kinds) == 1:
            return self.kinds[0]
        r = self.rng.random() * self.cum[-1]
        for kind, c in zip(self.kinds, self.cum, strict=True):
            if r < c:
                return kind
        return self.kinds[-1]

    def mark(self, name: str) -> None:
        cpu, rss = self.watch.sample()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.marks[name] = (time.monotonic(), cpu, rss, ru.ru_utime + ru.ru_stime,
                            self.standin.sample()[0])

    def begin_measure(self) -> None:
        if not self.stats.measuring and not self.stats.done_phase:
            self.mark("start")
            self.stats.measuring = True

    def end_measure(self) -> None:
        if self.stats.measuring:
            self.stats.measuring = False
            self.stats.done_phase = True
            self.mark("end")
            self.stop = True
            self.phase_done.set()

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(Connection, self.host, self.port)
        return conn

    def account(self, kind: str, conn: Connection, sse: SSECounter | None, t0: int) -> None:
        """Book one finished request (any phase into totals; the measured phase into stats)."""
        st, plan = self.stats, self.plan
        now = time.monotonic_ns()
        st.statuses[conn.status] += 1
        ok = conn.status == 200
        if kind == "disconnect":
            st.totals["disconnected" if conn.cut else "disconnect_not_cut"] += 1
        elif kind == "fail":
            st.totals["failed_as_expected" if conn.status >= 500 else "fail_unexpected"] += 1
        elif not ok:
            st.totals["http_error"] += 1
        elif sse is not None:
            complete = sse.done and not sse.error and (
                plan.expect_content is None or sse.content == plan.expect_content)
            st.totals["ok" if complete else "incomplete"] += 1
        else:
            st.totals["ok"] += 1
        if not st.measuring:
            return
        st.counts[kind] += 1
        st.latency[kind].append((now - t0) / 1e6)
        if kind == "stream" and ok:
            st.content_events[sse.content] += 1
            if sse.first:
                st.duration.append((sse.last - sse.first) / 1e6)

    async def user(self) -> None:
        plan, st = self.plan, self.stats
        conn: Connection | None = None
        try:
            conn = await self.connect()
            if plan.stagger > 0:  # spread the users so that their streams do not move in step
                await asyncio.sleep(self.rng.uniform(0, plan.stagger))
            while not self.stop:
                if not conn.open or not conn.keep_alive:
                    if conn.open:
                        conn.transport.close()
                    conn = await self.connect()
                kind = self.pick()
                t0 = time.monotonic_ns()
                sse = SSECounter(st, t0, plan.cut_after if kind == "disconnect" else None,
                                 plan.wire) if kind in ("stream", "disconnect") else None
                st.totals["sent"] += 1
                try:
                    await conn.send(plan.requests[kind], sse)
                except ConnectionError:
                    st.totals["connection_error"] += 1
                    continue
                self.account(kind, conn, sse, t0)
                self.completed += 1
                if plan.warmup_requests is not None and self.completed >= plan.warmup_requests:
                    self.begin_measure()
                if plan.requests_count is not None and st.measuring and \
                        sum(st.counts.values()) >= plan.requests_count:
                    self.end_measure()
        except OSError:
            st.totals["connect_error"] += 1
        finally:
            if conn is not None and conn.open:
                conn.transport.close()

    async def run(self, rss_every: float | None = None) -> dict:
        plan = self.plan
        self.mark("idle")
        if plan.warmup_requests == 0:
            self.begin_measure()
        users = [asyncio.ensure_future(self.user()) for _ in range(plan.concurrency)]
        sampler = asyncio.ensure_future(self.sample_rss(rss_every)) if rss_every else None
        self.t_begin = time.monotonic()
        if plan.warmup_requests is None:
            await asyncio.sleep(plan.warmup)
            self.begin_measure()
        if plan.requests_count is None:
            while not self.stats.measuring:
                await asyncio.sleep(0.01)
            await asyncio.sleep(plan.duration)
            self.end_measure()
        await self.phase_done.wait()
        _, pending = await asyncio.wait(users, timeout=plan.drain)
        self.stats.totals["unfinished"] += len(pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if sampler is not None:
            sampler.cancel()
        self.mark("drained")
        return self.report()

    async def sample_rss(self, every: float) -> None:
        self.rss_samples: list[tuple[float, float]] = []
        while True:
            self.rss_samples.append((round(time.monotonic() - self.t_begin, 1),
                                     round(self.watch.sample()[1], 1)))
            await asyncio.sleep(every)

    def report(self) -> dict:
        st, m = self.stats, self.marks
        t0, cpu0, rss0, self0, sin0 = m["start"]
        t1, cpu1, rss1, self1, sin1 = m["end"]
        window = t1 - t0
        answered = sum(st.counts.values())
        cpu = cpu1 - cpu0
        kinds = {}
        for kind in self.kinds:
            entry = {"count": st.counts[kind], "rps": st.counts[kind] / window,
                     "latency_ms": percentiles(st.latency[kind])}
            if kind == "stream":
                entry.update(ttfb_ms=percentiles(st.ttfb), duration_ms=percentiles(st.duration),
                             relay_ms=percentiles(st.relay),
                             content_events={str(k): v for k, v in sorted(st.content_events.items())})
            kinds[kind] = entry
        out = {
            "url": self.plan.url,
            "concurrency": self.plan.concurrency,
            "window_s": window,
            "answered": answered,
            "rps": answered / window,
            "events": st.events,
            "events_per_s": st.events / window,
            "kinds": kinds,
            "totals": dict(st.totals),
            "statuses": {str(k): v for k, v in st.statuses.items()},
            "gateway": {
                "cpu_s": cpu,
                "cpu_pct": 100 * cpu / window,
                "cpu_ms_per_request": 1000 * cpu / answered if answered else None,
                "cpu_us_per_event": 1e6 * cpu / st.events if st.events else None,
                "rss_idle_mb": m["idle"][2],
                "rss_start_mb": rss0,
                "rss_end_mb": rss1,
                "rss_drained_mb": m["drained"][2],
            },
            "load_cpu_pct": 100 * (self1 - self0) / window,
            "standin_cpu_pct": 100 * (sin1 - sin0) / window,
        }
        if hasattr(self, "rss_samples"):
            out["rss_samples"] = self.rss_samples
        return out


def parse_mix(text: str) -> list[tuple[str, float]]:
    out = []
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind not in KINDS:
            raise SystemExit(f"--mix: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        out.append((kind, float(weight or 1)))
    return out


def build_plan(args: argparse.Namespace) -> Plan:
    headers = [tuple(h.split(":", 1)) for h in args.header]
    headers = [(k.strip(), v.strip()) for k, v in headers]
    extra = orjson.loads(args.extra) if args.extra else None
    wire = wire_for(args.url)
    make = wire.body
    requests = {
        "json": make(args.model, False, extra),
        "stream": make(args.model, True, extra),
        "fail": make(args.fail_model or args.model + "-fail", False, extra),
    }
    requests["disconnect"] = requests["stream"]
    return Plan(
        url=args.url,
        requests={k: request_bytes(args.url, headers, b, wire.content_type)
                  for k, b in requests.items()},
        wire=wire,
        weights=parse_mix(args.mix),
        concurrency=args.concurrency,
        warmup=args.warmup,
        duration=args.duration,
        warmup_requests=args.warmup_requests,
        requests_count=args.requests,
        drain=args.drain,
        expect_content=args.expect_content,
        cut_after=args.cut_after,
        stagger=args.stagger,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--model", default="gpt-bench")
    p.add_argument("--fail-model", help="model the stand-in fails (default: MODEL-fail)")
    p.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    p.add_argument("--extra", help="JSON object merged into every body")
    p.add_argument("--mix", default="json=1", help="kind=weight,...: json stream fail disconnect")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup-requests", type=int, help="answers before measuring (count mode)")
    p.add_argument("--requests", type=int, help="measured answers (count mode)")
    p.add_argument("--drain", type=float, default=30.0, help="max wait for in-flight requests")
    p.add_argument("--expect-content", type=int, help="content chunks a complete stream has")
    p.add_argument("--cut-after", type=int, default=5, help="events before a disconnect")
    p.add_argument("--stagger", type=float, default=0.0,
                   help="each user starts after a random delay up to this many seconds")
    p.add_argument("--pid", type=int, help="gateway process to read CPU and RSS from")
    p.add_argument("--standin-pid", type=int, help="stand-in process (its CPU is reported)")
    p.add_argument("--rss-every", type=float, help="sample the gateway's RSS every N seconds")
    args = p.parse_args(argv)
    if args.requests is not None and args.warmup_requests is None:
        args.warmup_requests = 0
    plan = build_plan(args)

    async def go() -> dict:
        load = Load(plan, Watch(args.pid), Watch(args.standin_pid))
        return await load.run(args.rss_every)

    try:
        import uvloop

        result = uvloop.run(go())
    except ImportError:  # pragma: no cover
        result = asyncio.run(go())
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

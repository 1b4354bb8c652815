"""POST /v1/chat/completions: JSON or SSE (SPEC §4, §5)."""

from __future__ import annotations

import time

from .. import sse
from ..admission import admit_chat, candidate_infos  # noqa: F401  (candidate_infos: the other doors)
from ..asgi import send_error, send_json
from ..errors import GatewayError
from ..records import CallRecord
from ..usage import completion_output
from ..validation import header_options, parse_json

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
# Seconds a client is told to wait after an upstream 429 that named no time of its own
# (the gateway has already retried it).
UPSTREAM_RETRY_AFTER = "1"


def lunos_headers(record: CallRecord, overhead_ms: float | None = None) -> list[tuple[str, str]]:
    headers = [("x-request-id", record.id)]
    if record.provider:
        headers.append(("x-lunos-provider", record.provider))
    if record.dropped_params:
        headers.append(("x-lunos-dropped-params", ",".join(record.dropped_params)))
    if record.cache:
        headers.append(("x-lunos-cache", record.cache))
    if record.extra.get("search_status"):
        headers.append(("x-lunos-search", record.extra["search_status"]))
    if overhead_ms is not None:
        headers.append(("x-lunos-overhead-ms", f"{overhead_ms:.3f}"))
    return headers


def overhead_ms(record: CallRecord) -> float:
    """The gateway's own time so far: everything but waiting for upstream answers (the
    attempts' latency counts every wait for upstream bytes, a stream's first event included)
    and for web searches."""
    total = (time.perf_counter() - record.started) * 1000
    upstream = sum(a.latency_ms for a in record.attempts)
    searching = sum(s.get("ms") or 0 for s in record.extra.get("searches", ()))
    return max(total - upstream - searching, 0.0)


async def start_sse(send, record: CallRecord) -> None:
    """Open an SSE answer: its headers, with the row's id and the gateway's time so far."""
    headers = SSE_HEADERS + [(k.encode(), v.encode()) for k, v in lunos_headers(record, overhead_ms(record))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def chat_completions(gw, request, raw: bytes, send, principal, record: CallRecord) -> None:
    try:
        body = parse_json(raw)
        if isinstance(body, dict):
            header_options(body, request.headers)
        body, options, runner, ticket = await admit_chat(gw, raw, body, principal, record)
        try:
            if record.stream:
                await _stream(runner, body, options, record, send)
            else:
                completion = await runner.complete(body, options, record)
                headers = lunos_headers(record, overhead_ms(record))
                if record.trace:
                    record.response = completion_output(completion)
                record.responded = True
                await send_json(send, 200, completion, headers)
        finally:
            await gw.limits.settle(ticket, record.tokens, record.cost)
    except GatewayError as exc:
        record.status, record.error = exc.status, exc.message
        headers = lunos_headers(record)
        if record.attempts:
            headers.append(("x-should-retry", "false"))
        if exc.status == 429 and "retry-after" not in exc.headers:
            headers.append(("retry-after", UPSTREAM_RETRY_AFTER))  # the upstream gave none
        record.responded = True
        await send_error(send, exc, headers)
    finally:
        if record.latency_ms is None:
            record.finish()


def recorded(endpoint: str, work):
    """A route handler for `work` (a door besides chat) that records `endpoint` and answers
    a failure before the answer began as a JSON error (after it began, `work` ends the
    answer itself); the row's latency is set if `work` did not set it."""

    async def handle(gw, request, raw: bytes, send, principal, record: CallRecord) -> None:
        record.endpoint = endpoint
        try:
            await work(gw, request, raw, send, principal, record)
        except GatewayError as exc:
            record.status, record.error = exc.status, exc.message
            headers = lunos_headers(record)
            if record.attempts:
                headers.append(("x-should-retry", "false"))
            record.responded = True
            await send_error(send, exc, headers)
        finally:
            if record.latency_ms is None:
                record.finish()

    return handle


async def _stream(runner, body: dict, options, record: CallRecord, send) -> None:
    batches = runner.stream(body, options, record)
    try:
        first = await batches.__anext__()  # errors until here are a JSON error response
    except StopAsyncIteration:  # pragma: no cover - the engine always yields once
        return
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    await start_sse(send, record)
    try:
        last, error = await sse.relay(first, batches, include_usage, send)
    finally:
        await batches.aclose()
    if error is not None:  # the row says how the stream ended
        record.status, record.error = error.status, error.message
    record.responded = True
    await send({"type": "http.response.body", "body": last})


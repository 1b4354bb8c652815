"""POST /v1/chat/completions: JSON or SSE (SPEC §4, §5)."""

from __future__ import annotations

import time

from .. import sse
from ..asgi import send_error, send_json
from ..errors import GatewayError
from ..records import CallRecord
from ..tools import runner_for
from ..usage import completion_output
from ..validation import header_options, parse_json, validate_chat

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


async def admit_chat(gw, raw: bytes, body, principal, record: CallRecord) -> tuple:
    """Validate a parsed chat body and admit it under the key's limits: (body without
    Lunos fields, options, runner, limits ticket to settle). The model the caller named
    goes on the row even when validation refuses the request (SPEC §12)."""
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        record.model = record.requested_model = body["model"][:300]
    body, options = validate_chat(body)
    record.model = body["model"]
    record.stream = bool(body.get("stream"))
    if options.observability:
        record.trace = True
        record.request = raw  # read back as messages and params (traces.py)
    principal.check_model(body["model"], options.models, gw.router.full_id)
    runner = runner_for(gw, body, options)
    ticket = await gw.limits.admit(principal, body, candidate_infos(gw, body, options), runner)
    return body, options, runner, ticket


def candidate_infos(gw, body: dict, options) -> list:
    """Catalog entries of every model that may answer (for the worst-case reservation)."""
    infos = []
    for name in (body["model"], *options.models):
        try:
            infos.extend(route.model_info for route in gw.router.resolve(name))
        except GatewayError:
            continue
    return infos


async def _stream(runner, body: dict, options, record: CallRecord, send) -> None:
    batches = runner.stream(body, options, record)
    try:
        first = await batches.__anext__()  # errors until here are a JSON error response
    except StopAsyncIteration:  # pragma: no cover - the engine always yields once
        return
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    headers = SSE_HEADERS + [(k.encode(), v.encode()) for k, v in
                             lunos_headers(record, overhead_ms(record))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    try:
        last, error = await sse.relay(first, batches, include_usage, send)
    finally:
        await batches.aclose()
    if error is not None:  # the row says how the stream ended
        record.status, record.error = error.status, error.message
    record.responded = True
    await send({"type": "http.response.body", "body": last})


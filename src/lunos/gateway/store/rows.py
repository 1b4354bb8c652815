"""A history row as the writer queues it: named fields, holding values both databases store.

Values are cleaned when the row is built, so one odd request cannot make a database refuse
the batch it is in: PostgreSQL refuses a NUL in text, and a 32-bit column (PostgreSQL) or a
64-bit one (SQLite) a count an upstream made up. A row that is refused all the same is set
aside by the writer (writer.py), never retried forever.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from ..records import CallRecord, utc_day

COUNT_MAX = 2**31 - 1  # the token columns are INTEGER: 32 bits on PostgreSQL


class HistoryRow(NamedTuple):
    """The `lunos_requests` columns but the trace's, then the trace's payloads as one value:
    (request bytes, response bytes or None), or None when the row is not traced. The SQLite
    history thread turns `payload` into `trace_ref` (trace_files.py); PostgreSQL stores the
    payloads as the `request` and `response` text columns."""

    id: str
    key_id: str | None
    app_id: str
    model: str
    endpoint: str
    provider: str | None
    status: int
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost: float | None
    latency_ms: float | None
    ttft_ms: float | None
    tokens_per_second: float | None
    stream: bool
    created_at: float
    day: str
    attempts: str | None  # JSON
    dropped_params: str | None  # JSON
    trace: bool
    extra: str | None  # JSON
    cache: str | None  # "hit", "miss", or None: the cache was not asked
    requested_model: str | None
    session_id: str | None
    replay_of: str | None
    search: str | None  # a traced row's words, lowercased, for `q` (search_words)
    payload: tuple[bytes, bytes | None] | None


COLUMNS = HistoryRow._fields[:-1]  # the columns every database gets as they are


def _text(value: str | None) -> str | None:
    """Text without NUL, which PostgreSQL cannot store (JSON columns escape it already)."""
    return value.replace("\0", "") if value else value


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _payload(value: bytes | dict | None) -> bytes | None:
    """A trace payload as JSON bytes: the request body as it came, or a dict serialized.
    Bytes, not text: on SQLite they go to a trace file without a decode."""
    if value is None or isinstance(value, bytes):
        return value
    return orjson.dumps(value)


SEARCH_CHARS = 4000  # of a traced row's words kept for `q`: the prompt's first, then the output's
_NOT_WORDS = frozenset(("role", "type", "model", "id", "tool_call_id", "url", "image_url", "data",
                        "detail", "finish_reason", "call_id", "signature"))


def _strings(value: Any, out: list[str], budget: list[int]) -> None:
    """The text values in a JSON value (not its keys, nor fields like `role`), in order,
    until `budget` characters are taken."""
    if budget[0] <= 0:
        return
    if isinstance(value, str):
        out.append(value[:budget[0]])
        budget[0] -= len(out[-1]) + 1
    elif isinstance(value, list):
        for item in value:
            _strings(item, out, budget)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in _NOT_WORDS:
                _strings(item, out, budget)


def search_words(request: bytes | None, response: dict | None) -> str | None:
    """What `q` searches in a traced row: the text of its request's messages and of its
    output, lowercased, at most SEARCH_CHARS per side. Kept in the row itself, so one query
    searches on both databases wherever the payloads lie (SQLite keeps those in files)."""
    out: list[str] = []
    try:
        body = orjson.loads(request) if request else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):  # the prompt, not the parameters
        _strings([body.get(k) for k in ("system", "instructions", "messages", "input", "prompt")],
                 out, [SEARCH_CHARS])
    _strings(response, out, [SEARCH_CHARS])
    return _text(" ".join(out).lower()) or None


def row_values(record: CallRecord) -> HistoryRow:
    """The record's row, cleaned. Positional, in field order: a call with 24 keywords took
    three times as long, on every request.
    A failed row names the provider of its last attempt."""
    t = record.tokens
    counts = t.prompt, t.completion, t.cached, t.cache_write, t.reasoning
    if min(counts) < 0 or max(counts) > COUNT_MAX:  # an upstream's invalid usage
        counts = tuple(min(max(count, 0), COUNT_MAX) for count in counts)
    trace = bool(record.trace)
    return HistoryRow(
        record.id,
        record.key_id,
        _text(record.app_id[:200]),
        _text((record.model or "")[:300]),
        record.endpoint,
        record.provider or (record.attempts[-1].provider if record.attempts else None),
        record.status,
        _text(record.error),
        *counts,
        record.cost,
        record.latency_ms,
        record.ttft_ms,
        record.tokens_per_second,
        bool(record.stream),
        record.created_at,
        utc_day(record.created_at),
        _json(record.attempts) if record.attempts else None,  # as orjson writes a dataclass
        _json(record.dropped_params) if record.dropped_params else None,
        trace,
        _json(record.extra) if record.extra else None,
        record.cache,
        _text(record.requested_model and record.requested_model[:300]),
        _text(record.session_id and record.session_id[:200]),
        record.replay_of,
        search_words(record.request, record.response) if trace else None,
        (_payload(record.request) or b"null", _payload(record.response)) if trace else None,
    )


def payload_texts(payload: tuple[bytes, bytes | None] | None) -> tuple[str | None, str | None]:
    if payload is None:
        return None, None
    request, response = payload
    return request.decode(), response and response.decode()


def as_text(row: HistoryRow) -> tuple:
    """The row with its payloads as the `request` and `response` text columns."""
    return (*row[:-1], *payload_texts(row.payload))


def as_json(row: HistoryRow) -> dict:
    """The row as a JSON-ready dict (a row set aside for inspection)."""
    out = row._asdict()
    request, response = out.pop("payload") or (None, None)
    out["request"] = request and request.decode("utf-8", "replace")
    out["response"] = response and response.decode("utf-8", "replace")
    return out

"""`LUNOS_LOG_FORMAT=json`: one JSON line per finished model request, on standard output.

The line is built from the request's `CallRecord` when the request ends (the same moment
its history row is queued) and written after the response, batched: lines wait in a list
and one `os.write` per event-loop turn sends them all (in writes of at most PIPE_BUF bytes,
cut between lines, so the lines of `--workers N` processes sharing one pipe never
interleave), so a request pays one orjson dump and a list append. The line has the key's
id, never the key, and the request's W3C trace id (`trace_id`): the caller's `traceparent`
one, or, with OpenTelemetry export on, the one of the span the gateway exports.
"""

from __future__ import annotations

import asyncio
import os
import re
import select

import orjson

from .records import CallRecord

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C `traceparent` header, or None when it is not a valid one."""
    found = _TRACEPARENT.match(traceparent.strip()) if traceparent else None
    if found is None or found[1] == "ff" or found[2] == "0" * 32:
        return None
    return found[2]


class RequestLog:
    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        self.pending: list[bytes] = []
        self.lost = 0  # lines the output refused (a closed or full pipe)

    def put(self, record: CallRecord) -> None:
        t = record.tokens
        line = orjson.dumps({
            "ts": record.created_at,
            "request_id": record.id,
            "key_id": record.key_id,
            "app": record.app_id,
            "endpoint": record.endpoint,
            "model": record.model,
            "provider": record.provider,
            "status": record.status,
            "latency_ms": record.latency_ms,
            "ttft_ms": record.ttft_ms,
            "stream": record.stream,
            "tokens": {"prompt": t.prompt, "completion": t.completion, "cached": t.cached},
            "cost": record.cost,
            "attempts": len(record.attempts),
            "error": record.error,
            "trace_id": record.trace_id,
        }, option=orjson.OPT_APPEND_NEWLINE)
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append(line)

    def flush(self) -> None:
        lines, self.pending = self.pending, []
        chunk = bytearray()
        for line in lines:
            if chunk and len(chunk) + len(line) > select.PIPE_BUF:
                self._write(chunk)
                chunk = bytearray()
            chunk += line
        self._write(chunk)

    def _write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError:
            self.lost += 1

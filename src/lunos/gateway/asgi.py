"""Plain ASGI request/response helpers (no framework: the hot path stays short)."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from collections.abc import Iterable
from urllib.parse import parse_qs

import orjson

from .errors import GatewayError, anthropic_body, anthropic_status

JSON = b"application/json"


class _Ids:
    """Unique ids without a system call each: a random per-process part and a counter."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.process = secrets.token_hex(6)
        self.counter = itertools.count(secrets.randbelow(1 << 20))


_IDS = _Ids()


def new_request_id(prefix: str = "req") -> str:
    """`req-…`; a prefix that ends in `_` keeps it as the separator (`msg_…`, Anthropic's ids)."""
    sep = "" if prefix.endswith("_") else "-"
    return f"{prefix}{sep}{_IDS.process}{next(_IDS.counter):012x}"


class Request:
    __slots__ = ("_query", "headers", "method", "path", "read_timeout", "receive", "scope")

    def __init__(self, scope: dict, receive, read_timeout: float | None = None) -> None:
        self.scope = scope
        self.receive = receive
        self.read_timeout = read_timeout  # seconds for the whole body (slow clients: 408)
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers: dict[bytes, bytes] = dict(scope["headers"])  # ASGI names are lower-case
        self._query: dict[str, list[str]] | None = None

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        return self._query

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    async def body(self, limit: int) -> bytes:
        """Read the whole body, refusing (413) as soon as it is known to exceed `limit`, and
        (408, closing the connection) when it has not all arrived within `read_timeout`:
        a client trickling its body must not hold a slot for as long as it likes."""
        if self.read_timeout is None:
            return await self._body(limit)
        task = asyncio.current_task()
        _DEADLINES.watch(task, self.read_timeout)
        try:
            return await self._body(limit)
        except asyncio.CancelledError:
            if not _DEADLINES.expired(task):
                raise
            task.uncancel()
            raise GatewayError(408, f"The request body was not received within {self.read_timeout:g} s",
                               code="request_timeout", headers={"connection": "close"}) from None
        finally:
            _DEADLINES.forget(task)

    async def _body(self, limit: int) -> bytes:
        length = self.headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise GatewayError(400, "Invalid Content-Length header") from None
            if declared > limit:
                raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body"):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Deadlines:
    """Body-read deadlines, checked by one sweeper task a few times a second: a timer per
    request would cost more than reading most bodies does. A task past its deadline is
    cancelled; `Request.body` turns that into a 408."""

    TICK = 0.25

    def __init__(self) -> None:
        self.reading: dict[asyncio.Task, float] = {}
        self.late: set[asyncio.Task] = set()
        self.sweeper: asyncio.Task | None = None

    def watch(self, task: asyncio.Task, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self.reading[task] = loop.time() + seconds
        if self.sweeper is None or self.sweeper.done() or self.sweeper.get_loop() is not loop:
            self.sweeper = loop.create_task(self._sweep())

    def expired(self, task: asyncio.Task) -> bool:
        return task in self.late

    def forget(self, task: asyncio.Task) -> None:
        self.reading.pop(task, None)
        self.late.discard(task)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while self.reading:
            await asyncio.sleep(self.TICK)
            now = loop.time()
            for task, deadline in list(self.reading.items()):
                if deadline <= now and task not in self.late:
                    self.late.add(task)
                    task.cancel()


_DEADLINES = _Deadlines()


class ClientGone(Exception):
    """The client disconnected before we answered."""


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"The request body is larger than the limit of {limit} bytes",
                        code="request_too_large")


def _headers(content_type: bytes, extra: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type)]
    headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra)
    return headers


async def send_bytes(send, status: int, body: bytes, content_type: bytes = JSON,
                     headers: Iterable[tuple[str, str]] = ()) -> None:
    """A whole answer, its length declared (no chunked framing for the server to add)."""
    out = _headers(content_type, headers)
    out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def send_json(send, status: int, payload, headers: Iterable[tuple[str, str]] = ()) -> None:
    await send_bytes(send, status, orjson.dumps(payload), JSON, headers)


async def send_error(send, error: GatewayError, headers: Iterable[tuple[str, str]] = (),
                     anthropic: bool = False) -> None:
    """The error as JSON: OpenAI's shape, or Anthropic's on the Messages door."""
    if anthropic:
        await send_bytes(send, anthropic_status(error), orjson.dumps(anthropic_body(error)), JSON,
                         [*error.headers.items(), *headers])
        return
    await send_bytes(send, error.status, error.body(), JSON, [*error.headers.items(), *headers])

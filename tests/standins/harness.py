"""Run an ASGI app on a free loopback port in a background thread, for tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field

import orjson
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    def __init__(self, app, port: int | None = None, **config) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                             lifespan="off", **config)
        self._server = uvicorn.Server(cfg)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: object = None
    receive: object = None  # the ASGI receive, to notice a client that went away


async def disconnected(rec: Recorded) -> bool:
    """Whether the client has gone (checked without waiting)."""
    import asyncio

    try:
        message = await asyncio.wait_for(rec.receive(), 0.0001)
    except asyncio.TimeoutError:
        return False
    return message["type"] == "http.disconnect"


async def sleep_unless_gone(rec: Recorded, seconds: float) -> bool:
    """Sleep; return False early if the client disconnects meanwhile."""
    import asyncio

    waiter = asyncio.ensure_future(rec.receive())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=seconds)
        return not (done and waiter.result()["type"] == "http.disconnect")
    finally:
        waiter.cancel()


@dataclass
class Reply:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


async def read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def send_json(send, status: int, payload, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *headers]})
    await send({"type": "http.response.body", "body": body})


async def send_sse(send, events, delay: float = 0.0) -> None:
    """`events`: iterable of bytes, each a whole SSE event already framed."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
    for event in events:
        if delay:
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class StandInApp:
    """Base for provider stand-ins: records every request; scripted replies come first.

    Subclasses implement `handle(rec) -> None` by calling `send_json`/`send_sse` or raising
    `Reject(status, payload)`.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.scripted: list = []  # callables (rec, send) -> awaitable, used first-in first-out

    def reset(self) -> None:
        self.requests.clear()
        self.scripted.clear()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rec = Recorded(scope["method"], scope["path"], scope.get("query_string", b"").decode(),
                       headers, body, receive=receive)
        try:
            rec.json = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            rec.json = None
        self.requests.append(rec)
        if self.scripted:
            await self.scripted.pop(0)(rec, send)
            return
        try:
            await self.handle(rec, send)
        except Reject as r:
            await send_json(send, r.status, r.payload)

    async def handle(self, rec: Recorded, send) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class Reject(Exception):
    def __init__(self, status: int, payload) -> None:
        super().__init__(str(payload))
        self.status = status
        self.payload = payload

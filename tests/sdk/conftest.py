"""Shared fixtures for the SDK tests: a scripted `httpx.MockTransport`, both clients, and a
recorder in place of the retry sleep."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from lunos import AsyncLunos, AsyncStream, Lunos, _base_client

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered in the given pieces; records whether it was closed."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = list(pieces)
        self.closed = False
        self.served = 0

    def __iter__(self):
        for piece in self.pieces:
            self.served += 1
            yield piece

    async def __aiter__(self):
        for piece in self.pieces:
            self.served += 1
            yield piece

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def sse_response(pieces: Iterable[bytes], status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        headers={"content-type": "text/event-stream", **headers},
        stream=Chunks(pieces),
    )


def sse_event(payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


class Server:
    """Answers requests from a script, first in first out; the last reply repeats."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, httpx.Response):
            return reply(request)
        return reply

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> dict:
        return json.loads(self.requests[index].content)


def make_client(kind: str, server: Server, **options: Any) -> Lunos | AsyncLunos:
    options.setdefault("api_key", "sk-test")
    transport = httpx.MockTransport(server)
    if kind == "sync":
        return Lunos(http_client=httpx.Client(transport=transport), **options)
    return AsyncLunos(http_client=httpx.AsyncClient(transport=transport), **options)


async def resolve(value: Any) -> Any:
    """The value of a sync call, or the awaited value of an async one."""
    return await value if inspect.isawaitable(value) else value


async def collect(stream: Any) -> list:
    if isinstance(stream, AsyncStream):
        return [item async for item in stream]
    return list(stream)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LUNOS_API_KEY", "LUNOS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits are recorded instead of slept; jitter is fixed at its midpoint."""
    waits: list[float] = []

    async def fake_async_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(_base_client, "_sleep", waits.append)
    monkeypatch.setattr(_base_client, "_async_sleep", fake_async_sleep)
    monkeypatch.setattr(_base_client, "_jitter", lambda: 0.5)
    return waits

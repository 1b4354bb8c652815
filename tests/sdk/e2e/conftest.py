"""End-to-end fixtures: Lunos and AsyncLunos clients against the running gateway.

Every test that takes `client` (or `clients`) runs twice, once per client kind: the `kind`
fixture of tests/sdk/conftest.py parametrizes it. Each client sends through an httpx client
whose requests are recorded in `clients.sent`, so a test can count what the SDK sent (retries
included) apart from what the gateway sent upstream.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest

import lunos
from lunos import AsyncLunos, Lunos
from tests.gateway_process import MASTER_KEY
from tests.sdk.conftest import resolve
from tests.standins.harness import send_json


class Clients:
    """Builds clients of one kind for the gateway at `url`."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        self.sent: list[httpx.Request] = []
        self._http: list[httpx.Client | httpx.AsyncClient] = []

    def __call__(self, api_key: str = MASTER_KEY, **options: Any) -> Lunos | AsyncLunos:
        options.setdefault("base_url", self.url)
        if self.kind == "sync":
            http = httpx.Client(timeout=30, event_hooks={"request": [self.sent.append]})
            self._http.append(http)
            return Lunos(api_key, http_client=http, **options)

        async def record(request: httpx.Request) -> None:
            self.sent.append(request)

        ahttp = httpx.AsyncClient(timeout=30, event_hooks={"request": [record]})
        self._http.append(ahttp)
        return AsyncLunos(api_key, http_client=ahttp, **options)

    async def close(self) -> None:
        for http in self._http:
            if isinstance(http, httpx.AsyncClient):
                await http.aclose()
            else:
                http.close()


@pytest.fixture
async def clients(kind, gateway):
    built = Clients(kind, gateway.url)
    yield built
    await built.close()


@pytest.fixture
def client(clients):
    """A client holding the master key."""
    return clients()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_key(gateway, name: str) -> dict:
    """A fresh client key (POST /admin/keys with the master key)."""
    r = httpx.post(f"{gateway.url}/admin/keys", json={"name": name}, timeout=10,
                   headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert r.status_code == 201, r.text
    return r.json()


def revoke_key(gateway, key_id: str) -> None:
    r = httpx.delete(f"{gateway.url}/admin/keys/{key_id}", timeout=10,
                     headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert r.status_code == 200, r.text


async def wait_for_log(client, log_id: str, until=lambda row: True, within: float = 10.0):
    """The history row `log_id` once it exists and satisfies `until` (rows are written in
    batches, readable within a second of the response)."""
    deadline = time.monotonic() + within
    while True:
        try:
            row = await resolve(client.logs.retrieve(log_id))
            if until(row):
                return row
        except lunos.NotFoundError:
            row = None
        if time.monotonic() > deadline:
            raise AssertionError(f"log {log_id} not as expected within {within} s: {row!r}")
        await asyncio.sleep(0.05)


async def drain(stream, into: list | None = None) -> list:
    """Every item of a Stream or AsyncStream (appended to `into` as they arrive)."""
    items = [] if into is None else into
    if hasattr(stream, "__aiter__"):
        async for item in stream:
            items.append(item)
    else:
        for item in stream:
            items.append(item)
    return items


# Scripted stand-in replies (`upstreams.openai.scripted.append(...)`), used before the model.
def status_reply(status: int, message: str):
    async def reply(rec, send):
        await send_json(send, status, {"error": {"message": message, "type": "server_error"}})
    return reply


def sse_reply(*events: bytes):
    async def reply(rec, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    return reply


def sse_chunk(delta: dict) -> bytes:
    payload = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
               "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


# An OpenAI-style error event: the upstream failing after its stream started.
OVERLOADED = b'data: {"error": {"message": "model overloaded", "type": "server_error"}}\n\n'

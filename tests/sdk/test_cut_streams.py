"""A real server that ends a stream early: the SDK raises instead of ending in silence."""

from __future__ import annotations

import json

import pytest

import lunos
from lunos import AsyncLunos, Lunos
from tests.sdk.conftest import collect, resolve
from tests.standins.harness import ServerThread

CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}


async def cutting_server(scope, receive, send):
    """`/clean/...` ends the body properly but before `[DONE]`; `/abort/...` drops the
    connection in the middle of the chunked body."""
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    await send({"type": "http.response.body", "body": f"data: {json.dumps(CHUNK)}\n\n".encode(),
                "more_body": True})
    if scope["path"].startswith("/abort"):
        raise RuntimeError("connection dropped")
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture(scope="module")
def server():
    thread = ServerThread(cutting_server).start()
    yield thread
    thread.stop()


@pytest.mark.parametrize("how", ["clean", "abort"])
async def test_a_cut_stream_raises_a_connection_error(server, kind, how):
    cls = Lunos if kind == "sync" else AsyncLunos
    client = cls(api_key="sk-test", base_url=f"{server.url}/{how}", max_retries=0)
    stream = await resolve(client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    with pytest.raises(lunos.APIConnectionError) as caught:
        await collect(stream)
    if how == "clean":
        assert isinstance(caught.value, lunos.IncompleteStreamError)
        assert "incomplete" in str(caught.value)
    await resolve(client.close())

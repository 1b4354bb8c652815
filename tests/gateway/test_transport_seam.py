"""The whole gateway in-process against a mock transport: no socket is opened anywhere.

The app is built with `create_app(settings, transport=...)`, the official `openai` SDK talks
to it through httpx's ASGI transport, and the mock answers the upstream calls from memory.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from lunos.gateway.app import create_app
from lunos.gateway.config import ConfigError, load_settings
from lunos.gateway.http_client import FastTransport, UpstreamRequest, UpstreamResponse
from lunos.gateway.transports import HttpxTransport, make_transport

MASTER = "sk-lunos-seam-test-master-key-0123456789"


class MockTransport:
    """Answers chat completions like an OpenAI-compatible provider, and records the requests."""

    def __init__(self) -> None:
        self.requests: list[UpstreamRequest] = []

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        self.requests.append(request)
        body = json.loads(request.body)
        text = "mocked: " + body["messages"][-1]["content"]
        if not body.get("stream"):
            return UpstreamResponse(200, {"content-type": "application/json"}, [json.dumps({
                "id": "m-1", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
            }).encode()])

        def event(delta: dict, finish: str | None = None) -> bytes:
            return b"data: " + json.dumps({
                "id": "m-1", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).encode() + b"\n\n"

        first, *rest = text.split(" ")
        pieces = [first, *(" " + word for word in rest)]
        chunks = [event({"role": "assistant", "content": ""}),
                  *(event({"content": piece}) for piece in pieces),
                  event({}, "stop"), b"data: [DONE]\n\n"]
        return UpstreamResponse(200, {"content-type": "text/event-stream"}, chunks)


@pytest.fixture
async def gateway(tmp_path):
    mock = MockTransport()
    settings = load_settings(env={"LUNOS_HOME": str(tmp_path), "LUNOS_MASTER_KEY": MASTER,
                                  "OPENAI_API_KEY": "sk-upstream-mock",
                                  "OPENAI_BASE_URL": "https://upstream.invalid/v1"})
    app = create_app(settings, transport=mock)
    await app.startup()
    try:
        yield app, mock
    finally:
        await app.shutdown()


async def test_the_engine_runs_against_an_in_process_mock_transport(gateway):
    app, mock = gateway
    client = openai.AsyncOpenAI(base_url="http://lunos.test/v1", api_key=MASTER, max_retries=0,
                                http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app)))
    r = await client.chat.completions.create(model="openai/gpt-4o",
                                             messages=[{"role": "user", "content": "hello there"}])
    assert r.choices[0].message.content == "mocked: hello there"
    assert r.usage.total_tokens == 5 and r.provider == "openai"
    stream = await client.chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "stream it"}], stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "mocked: stream it"
    # What the engine handed to the transport: the adapter's request, with the gateway's timeouts.
    sent = mock.requests[0]
    assert (sent.method, sent.url) == ("POST", "https://upstream.invalid/v1/chat/completions")
    assert ("authorization", "Bearer sk-upstream-mock") in list(sent.headers)
    assert sent.timeouts.first_byte == app.settings.first_byte_timeout
    assert json.loads(mock.requests[1].body)["stream"] is True
    await client.close()


def test_the_transport_setting(tmp_path):
    assert load_settings(env={}).http_transport == "fast"
    assert load_settings(env={"LUNOS_HTTP_TRANSPORT": "HTTPX"}).http_transport == "httpx"
    config = tmp_path / "lunos.yaml"
    config.write_text("http_transport: httpx\n")
    assert load_settings(config, env={}).http_transport == "httpx"
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"LUNOS_HTTP_TRANSPORT": "curl"})
    assert "LUNOS_HTTP_TRANSPORT" in str(caught.value)
    assert isinstance(make_transport("fast"), FastTransport)
    assert isinstance(make_transport("httpx"), HttpxTransport)

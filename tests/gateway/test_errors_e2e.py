"""Errors through the running gateway: always SPEC §6's shape, the right status, no secrets."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.gateway_process import MASTER_KEY
from tests.standins.harness import send_json

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def http(gateway):
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert response.headers["x-request-id"]
    return body["error"]


def replies(*steps):
    """Scripted stand-in replies, consumed one per upstream request."""
    return list(steps)


def status_reply(status: int, payload: dict, headers=()):
    async def reply(rec, send):
        await send_json(send, status, payload, [(k.encode(), v.encode()) for k, v in headers])
    return reply


def sse_reply(*events: bytes, close_early: bool = False):
    async def reply(rec, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        if not close_early:
            await send({"type": "http.response.body", "body": b""})
        else:
            raise RuntimeError("connection cut")  # the server drops the connection mid-body
    return reply


def chunk(delta: dict, finish=None) -> bytes:
    payload = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


# ---------------------------------------------------------------- authentication first
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {MASTER_KEY}"}])
def test_no_valid_key_is_401_whatever_the_body(http, headers):
    error = error_of(http.post("/v1/chat/completions", content=b"{not json", headers=headers), 401)
    assert error["type"] == "authentication_error"
    assert MASTER_KEY not in json.dumps(error)


def test_malformed_json_is_400(http):
    error = error_of(http.post("/v1/chat/completions", content=b'{"model": ', headers=AUTH), 400)
    assert error["code"] == "invalid_json"


def test_body_over_the_limit_is_413_before_it_is_read(http, upstreams):
    big = b'{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "' + b"x" * (11 * 1024 * 1024) + b'"}]}'
    error = error_of(http.post("/v1/chat/completions", content=big, headers=AUTH), 413)
    assert "limit" in error["message"]

    def chunks():  # no Content-Length: refused while streaming in
        for _ in range(12):
            yield b"x" * (1024 * 1024)
    error_of(http.post("/v1/chat/completions", content=chunks(), headers=AUTH), 413)
    assert upstreams.openai.requests == []


def test_unknown_route_and_method(http):
    assert error_of(http.get("/v2/nothing"), 404)["code"] == "route_not_found"
    assert error_of(http.get("/v1/chat/completions", headers=AUTH), 405)["code"] == "method_not_allowed"


@pytest.mark.parametrize(("model", "status", "code"), [
    ("nope/gpt-4o", 404, "provider_not_found"),
    ("my-local-model", 404, "model_not_found"),  # a bare id the catalog does not know
    ("xai/grok-4.7", 400, "provider_not_configured"),
])
def test_routing_errors(http, model, status, code):
    error = error_of(http.post("/v1/chat/completions", json={**HELLO, "model": model}, headers=AUTH), status)
    assert error["code"] == code and error["param"] == "model"


# ---------------------------------------------------------------- upstream failures
def test_upstream_400_passes_its_message_and_is_not_retried(http, upstreams):
    upstreams.openai.scripted += replies(status_reply(400, {"error": {
        "message": "This model's maximum context length is 128000 tokens", "type": "invalid_request_error"}}))
    response = http.post("/v1/chat/completions", json=HELLO, headers=AUTH)
    error = error_of(response, 400)
    assert "maximum context length" in error["message"] and error["message"].startswith("openai:")
    assert len(upstreams.openai.requests) == 1
    assert response.headers["x-should-retry"] == "false"


def test_upstream_500_is_retried_then_502(http, upstreams):
    upstreams.openai.scripted += replies(*[status_reply(500, {"error": {"message": "boom"}})] * 3)
    response = http.post("/v1/chat/completions", json=HELLO, headers=AUTH)
    error = error_of(response, 502)
    assert error["type"] == "upstream_error" and "boom" in error["message"]
    assert len(upstreams.openai.requests) == 3
    assert response.headers["x-should-retry"] == "false"


def test_upstream_500_then_success_is_invisible(http, upstreams):
    upstreams.openai.scripted += replies(status_reply(503, {"error": {"message": "busy"}}))
    response = http.post("/v1/chat/completions", json=HELLO, headers=AUTH)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "You said: hello"
    assert len(upstreams.openai.requests) == 2


def test_upstream_429_keeps_retry_after(http, upstreams):
    upstreams.openai.scripted += replies(*[status_reply(429, {"error": {"message": "slow down"}},
                                                        [("retry-after", "0")])] * 3)
    response = http.post("/v1/chat/completions", json=HELLO, headers=AUTH)
    error = error_of(response, 429)
    assert error["type"] == "rate_limit_error" and response.headers["retry-after"] == "0"


def test_provider_rejecting_our_credentials_is_502_without_the_key(http, upstreams):
    upstreams.openai.scripted += replies(status_reply(401, {"error": {
        "message": "Incorrect API key provided: sk-openai-test"}}))
    error = error_of(http.post("/v1/chat/completions", json=HELLO, headers=AUTH), 502)
    assert "credentials" in error["message"]


def test_anthropic_error_echoing_the_key_is_redacted(http, upstreams):
    async def reply(rec, send):
        await send_json(send, 400, {"type": "error", "error": {
            "type": "invalid_request_error", "message": "bad request for key sk-ant-test"}})
    upstreams.anthropic.scripted.append(reply)
    error = error_of(http.post("/v1/chat/completions", json={**HELLO, "model": "anthropic/claude-haiku-4-5"},
                               headers=AUTH), 400)
    assert "sk-ant-test" not in error["message"]


def test_connection_refused_is_502(gateway, tmp_path):
    from tests.gateway_process import GatewayProcess
    from tests.standins.harness import free_port

    g = GatewayProcess(tmp_path / "gw", {"LUNOS_MASTER_KEY": MASTER_KEY, "OPENAI_API_KEY": "k",
                                         "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}).start()
    try:
        r = httpx.post(g.url + "/v1/chat/completions", json=HELLO, headers=AUTH, timeout=30)
        error = error_of(r, 502)
        assert error["code"] == "upstream_connect_error"
    finally:
        g.stop()


# ---------------------------------------------------------------- streams that fail
def test_stream_cut_after_it_started_ends_with_an_error_event(http, upstreams, client):
    upstreams.openai.scripted.append(sse_reply(chunk({"role": "assistant", "content": ""}),
                                               chunk({"content": "Hel"}), close_early=True))
    with http.stream("POST", "/v1/chat/completions", json={**HELLO, "stream": True}, headers=AUTH) as r:
        assert r.status_code == 200
        raw = r.read().decode()
    assert '"content":"Hel"' in raw
    assert "[DONE]" not in raw
    last = [line for line in raw.split("\n\n") if line.strip()][-1]
    error = json.loads(last.removeprefix("data: "))["error"]
    assert error["type"] == "upstream_error" and error["message"]
    # The official SDK turns it into an exception.
    upstreams.openai.scripted.append(sse_reply(chunk({"role": "assistant", "content": ""}),
                                               chunk({"content": "Hel"}), close_early=True))
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="openai/gpt-4o", messages=HELLO["messages"], stream=True):
            pass


def test_stream_error_event_mid_stream(http, upstreams):
    upstreams.openai.scripted.append(sse_reply(
        chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}),
        b'data: {"error": {"message": "model overloaded", "type": "server_error"}}\n\n'))
    with http.stream("POST", "/v1/chat/completions", json={**HELLO, "stream": True}, headers=AUTH) as r:
        raw = r.read().decode()
    assert "[DONE]" not in raw and "model overloaded" in raw.split("\n\n")[-2]


def test_stream_failing_before_its_first_chunk_is_retried(http, upstreams):
    upstreams.openai.scripted.append(sse_reply(b"", close_early=True))
    with http.stream("POST", "/v1/chat/completions", json={**HELLO, "stream": True}, headers=AUTH) as r:
        raw = r.read().decode()
    assert raw.rstrip().endswith("data: [DONE]") and "You" in raw
    assert len(upstreams.openai.requests) == 2


def test_anthropic_overloaded_at_stream_start_is_retried(http, upstreams):
    async def overloaded(rec, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "more_body": True, "body":
                    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
                    b'"role":"assistant","content":[],"model":"claude-haiku-4-5","stop_reason":null,'
                    b'"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
                    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'})
        await send({"type": "http.response.body", "body": b""})
    upstreams.anthropic.scripted.append(overloaded)
    with http.stream("POST", "/v1/chat/completions", headers=AUTH,
                     json={**HELLO, "model": "anthropic/claude-haiku-4-5", "stream": True}) as r:
        raw = r.read().decode()
    assert "You" in raw and raw.rstrip().endswith("data: [DONE]")
    assert len(upstreams.anthropic.requests) == 2


def test_stream_request_error_before_start_is_a_json_error(http, upstreams):
    upstreams.openai.scripted.append(status_reply(400, {"error": {"message": "bad stop"}}))
    r = http.post("/v1/chat/completions", json={**HELLO, "stream": True}, headers=AUTH)
    assert error_of(r, 400)["message"] == "openai: bad stop"

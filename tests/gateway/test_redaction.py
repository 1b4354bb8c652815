"""A provider that echoes its credential: the key never reaches a client, a row or the log."""

from __future__ import annotations

import time

import httpx
import openai
import orjson
import pytest

from lunos.gateway.errors import GatewayError, Redactor
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import ServerThread, read_body, send_json

SK_KEY = "sk-proj-EchoedSecret0123456789abcdef"  # an OpenAI-shaped key (groq preset)
PLAIN_KEY = "plain-credential-7731-zulu"  # no known shape: only the exact value finds it
SECRETS = (SK_KEY, PLAIN_KEY, "EchoedSecret0123456789abcdef")


class EchoingProvider:
    """An OpenAI-compatible upstream that refuses every key and quotes it back, as a JSON
    401, or (for a user text "midstream") in an error event after the first chunk."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = orjson.loads(await read_body(receive))
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        key = auth.removeprefix("Bearer ")
        if body["messages"][-1]["content"] != "midstream":
            await send_json(send, 401, {"error": {
                "message": f"Invalid API key: {key}. Sent header: {auth}", "type": "auth",
                "code": "invalid_api_key"}})
            return
        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"},
                              "finish_reason": None}]}
        error = {"error": {"message": f"key {key} was revoked", "type": "server_error"}}
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for event in (chunk, error):
            await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(event) + b"\n\n",
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    upstream = ServerThread(EchoingProvider()).start()
    env = {"LUNOS_MASTER_KEY": MASTER_KEY, "LUNOS_BREAKER_THRESHOLD": "1000000",
           "GROQ_BASE_URL": upstream.url + "/v1", "GROQ_API_KEY": SK_KEY,
           "TOGETHER_BASE_URL": upstream.url + "/v1", "TOGETHER_API_KEY": PLAIN_KEY}
    g = GatewayProcess(tmp_path_factory.mktemp("redaction"), env).start()
    yield g
    g.stop()
    upstream.stop()


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def hello(content: str = "hello", model: str = "groq/llama") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize("model", ["groq/llama", "together/llama"])
def test_json_error_does_not_carry_the_key(gateway, client, model):
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**hello(model=model))
    error = caught.value
    assert error.status_code == 502
    assert "[redacted]" in error.message
    assert_clean(error.message)
    assert_clean(error.response.text)


def test_midstream_error_event_does_not_carry_the_key(gateway):
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        response = http.post("/v1/chat/completions", headers={"authorization": f"Bearer {MASTER_KEY}"},
                             json={**hello("midstream"), "stream": True})
    assert response.status_code == 200
    assert '"error"' in response.text and "[redacted]" in response.text
    assert_clean(response.text)


def test_rows_and_log_do_not_carry_the_key(gateway, client):
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(**hello(model="together/llama"))
    with pytest.raises(openai.APIError) as caught:
        list(client.chat.completions.create(**hello("midstream"), stream=True))
    assert "[redacted]" in caught.value.message
    assert_clean(caught.value.message)
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    deadline = time.monotonic() + 20
    with httpx.Client(base_url=gateway.url, timeout=30, headers=headers) as http:
        while True:
            rows = http.get("/v1/logs", params={"limit": 500}).json()["data"]
            if sum(1 for r in rows if r.get("error")) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        errors = [r for r in rows if r.get("error")]
        assert len(errors) >= 2
        details = [http.get(f"/v1/logs/{r['id']}").text for r in errors]
    assert any("[redacted]" in r["error"] for r in errors)
    assert_clean(orjson.dumps(rows).decode())
    for detail in details:
        assert_clean(detail)
    assert_clean(gateway.log_path.read_text())


def test_redactor_unit():
    redactor = Redactor(["exact-value-1234", None, ""])
    text = redactor.text("a exact-value-1234 b sk-ant-api03-abcdef c AIzaSyA-0123456789abcdefghij "
                         "d Authorization: bearer tok.en-1234567890abcdef e skill-set f g Bearer token needed")
    assert text == ("a [redacted] b [redacted] c [redacted] d Authorization: bearer [redacted] "
                    "e skill-set f g Bearer token needed")
    error = redactor.error(GatewayError(502, "x: exact-value-1234"))
    assert error.message == "x: [redacted]" and b"exact" not in error.body()

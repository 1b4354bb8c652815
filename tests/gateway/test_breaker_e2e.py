"""The circuit breaker under the failures that fooled it: it moves traffic, it never leaves a
model with nothing to try.

Each test starts its own gateway with a realistic threshold (the shared gateway sets it out
of reach, as many tests fail the upstream on purpose).
"""

from __future__ import annotations

import asyncio
import collections

import httpx
import openai
import pytest

from tests.conftest import OPENAI_KEY
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import Reject, ServerThread
from tests.standins.openai_api import OpenAIStandIn

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
BREAKER = {"LUNOS_BREAKER_THRESHOLD": "5", "LUNOS_BREAKER_COOLDOWN": "60", "LUNOS_RETRY_BACKOFF": "0.01"}


def ask(text: str, **extra) -> dict:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def breaker_gateway(standins, tmp_path):
    standins.reset()
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), **BREAKER}).start()
    yield g
    g.stop()


def test_one_failing_prompt_does_not_shut_out_every_key(breaker_gateway, standins):
    base = breaker_gateway.url
    openai_upstream = standins.openai
    for _ in range(2):  # one prompt the upstream always fails: 2 x 3 attempts open the circuit
        r = httpx.post(f"{base}/v1/chat/completions", headers=MASTER, json=ask("boom [[status:500]]"))
        assert r.status_code == 502
    assert len(openai_upstream.requests) == 6
    # With a fallback the open circuit still saves the wait: the fallback answers at once.
    r = httpx.post(f"{base}/v1/chat/completions", headers=MASTER,
                   json=ask("hi", fallback_model="anthropic/claude-haiku-4-5"))
    assert r.status_code == 200 and r.json()["provider"] == "anthropic"
    assert len(openai_upstream.requests) == 6
    # Without one, the deployment that failed longest ago is tried anyway, for any key...
    key = httpx.post(f"{base}/admin/keys", headers=MASTER, json={"name": "other"}).json()["key"]
    client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    answer = client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "You said: hi"
    assert len(openai_upstream.requests) == 7
    # ...and its success closed the circuit: the next request with a fallback goes to openai.
    r = httpx.post(f"{base}/v1/chat/completions", headers=MASTER,
                   json=ask("hi", fallback_model="anthropic/claude-haiku-4-5"))
    assert r.status_code == 200 and r.json()["provider"] == "openai"


def test_a_stream_is_tried_when_every_deployment_is_open(breaker_gateway, standins):
    base = breaker_gateway.url
    for _ in range(2):
        httpx.post(f"{base}/v1/chat/completions", headers=MASTER, json=ask("boom [[status:503]]"))
    client = openai.OpenAI(base_url=base + "/v1", api_key=MASTER_KEY, max_retries=0)
    stream = client.chat.completions.create(model="openai/gpt-4o", stream=True,
                                            messages=[{"role": "user", "content": "hi there"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "You said: hi there"


def test_requests_the_prompt_made_invalid_never_open_the_circuit(breaker_gateway, standins):
    base = breaker_gateway.url
    for _ in range(10):  # 400s say the request was bad, not the upstream
        r = httpx.post(f"{base}/v1/chat/completions", headers=MASTER, json=ask("bad [[status:400]]"))
        assert r.status_code == 400
    r = httpx.post(f"{base}/v1/chat/completions", headers=MASTER,
                   json=ask("hi", fallback_model="anthropic/claude-haiku-4-5"))
    assert r.status_code == 200 and r.json()["provider"] == "openai"  # the circuit is closed


class FailsEachPromptOnce(OpenAIStandIn):
    """Answers 500 to the first try of each prompt, all at once when `together` have come
    (so they are truly concurrent), and normally to every later try."""

    def __init__(self, together: int) -> None:
        super().__init__(OPENAI_KEY)
        self.together = together
        self.seen: set[str] = set()
        self.arrived: asyncio.Event | None = None

    async def handle(self, rec, send) -> None:
        text = rec.json["messages"][-1]["content"]
        if text not in self.seen:
            self.seen.add(text)
            self.arrived = self.arrived or asyncio.Event()
            if len(self.seen) >= self.together:
                self.arrived.set()
            try:
                await asyncio.wait_for(self.arrived.wait(), 10)
            except asyncio.TimeoutError:
                pass
            raise Reject(500, {"error": {"message": "transient", "type": "server_error"}})
        await super().handle(rec, send)


def test_concurrent_requests_each_with_one_transient_500_all_succeed(standins, tmp_path):
    upstream = FailsEachPromptOnce(together=20)
    server = ServerThread(upstream).start()
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), **BREAKER,
                                         "OPENAI_BASE_URL": server.url + "/v1"}).start()
    try:
        async def run() -> collections.Counter:
            async with openai.AsyncOpenAI(base_url=g.url + "/v1", api_key=MASTER_KEY, max_retries=0,
                                          timeout=60) as client:
                async def one(i: int) -> str:
                    try:
                        r = await client.chat.completions.create(
                            model="openai/gpt-4o", messages=[{"role": "user", "content": f"request {i}"}])
                    except openai.APIStatusError as exc:
                        return str(exc.status_code)
                    return r.choices[0].message.content
                return collections.Counter(await asyncio.gather(*(one(i) for i in range(20))))

        answers = asyncio.run(run())
        assert sum(answers[f"You said: request {i}"] for i in range(20)) == 20, answers
        assert len(upstream.requests) == 40  # one failure and one retry each
    finally:
        g.stop()
        server.stop()

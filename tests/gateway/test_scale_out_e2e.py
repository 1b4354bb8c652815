"""Two gateway processes on one PostgreSQL database and one Redis act as one service, with
no sticky sessions: keys, revocations, rate limits, history rows and stored conversations
and response-cache entries are shared (docs/deployment.md)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from tests.databases import database
from tests.gateway.test_limits_e2e import bearer, make_key
from tests.gateway_process import MASTER_KEY, GatewayProcess

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
REDIS = "redis://127.0.0.1:6379/0"
# A revocation reaches every gateway within LUNOS_KEY_SYNC_INTERVAL (1 s) plus one reload
# of the key table; the test allows a generous multiple of that bound on a loaded machine.
REVOCATION_BOUND = 1.0
SLACK = 10.0


def ask(text: str) -> dict:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}]}


@pytest.fixture(scope="module")
def pair(standins, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scale")
    with database("postgresql", tmp) as url:
        env = {**standins.env(), "LUNOS_DATABASE_URL": url, "LUNOS_REDIS_URL": REDIS,
               "LUNOS_RETRY_BACKOFF": "0.01"}
        a = GatewayProcess(tmp / "a", env).start()
        b = GatewayProcess(tmp / "b", env).start()
        try:
            yield a, b
        finally:
            a.stop()
            b.stop()


def chat(g: GatewayProcess, key: dict, text: str = "hi") -> httpx.Response:
    return httpx.post(f"{g.url}/v1/chat/completions", headers=bearer(key), json=ask(text), timeout=30)


def test_a_key_made_on_a_works_on_b_and_a_revocation_on_b_reaches_a(pair, upstreams):
    a, b = pair
    key = make_key(a.url)
    assert chat(b, key).status_code == 200  # at once: B asks the database for a key it lacks
    assert chat(a, key).status_code == 200
    r = httpx.delete(f"{b.url}/admin/keys/{key['id']}", headers=MASTER)
    assert r.status_code == 200, r.text
    assert chat(b, key).status_code == 401  # where it was revoked: at once
    deadline = time.monotonic() + REVOCATION_BOUND + SLACK
    while (status := chat(a, key).status_code) == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status == 401


def test_rpm_is_exact_across_both_gateways(pair, upstreams):
    a, b = pair
    key = make_key(a.url, rpm=6)
    assert httpx.get(f"{b.url}/v1/logs", headers=bearer(key)).status_code == 200  # B knows it

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            replies = await asyncio.gather(*(
                client.post(f"{(a, b)[i % 2].url}/v1/chat/completions", headers=bearer(key),
                            json=ask(f"n{i}")) for i in range(20)))
        return [r.status_code for r in replies]

    statuses = asyncio.run(burst())
    assert sorted(statuses) == [200] * 6 + [429] * 14


def test_a_row_written_through_a_is_readable_through_b(pair, upstreams):
    a, b = pair
    key = make_key(a.url)
    r = chat(a, key, "remember this row")
    assert r.status_code == 200
    row_id = r.headers["x-request-id"]
    deadline = time.monotonic() + SLACK  # the writer commits within about a second
    while (got := httpx.get(f"{b.url}/v1/logs/{row_id}", headers=bearer(key))).status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert got.status_code == 200, got.text
    row = got.json()
    assert row["id"] == row_id and row["status"] == 200 and row["model"]
    listed = httpx.get(f"{b.url}/v1/logs", headers=bearer(key)).json()["data"]
    assert [x["id"] for x in listed] == [row_id]


def test_a_conversation_stored_on_a_continues_on_b(pair, upstreams):
    a, b = pair
    key = make_key(a.url)
    on_a = openai.OpenAI(base_url=f"{a.url}/v1", api_key=key["key"], max_retries=0)
    on_b = openai.OpenAI(base_url=f"{b.url}/v1", api_key=key["key"], max_retries=0)
    first = on_a.responses.create(model="openai/gpt-4o", input="my name is Ada")
    assert first.output_text == "You said: my name is Ada"
    second = on_b.responses.create(model="anthropic/claude-sonnet-4-5",
                                   previous_response_id=first.id, input="what is my name")
    assert second.output_text == "You said: what is my name"
    sent = json.dumps(upstreams.anthropic.last.json["messages"])
    assert "my name is Ada" in sent and "You said: my name is Ada" in sent
    assert on_b.responses.retrieve(first.id).id == first.id


def test_a_cache_entry_made_through_a_is_a_hit_through_b(pair, upstreams):
    a, b = pair
    key = make_key(a.url)
    body = {**ask(f"cached across gateways {time.time_ns()}"), "cache": True}
    first = httpx.post(f"{a.url}/v1/chat/completions", headers=bearer(key), json=body, timeout=30)
    assert first.status_code == 200 and first.headers["x-lunos-cache"] == "miss"
    calls = len(upstreams.openai.requests)
    second = httpx.post(f"{b.url}/v1/chat/completions", headers=bearer(key), json=body, timeout=30)
    assert second.status_code == 200 and second.headers["x-lunos-cache"] == "hit"
    assert len(upstreams.openai.requests) == calls  # B answered from the entry A made (Redis)
    assert second.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
    assert second.json()["usage"]["cost"] == 0


@pytest.mark.parametrize("field", ["rpm", "tpm"])
def test_a_limit_too_large_for_the_column_is_a_400_naming_it(pair, field):
    a, _ = pair
    r = httpx.post(f"{a.url}/admin/keys", headers=MASTER, json={"name": "big", field: 2**31})
    assert r.status_code == 400, r.text  # PostgreSQL's 32-bit column used to make this a 503
    assert r.json()["error"]["param"] == field
    assert httpx.post(f"{a.url}/admin/keys", headers=MASTER,
                      json={"name": "max", field: 2**31 - 1}).status_code == 201

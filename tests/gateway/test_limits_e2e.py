"""Limits against a real gateway: shared by workers without Redis, counted on arrival,
reservations that cover every choice, and a Retry-After on every 429."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest

from tests.gateway.test_reliability_e2e import _burst as burst  # every 429 says when to retry
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import send_json

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
QUIET = {"LUNOS_RETRY_BACKOFF": "0.01", "LUNOS_BREAKER_THRESHOLD": "1000"}


def ask(text: str, **extra) -> dict:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


def make_key(base: str, **fields) -> dict:
    r = httpx.post(f"{base}/admin/keys", headers=MASTER, json={"name": "limited", **fields})
    assert r.status_code == 201, r.text
    return r.json()


def bearer(key: dict) -> dict:
    return {"authorization": f"Bearer {key['key']}"}


@pytest.fixture(scope="module")
def limits_gateway(standins, tmp_path_factory):
    g = GatewayProcess(tmp_path_factory.mktemp("limits"), {**standins.env(), **QUIET}).start()
    yield g
    g.stop()


def test_two_workers_without_redis_share_rpm_and_budget(standins, tmp_path):
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), **QUIET}, args=["--workers", "2"]).start()
    try:
        key = make_key(g.url, rpm=5)
        time.sleep(1.5)  # every worker has loaded the new key
        counts = asyncio.run(burst(g.url, bearer(key), 30, ask("hi")))
        assert counts == {200: 5, 429: 25}

        from lunos.gateway.catalog import Catalog
        from lunos.gateway.limits import worst_case

        slow = ask("hi [[delay:0.3]]", max_tokens=1000)
        _, cost = worst_case(slow, [Catalog.load().get("openai/gpt-4o")])
        budget_key = make_key(g.url, budget_usd=cost * 2.5)  # room for two at a time
        time.sleep(1.5)
        counts = asyncio.run(burst(g.url, bearer(budget_key), 30, slow))
        assert counts[200] <= 2 and counts[200] + counts[429] == 30
        pids = {line.split('pid="')[1].split('"')[0] for line in
                (httpx.get(f"{g.url}/metrics").text for _ in range(40)) for line in line.splitlines()
                if line.startswith("lunos_in_flight_requests")}
        assert len(pids) == 2  # two processes really answered
    finally:
        g.stop()


def test_n_choices_are_reserved_against_the_budget(limits_gateway, upstreams):
    from lunos.gateway.catalog import Catalog
    from lunos.gateway.limits import worst_case

    body = ask("hi", max_tokens=100)
    _, one_call = worst_case(body, [Catalog.load().get("openai/gpt-4o")])
    key = make_key(limits_gateway.url, budget_usd=one_call * 1.5)
    r = httpx.post(f"{limits_gateway.url}/v1/chat/completions", headers=bearer(key),
                   json={**body, "n": 128})
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "budget_exceeded"
    assert int(r.headers["retry-after"]) >= 1
    assert upstreams.openai.requests == []  # refused before any upstream call
    r = httpx.post(f"{limits_gateway.url}/v1/chat/completions", headers=bearer(key), json=body)
    assert r.status_code == 200, r.text


def test_structured_output_reserves_its_retry(limits_gateway, upstreams):
    from lunos.gateway.catalog import Catalog
    from lunos.gateway.limits import worst_case

    body = ask("answer in json", max_tokens=100)
    _, one_call = worst_case(body, [Catalog.load().get("openai/gpt-4o")])
    key = make_key(limits_gateway.url, budget_usd=one_call * 1.5)
    structured = {**body, "response_format": {"type": "json_object"}}
    r = httpx.post(f"{limits_gateway.url}/v1/chat/completions", headers=bearer(key), json=structured)
    assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded", r.text
    assert upstreams.openai.requests == []


def test_web_search_reserves_every_round(limits_gateway, upstreams):
    from lunos.gateway.catalog import Catalog
    from lunos.gateway.limits import worst_case

    body = ask("what happened today?", max_tokens=100)
    _, one_call = worst_case(body, [Catalog.load().get("openai/gpt-4o")])
    key = make_key(limits_gateway.url, budget_usd=one_call * 1.5)
    searching = {**body, "tools": [{"type": "web_search"}]}
    r = httpx.post(f"{limits_gateway.url}/v1/chat/completions", headers=bearer(key), json=searching)
    assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded", r.text
    assert upstreams.openai.requests == [] and upstreams.search.queries == []


def test_rpm_counts_a_request_when_it_arrives(limits_gateway, upstreams):
    """A request whose body is still on its way holds its rpm slot already."""
    key = make_key(limits_gateway.url, rpm=1)
    host, port = "127.0.0.1", limits_gateway.port
    with socket.create_connection((host, port), timeout=10) as slow:
        slow.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"authorization: Bearer " + key["key"].encode() + b"\r\ncontent-length: 500\r\n\r\n{")
        deadline = time.monotonic() + 10
        while "lunos_in_flight_requests" not in _in_flight(limits_gateway.url, 1):
            assert time.monotonic() < deadline, "the trickled request never arrived"
            time.sleep(0.05)
        r = httpx.post(f"{limits_gateway.url}/v1/chat/completions", headers=bearer(key), json=ask("hi"))
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "rpm_exceeded"
        assert int(r.headers["retry-after"]) >= 1


def _in_flight(base: str, count: int) -> str:
    """The /metrics line saying `count` requests are in flight, or ''."""
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("lunos_in_flight_requests") and line.endswith(f" {count}"):
            return line
    return ""


def test_upstream_429_without_a_hint_still_carries_retry_after(limits_gateway, upstreams):
    async def too_many(rec, send):
        await send_json(send, 429, {"error": {"message": "slow down"}})

    upstreams.openai.scripted += [too_many] * 3
    r = httpx.post(f"{limits_gateway.url}/v1/chat/completions", headers=MASTER, json=ask("hi"), timeout=30)
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert json.loads(r.text)["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("stream", [False, True])
def test_one_hour_cache_writes_are_priced_at_their_own_rate(limits_gateway, upstreams, stream):
    from lunos.gateway.catalog import Catalog
    from lunos.gateway.usage import TokenCounts, cost_of

    words = " ".join(["context"] * 300)
    body = {"model": "anthropic/claude-opus-5-5", "max_tokens": 50, "stream": stream,
            "stream_options": {"include_usage": True} if stream else None,
            "messages": [{"role": "system", "content": [
                {"type": "text", "text": words, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
                {"role": "user", "content": f"hi {stream}"}]}
    body = {k: v for k, v in body.items() if v is not None}
    if stream:
        with httpx.stream("POST", f"{limits_gateway.url}/v1/chat/completions", headers=MASTER,
                          json=body, timeout=30) as r:
            events = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: {")]
        usage = next(json.loads(e)["usage"] for e in reversed(events) if json.loads(e).get("usage"))
    else:
        r = httpx.post(f"{limits_gateway.url}/v1/chat/completions", headers=MASTER, json=body, timeout=30)
        assert r.status_code == 200, r.text
        usage = r.json()["usage"]
    details = usage["prompt_tokens_details"]
    assert details["cache_write_tokens"] == details["cache_write_1h_tokens"] >= 300
    written = details["cache_write_tokens"]
    opus = Catalog.load().get("anthropic/claude-opus-5-5")
    uncached = usage["prompt_tokens"] - written
    assert usage["cost"] == pytest.approx(
        (uncached * 4.0 + written * 8.0 + usage["completion_tokens"] * 20.0) / 1e6)
    assert usage["cost"] == pytest.approx(cost_of(TokenCounts.of(usage), opus))

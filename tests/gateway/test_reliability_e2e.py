"""Failure made boring: retries, timeouts, fallbacks, breakers, balancing, limits, shutdown.

Every fault case checks the status (or SSE error), the number of upstream attempts, and
that the request left exactly one history row.
"""

from __future__ import annotations

import asyncio
import collections
import json
import signal
import time

import httpx
import pytest
import yaml

from tests.databases import database
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import ServerThread, free_port, send_json
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.tcp_proxy import TcpProxy

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
QUIET = {"LUNOS_RETRY_BACKOFF": "0.01", "LUNOS_BREAKER_THRESHOLD": "1000"}
FAST = {  # short timeouts so fault cases run quickly (with room for a busy machine)
    **QUIET, "LUNOS_FIRST_BYTE_TIMEOUT": "2", "LUNOS_IDLE_TIMEOUT": "2", "LUNOS_TOTAL_TIMEOUT": "6",
}


def ask(text: str, **extra) -> dict:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


def rows_for(base: str, row_id: str) -> list[dict]:
    deadline = time.monotonic() + 2
    while True:
        rows = httpx.get(f"{base}/v1/logs", headers=MASTER, params={"limit": 500}).json()["data"]
        found = [r for r in rows if r["id"] == row_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def make_key(base: str, **fields) -> dict:
    r = httpx.post(f"{base}/admin/keys", headers=MASTER, json={"name": "limited", **fields})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def fast_gateway(standins, tmp_path_factory):
    g = GatewayProcess(tmp_path_factory.mktemp("fast"), {**standins.env(), **FAST}).start()
    yield g
    g.stop()


def stream_text(base: str, body: dict, headers=MASTER) -> tuple[str, str]:
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200, r.read()
        return r.read().decode(), r.headers["x-request-id"]


def last_event(raw: str) -> dict:
    return json.loads([e for e in raw.split("\n\n") if e.strip()][-1].removeprefix("data: "))


# ---------------------------------------------------------------- the fault suite
def _status(code: int, headers=()):
    async def reply(rec, send):
        await send_json(send, code, {"error": {"message": f"stand-in {code}"}},
                        [(k.encode(), v.encode()) for k, v in headers])
    return reply


def _hang(seconds: float):
    async def reply(rec, send):
        await asyncio.sleep(seconds)
    return reply


def _chunks(*pieces: str, pause: float = 0.0, cut: bool = False):
    async def reply(rec, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for i, text in enumerate(pieces):
            delta = {"role": "assistant", "content": text} if i == 0 else {"content": text}
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            await send({"type": "http.response.body", "body": b"data: " + json.dumps(chunk).encode() + b"\n\n",
                        "more_body": True})
            await asyncio.sleep(pause)
        if cut:
            raise RuntimeError("cut")
        await send({"type": "http.response.body", "body": b""})
    return reply


@pytest.mark.parametrize(("name", "script", "stream", "status", "attempts"), [
    ("500 three times", [_status(500)] * 3, False, 502, 3),
    ("503 then fine", [_status(503)], False, 200, 2),
    ("400 is final", [_status(400)], False, 400, 1),
    ("429 three times", [_status(429, [("retry-after", "0")])] * 3, False, 429, 3),
    ("slow first byte", [_hang(4)] * 3, False, 504, 3),
    ("slow first byte then fine", [_hang(4)], True, 200, 2),
    ("401 from the provider", [_status(401)], False, 502, 1),
    ("stream cut mid-way", [_chunks("Hel", "lo", cut=True)], True, 502, 1),
    ("stream goes idle", [_chunks("Hel", "lo", pause=4)], True, 504, 1),
])
def test_fault_suite(fast_gateway, upstreams, name, script, stream, status, attempts):
    upstreams.openai.scripted += script
    base = fast_gateway.url
    if stream:
        raw, row_id = stream_text(base, ask("hello", stream=True))
        if status == 200:
            assert raw.rstrip().endswith("data: [DONE]")
        else:
            assert "[DONE]" not in raw
            error = last_event(raw)["error"]
            assert error["type"] == {502: "upstream_error", 504: "timeout_error"}[status]
    else:
        r = httpx.post(f"{base}/v1/chat/completions", json=ask("hello"), headers=MASTER, timeout=30)
        assert r.status_code == status, r.text
        row_id = r.headers["x-request-id"]
        if status >= 400:
            assert set(r.json()["error"]) == {"message", "type", "param", "code"}
            assert r.headers["x-should-retry"] == "false"
    assert len(upstreams.openai.requests) == attempts
    (row,) = rows_for(base, row_id)
    assert row["status"] == status and len(row["attempts"]) == attempts


def test_connection_refused_is_retried_then_502(standins, tmp_path):
    env = {**standins.env(), **FAST, "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    g = GatewayProcess(tmp_path / "gw", env).start()
    try:
        r = httpx.post(f"{g.url}/v1/chat/completions", json=ask("hi"), headers=MASTER, timeout=30)
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_connect_error"
        (row,) = rows_for(g.url, r.headers["x-request-id"])
        assert len(row["attempts"]) == 3 and all(a["status"] is None for a in row["attempts"])
    finally:
        g.stop()


def test_total_timeout_ends_a_stream_with_an_error_event(fast_gateway, upstreams):
    upstreams.openai.scripted.append(_chunks(*["x "] * 12, pause=0.8))  # 9.6 s > total 6 s
    raw, row_id = stream_text(fast_gateway.url, ask("hello", stream=True))
    assert last_event(raw)["error"]["code"] == "upstream_timeout" and "[DONE]" not in raw
    (row,) = rows_for(fast_gateway.url, row_id)
    assert row["status"] == 504


# ---------------------------------------------------------------- fallbacks
def test_fallback_across_providers(fast_gateway, upstreams):
    upstreams.openai.scripted += [_status(500)] * 3
    r = httpx.post(f"{fast_gateway.url}/v1/chat/completions", headers=MASTER, timeout=30,
                   json=ask("hello", models=["anthropic/claude-haiku-4-5", "google/gemini-2.5-flash"]))
    body = r.json()
    assert r.status_code == 200 and body["model"] == "anthropic/claude-haiku-4-5"
    assert body["provider"] == "anthropic" and body["choices"][0]["message"]["content"] == "You said: hello"
    (row,) = rows_for(fast_gateway.url, r.headers["x-request-id"])
    assert [(a["model"], a["status"]) for a in row["attempts"]] == [
        ("openai/gpt-4o", 500), ("openai/gpt-4o", 500), ("openai/gpt-4o", 500),
        ("anthropic/claude-haiku-4-5", 200)]
    assert row["model"] == "anthropic/claude-haiku-4-5" and row["provider"] == "anthropic"


def test_fallback_model_when_the_provider_is_not_configured(fast_gateway, upstreams):
    r = httpx.post(f"{fast_gateway.url}/v1/chat/completions", headers=MASTER, timeout=30,
                   json={**ask("hi"), "model": "xai/grok-4.7", "fallback_model": "google/gemini-2.5-flash"})
    assert r.status_code == 200 and r.json()["model"] == "google/gemini-2.5-flash"


def test_streamed_fallback(fast_gateway, upstreams):
    upstreams.openai.scripted += [_status(503)] * 3
    raw, _ = stream_text(fast_gateway.url, ask("hello", stream=True, fallback_model="anthropic/claude-haiku-4-5"))
    chunks = [json.loads(e.removeprefix("data: ")) for e in raw.split("\n\n") if e.startswith("data: {")]
    assert {c["model"] for c in chunks} == {"anthropic/claude-haiku-4-5"}
    assert chunks[0]["provider"] == "anthropic"


def test_a_bad_request_does_not_fall_back(fast_gateway, upstreams):
    upstreams.openai.scripted.append(_status(400))
    r = httpx.post(f"{fast_gateway.url}/v1/chat/completions", headers=MASTER, timeout=30,
                   json=ask("hi", models=["anthropic/claude-haiku-4-5"]))
    assert r.status_code == 400 and upstreams.anthropic.requests == []


# ---------------------------------------------------------------- aliases, balancing, breakers
@pytest.fixture
def second_openai():
    app = OpenAIStandIn("sk-openai-second")
    server = ServerThread(app).start()
    yield app, server
    server.stop()


def _config(tmp_path, aliases: dict) -> str:
    path = tmp_path / "lunos.yaml"
    path.write_text(yaml.safe_dump({"aliases": aliases}))
    return str(path)


def test_alias_spreads_by_weight(standins, tmp_path):
    config = _config(tmp_path, {"smart": [{"model": "openai/gpt-4o", "weight": 3},
                                          {"model": "anthropic/claude-haiku-4-5", "weight": 1}]})
    standins.reset()
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), **FAST}, args=["--config", config]).start()
    try:
        providers = collections.Counter()
        for _ in range(200):
            r = httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER, json={**ask("hi"), "model": "smart"})
            assert r.status_code == 200
            providers[r.json()["provider"]] += 1
    finally:
        g.stop()
    share = providers["openai"] / 200
    assert 0.6 <= share <= 0.9, providers  # 3:1 by weight (expected 0.75)
    assert len(standins.openai.requests) == providers["openai"]


def test_deployments_with_their_own_keys_and_the_breaker(standins, second_openai, tmp_path):
    """openai/gpt-4o served by two deployments: when one fails, its breaker opens and traffic
    moves to the other without a client error; /metrics shows it; after the cooldown a probe
    closes it again."""
    second, server = second_openai
    config = _config(tmp_path, {"openai/gpt-4o": [
        {"model": "openai/gpt-4o"},
        {"model": "openai/gpt-4o", "base_url": server.url + "/v1", "api_key": "sk-openai-second"}]})
    env = {**standins.env(), **FAST, "LUNOS_BREAKER_THRESHOLD": "3", "LUNOS_BREAKER_COOLDOWN": "4"}
    standins.reset()
    g = GatewayProcess(tmp_path / "gw", env, args=["--config", config]).start()
    try:
        for _ in range(20):
            assert httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER, json=ask("hi")).status_code == 200
        assert standins.openai.requests and second.requests  # both deployments used
        assert second.last.headers["authorization"] == "Bearer sk-openai-second"
        second.scripted += [_status(500)] * 1000  # the second deployment breaks
        before = len(second.requests)
        for _ in range(30):
            assert httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER, json=ask("hi")).status_code == 200
        assert len(second.requests) - before == 3  # three failures open its breaker, then no traffic
        metrics = httpx.get(f"{g.url}/metrics").text
        assert 'lunos_breaker_state{pid=' in metrics and 'deployment="openai/gpt-4o#1"} 1' in metrics
        assert "lunos_retries_total" in metrics
        second.scripted.clear()  # healed
        time.sleep(4.2)
        for _ in range(20):
            assert httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER, json=ask("hi")).status_code == 200
        assert len(second.requests) - before > 3  # the probe succeeded: traffic again
        assert 'deployment="openai/gpt-4o#1"} 0' in httpx.get(f"{g.url}/metrics").text
    finally:
        g.stop()


def test_open_breaker_goes_to_the_fallback_without_calling_upstream(standins, tmp_path):
    env = {**standins.env(), **FAST, "LUNOS_BREAKER_THRESHOLD": "3", "LUNOS_BREAKER_COOLDOWN": "60",
           "LUNOS_RETRIES": "0"}
    standins.reset()
    g = GatewayProcess(tmp_path / "gw", env).start()
    try:
        standins.openai.scripted += [_status(500)] * 4
        for _ in range(3):
            assert httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER, json=ask("hi")).status_code == 502
        # the open circuit sends a request with a fallback straight to it
        r = httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER,
                       json=ask("hi", fallback_model="anthropic/claude-haiku-4-5"))
        assert r.status_code == 200 and r.json()["provider"] == "anthropic"
        assert len(standins.openai.requests) == 3
        # with nothing else to try, the open deployment is still tried (and still fails)
        r = httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER, json=ask("hi"))
        assert r.status_code == 502 and len(standins.openai.requests) == 4
    finally:
        g.stop()


# ---------------------------------------------------------------- cancellation
def test_client_gone_before_the_first_token_cancels_upstream(fast_gateway, upstreams):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{fast_gateway.url}/v1/chat/completions", headers=MASTER,
                   json=ask("hi [[delay:0.8]]", stream=True), timeout=httpx.Timeout(10, read=0.2))
    time.sleep(1.2)
    assert upstreams.openai.billed == []  # the stand-in saw its client (the gateway) go
    rows = httpx.get(f"{fast_gateway.url}/v1/logs", headers=MASTER, params={"status": "499"}).json()["data"]
    assert rows and rows[0]["stream"] is True


# ---------------------------------------------------------------- limits
async def _burst(base: str, headers: dict, n: int, body: dict) -> collections.Counter:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = asyncio.Event()

        async def one():
            await start.wait()
            r = await client.post(f"{base}/v1/chat/completions", headers=headers, json=body)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
            return r.status_code

        tasks = [asyncio.create_task(one()) for _ in range(n)]
        await asyncio.sleep(0.1)
        start.set()
        return collections.Counter(await asyncio.gather(*tasks))


def test_rpm_limit_is_exact_under_concurrency(fast_gateway, upstreams):
    key = make_key(fast_gateway.url, rpm=60)
    counts = asyncio.run(_burst(fast_gateway.url, {"authorization": f"Bearer {key['key']}"}, 200, ask("hi")))
    assert counts[200] == 60 and counts[429] == 140


def test_tpm_limit_reserves_the_worst_case(fast_gateway, upstreams):
    key = make_key(fast_gateway.url, tpm=500)
    headers = {"authorization": f"Bearer {key['key']}"}
    r = httpx.post(f"{fast_gateway.url}/v1/chat/completions", headers=headers, json=ask("hi"))
    assert r.status_code == 429 and r.json()["error"]["code"] == "tpm_exceeded"  # 16k max output
    for _ in range(3):  # ~16 + 2 + 100 tokens reserved each, settled to the real ~7
        assert httpx.post(f"{fast_gateway.url}/v1/chat/completions", headers=headers,
                          json=ask("hi", max_tokens=100)).status_code == 200
    r = httpx.post(f"{fast_gateway.url}/v1/chat/completions", headers=headers, json=ask("hi", max_tokens=480))
    assert r.status_code == 429  # 3 x 7 used + 498 reserved > 500


def _budget_for_two(max_tokens: int = 1000) -> tuple[float, dict]:
    """A budget that admits exactly two worst-case requests at a time (gpt-4o prices)."""
    body = ask("hi", max_tokens=max_tokens)
    from lunos.gateway.catalog import Catalog
    from lunos.gateway.limits import worst_case

    _, cost = worst_case(body, [Catalog.load().get("openai/gpt-4o")])
    return cost * 2.5, body


def test_budget_race_one_gateway(fast_gateway, upstreams):
    budget, body = _budget_for_two()
    key = make_key(fast_gateway.url, budget_usd=budget)
    counts = asyncio.run(_burst(fast_gateway.url, {"authorization": f"Bearer {key['key']}"}, 50,
                                {**body, "messages": [{"role": "user", "content": "hi [[delay:0.3]]"}]}))
    assert counts[200] <= 2 and counts[429] >= 48
    time.sleep(0.5)
    spent = next(k for k in httpx.get(f"{fast_gateway.url}/admin/keys", headers=MASTER).json()["data"]
                 if k["id"] == key["id"])["spend_usd"]
    assert 0 < spent <= budget


def test_budget_race_two_gateways_sharing_redis(standins, tmp_path):
    budget, body = _budget_for_two()
    with database("postgresql", tmp_path) as url:
        env = {**standins.env(), **QUIET, "LUNOS_DATABASE_URL": url, "LUNOS_REDIS_URL": "redis://127.0.0.1:6379/0"}
        one = GatewayProcess(tmp_path / "one", env).start()
        two = GatewayProcess(tmp_path / "two", env).start()
        try:
            key = make_key(one.url, budget_usd=budget, rpm=60)
            headers = {"authorization": f"Bearer {key['key']}"}
            time.sleep(1.5)  # the key reaches the second gateway (key sync)
            slow = {**body, "messages": [{"role": "user", "content": "hi [[delay:0.3]]"}]}

            async def both():
                a, b = await asyncio.gather(_burst(one.url, headers, 25, slow), _burst(two.url, headers, 25, slow))
                return a + b
            counts = asyncio.run(both())
            assert counts[200] <= 2 and counts[200] + counts[429] == 50
            time.sleep(0.5)
            spent = next(k for k in httpx.get(f"{one.url}/admin/keys", headers=MASTER).json()["data"]
                         if k["id"] == key["id"])["spend_usd"]
            assert 0 < spent <= budget
            # rpm shared too: 60 per minute across both gateways (2 used above)
            rpm_key = make_key(one.url, rpm=60)
            time.sleep(1.5)
            h = {"authorization": f"Bearer {rpm_key['key']}"}

            async def rpm():
                a, b = await asyncio.gather(_burst(one.url, h, 100, ask("hi")), _burst(two.url, h, 100, ask("hi")))
                return a + b
            counts = asyncio.run(rpm())
            assert counts[200] == 60 and counts[429] == 140
        finally:
            one.stop()
            two.stop()


def test_concurrency_cap_answers_503(standins, tmp_path):
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), **QUIET, "LUNOS_MAX_CONCURRENCY": "2"}).start()
    try:
        async def run():
            async with httpx.AsyncClient(timeout=30, headers=MASTER) as client:
                slow = [client.post(f"{g.url}/v1/chat/completions", json=ask("x [[delay:0.8]]")) for _ in range(2)]
                tasks = [asyncio.create_task(c) for c in slow]
                await asyncio.sleep(0.3)
                third = await client.post(f"{g.url}/v1/chat/completions", json=ask("x"))
                return third, await asyncio.gather(*tasks)
        third, first_two = asyncio.run(run())
        assert third.status_code == 503 and third.json()["error"]["code"] == "overloaded"
        assert third.headers["retry-after"] == "1"
        assert [r.status_code for r in first_two] == [200, 200]
    finally:
        g.stop()


# ---------------------------------------------------------------- the store goes away
def test_database_down_then_back(standins, tmp_path):
    proxy = TcpProxy("127.0.0.1", 5432).start()
    with database("postgresql", tmp_path) as url:
        proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        g = GatewayProcess(tmp_path / "gw", {**standins.env(), **QUIET, "LUNOS_DATABASE_URL": proxied}).start()
        try:
            key = make_key(g.url)
            headers = {"authorization": f"Bearer {key['key']}"}
            proxy.cut()
            ids = []
            for _ in range(5):  # chat keeps working: keys are checked from memory
                r = httpx.post(f"{g.url}/v1/chat/completions", headers=headers, json=ask("hi"), timeout=30)
                assert r.status_code == 200
                ids.append(r.headers["x-request-id"])
            r = httpx.get(f"{g.url}/v1/logs", headers=headers, timeout=30)
            assert r.status_code == 503 and r.json()["error"]["type"] == "service_unavailable"
            assert httpx.get(f"{g.url}/v1/logs", timeout=30).status_code == 401  # still no key, still 401
            assert "lunos_history_store_up{pid=" in httpx.get(f"{g.url}/metrics").text
            proxy.restore()
            deadline = time.monotonic() + 15
            while True:  # recovery without a restart; the queued rows drain
                r = httpx.get(f"{g.url}/v1/logs", headers=headers, timeout=30)
                if r.status_code == 200 and {row["id"] for row in r.json()["data"]} >= set(ids):
                    break
                assert time.monotonic() < deadline, r.text
                time.sleep(0.2)
        finally:
            g.stop()
            proxy.stop()


# ---------------------------------------------------------------- shutdown, metrics, workers
def test_graceful_shutdown_lets_a_stream_finish(standins, tmp_path):
    standins.reset()
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), **QUIET}).start()
    result = {}

    async def run():
        async with httpx.AsyncClient(timeout=30, headers=MASTER) as client, client.stream(
                "POST", f"{g.url}/v1/chat/completions",
                json=ask("one two three four [[slow:0.4]]", stream=True)) as r:
            got_first = False
            body = b""
            async for chunk in r.aiter_bytes():
                body += chunk
                if not got_first:
                    got_first = True
                    g.proc.send_signal(signal.SIGTERM)
            result["raw"] = body.decode()
            result["id"] = r.headers["x-request-id"]

    asyncio.run(run())
    assert g.proc.wait(30) in (0, -signal.SIGTERM)
    assert result["raw"].rstrip().endswith("data: [DONE]")
    import sqlite3

    with sqlite3.connect(g.home / "lunos.db") as db:
        (status,) = db.execute("SELECT status FROM lunos_requests WHERE id = ?", (result["id"],)).fetchone()
    assert status == 200


def test_metrics_exposition(fast_gateway, upstreams):
    httpx.post(f"{fast_gateway.url}/v1/chat/completions", headers=MASTER, json=ask("hi"))
    text = httpx.get(f"{fast_gateway.url}/metrics").text
    for name in ("lunos_requests_total", "lunos_request_duration_seconds_bucket", "lunos_tokens_total",
                 "lunos_cost_usd_total", "lunos_history_queue_depth", "lunos_in_flight_requests"):
        assert name in text, name
    assert '# TYPE lunos_request_duration_seconds histogram' in text
    assert any(line.startswith("lunos_requests_total{") and 'endpoint="chat"' in line
               for line in text.splitlines())


def test_workers_share_one_port_and_redis_limits(standins, tmp_path):
    with database("postgresql", tmp_path) as url:
        env = {**standins.env(), **QUIET, "LUNOS_DATABASE_URL": url, "LUNOS_REDIS_URL": "redis://127.0.0.1:6379/0"}
        g = GatewayProcess(tmp_path / "gw", env, args=["--workers", "2"]).start()
        try:
            key = make_key(g.url, rpm=30)
            time.sleep(1.5)  # every worker loads the new key
            counts = asyncio.run(_burst(g.url, {"authorization": f"Bearer {key['key']}"}, 100, ask("hi")))
            assert counts[200] == 30 and counts[429] == 70
            pids = {line.split('pid="')[1].split('"')[0] for line in
                    (httpx.get(f"{g.url}/metrics").text for _ in range(40)) for line in line.splitlines()
                    if line.startswith("lunos_in_flight_requests")}
            assert len(pids) == 2  # two processes answer on the one port
        finally:
            g.stop()

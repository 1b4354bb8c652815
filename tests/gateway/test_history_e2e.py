"""History, traces, keys and tenants through running gateways (SPEC §3, §7)."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import time

import httpx
import pytest
from sqlalchemy import insert, text

from lunos.gateway.catalog import Catalog
from lunos.gateway.params import ENDPOINTS
from lunos.gateway.records import CallRecord
from lunos.gateway.store import HistoryWriter, Store, schema
from lunos.gateway.usage import TokenCounts, cost_of
from tests.databases import database
from tests.gateway_process import MASTER_KEY, GatewayProcess

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}


def ask(text: str, **extra) -> dict:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


def wait_for_row(base: str, row_id: str, headers=MASTER, within: float = 1.0) -> dict:
    """SPEC §7: rows are readable within a second of the response."""
    deadline = time.monotonic() + within
    while True:
        r = httpx.get(f"{base}/v1/logs/{row_id}", headers=headers, timeout=5)
        if r.status_code == 200:
            return r.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"row {row_id} not readable within {within} s: {r.text}")
        time.sleep(0.02)


def all_rows(base: str, headers=MASTER, **params) -> list[dict]:
    rows, cursor = [], None
    while True:
        query = {"limit": 500, **params, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{base}/v1/logs", headers=headers, params=query, timeout=30).json()
        rows += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return rows


def make_key(base: str, name: str, **fields) -> dict:
    r = httpx.post(f"{base}/admin/keys", headers=MASTER, json={"name": name, **fields}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


# ---------------------------------------------------------------- one row per request
def test_every_request_gets_exactly_one_row(gateway, upstreams):
    base = gateway.url
    headers = {**MASTER, "x-app-id": "history-test"}
    ok = httpx.post(f"{base}/v1/chat/completions", headers=headers, json=ask("hi"), timeout=10)
    bad = httpx.post(f"{base}/v1/chat/completions", headers=headers, json=ask("hi", temperature=9), timeout=10)
    failed = httpx.post(f"{base}/v1/chat/completions", headers=headers, json=ask("x [[status:500]]"), timeout=30)
    with httpx.stream("POST", f"{base}/v1/chat/completions", headers=headers,
                      json=ask("streamed", stream=True), timeout=10) as s:
        s.read()
    streamed_id = s.headers["x-request-id"]
    rows = {}
    for response, status in ((ok, 200), (bad, 400), (failed, 502)):
        assert response.status_code == status
        rows[status] = wait_for_row(base, response.headers["x-request-id"])
        assert rows[status]["status"] == status and rows[status]["app_id"] == "history-test"
    assert rows[400]["error"].startswith("'temperature' must be between")
    assert rows[502]["error"] and len(rows[502]["attempts"]) == 3
    assert rows[200]["id"] == ok.json()["id"] and rows[200]["provider"] == "openai"
    assert rows[200]["usage"]["prompt_tokens"] > 0 and rows[200]["usage"]["cost"] > 0
    assert rows[200]["latency_ms"] > 0 and rows[200]["stream"] is False
    stream_row = wait_for_row(base, streamed_id)
    assert stream_row["stream"] is True and stream_row["status"] == 200
    assert stream_row["ttft_ms"] is not None and stream_row["ttft_ms"] <= stream_row["latency_ms"]
    assert stream_row["usage"]["completion_tokens"] == 3 and stream_row["tokens_per_second"] > 0
    ids = [r["id"] for r in all_rows(base, app_id="history-test")]
    assert sorted(ids) == sorted({ok.headers["x-request-id"], bad.headers["x-request-id"],
                                  failed.headers["x-request-id"], streamed_id})


def test_missing_app_id_is_unknown(gateway, upstreams):
    r = httpx.post(f"{gateway.url}/v1/chat/completions", headers=MASTER, json=ask("hi"), timeout=10)
    assert wait_for_row(gateway.url, r.headers["x-request-id"])["app_id"] == "unknown"


def test_trace_only_with_observability(gateway, upstreams):
    plain = httpx.post(f"{gateway.url}/v1/chat/completions", headers=MASTER, json=ask("secret prompt"), timeout=10)
    traced = httpx.post(f"{gateway.url}/v1/chat/completions", headers=MASTER,
                        json=ask("traced prompt", observability=True, temperature=0.5,
                                 drop_params=True), timeout=10)
    row = wait_for_row(gateway.url, plain.headers["x-request-id"])
    assert row["trace"] is False and row["request"] is None and row["response"] is None
    row = wait_for_row(gateway.url, traced.headers["x-request-id"])
    assert row["request"]["messages"] == [{"role": "user", "content": "traced prompt"}]
    # the parameters as sent, without Lunos's own fields
    assert row["request"]["params"] == {"model": ask("x")["model"], "temperature": 0.5}
    assert row["response"]["content"] == "You said: traced prompt"
    assert traced.json()["choices"][0]["message"]["content"] == row["response"]["content"]
    assert row["response"]["finish_reason"] == "stop"
    assert row["usage"]["total_tokens"] > 0


def test_traced_stream_keeps_the_streamed_output(gateway, upstreams):
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", headers=MASTER, timeout=10,
                      json=ask("call get_weather", stream=True, observability=True, tools=[
                          {"type": "function", "function": {"name": "get_weather", "parameters": {
                              "type": "object", "properties": {"location": {"type": "string"}}}}}])) as s:
        s.read()
    row = wait_for_row(gateway.url, s.headers["x-request-id"])
    (call,) = row["response"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    assert row["response"]["finish_reason"] == "tool_calls"


def test_a_sqlite_home_backed_up_while_running_restores_with_its_traces(standins, tmp_path):
    """docs/configuration.md, *Backup and restore*: the database by SQLite's online backup,
    then the trace files; a gateway started on the copy reads every trace back."""
    standins.reset()
    g = GatewayProcess(tmp_path / "home", standins.env()).start()
    backup = tmp_path / "backup"
    try:
        ids = []
        for i in range(30):
            body = ask(f"traced {i}", observability=True, stream=i % 2 == 1)
            r = httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER, json=body, timeout=10)
            ids.append(r.headers["x-request-id"])
        wait_for_row(g.url, ids[-1])
        before = {r["id"]: r for r in all_rows(g.url)}
        backup.mkdir(mode=0o700)
        subprocess.run(["sqlite3", str(g.home / "lunos.db"), f".backup '{backup / 'lunos.db'}'"],
                       check=True)
        subprocess.run(["cp", "-a", str(g.home / "lunos.db-traces"), str(backup)], check=True)
        httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER, timeout=10,
                   json=ask("after the backup", observability=True))
    finally:
        g.stop()
    restored = GatewayProcess(backup, standins.env()).start()
    try:
        after = {r["id"]: r for r in all_rows(restored.url)}
    finally:
        restored.stop()
    assert set(ids) <= set(after) and set(after) == set(before)
    for row_id in ids:
        assert after[row_id]["request"] == before[row_id]["request"] is not None
        assert after[row_id]["response"] == before[row_id]["response"] is not None
    assert after[ids[3]]["request"]["messages"][0]["content"] == "traced 3"


# ---------------------------------------------------------------- endpoint (SPEC §9, §12)
def other_door_row(row_id: str, app_id: str, endpoint: str, **fields) -> CallRecord:
    """A row as another front door's route records it (only chat serves requests yet)."""
    record = CallRecord(row_id, None, app_id, "anthropic/claude-haiku-4-5", endpoint=endpoint,
                        provider="anthropic", status=fields.pop("status", 200))
    record.tokens = TokenCounts(prompt=11, completion=4)
    record.cost = fields.pop("cost", 0.002)
    record.latency_ms = 40.0
    return record


def write_rows(url: str, records: list[CallRecord]) -> None:
    """Through the real history writer, into the running gateway's database."""
    async def run() -> None:
        store = Store.open(url)
        writer = HistoryWriter(store, interval=0.05)
        await writer.start()
        for record in records:
            writer.put(record)
        await writer.close()
        await store.close()
        assert writer.written == len(records)

    asyncio.run(run())


def test_logs_filter_and_usage_group_by_endpoint(gateway, upstreams):
    base, app = gateway.url, f"endpoint-{time.time_ns()}"
    chat = httpx.post(f"{base}/v1/chat/completions", headers={**MASTER, "x-app-id": app},
                      json=ask("hi"), timeout=10)
    chat_id = chat.headers["x-request-id"]
    assert wait_for_row(base, chat_id)["endpoint"] == "chat"
    write_rows(f"sqlite:///{gateway.home / 'lunos.db'}", [
        other_door_row(f"msg_{app}_1", app, "messages"),
        other_door_row(f"msg_{app}_2", app, "messages", status=529, cost=None),
        other_door_row(f"emb_{app}", app, "embeddings", cost=0.0001),
    ])
    one = httpx.get(f"{base}/v1/logs/msg_{app}_1", headers=MASTER).json()
    assert one["endpoint"] == "messages" and one["model"] == "anthropic/claude-haiku-4-5"
    assert {r["id"]: r["endpoint"] for r in all_rows(base, app_id=app)} == {
        chat_id: "chat", f"msg_{app}_1": "messages", f"msg_{app}_2": "messages",
        f"emb_{app}": "embeddings"}
    assert [r["id"] for r in all_rows(base, app_id=app, endpoint="messages")] == [
        f"msg_{app}_2", f"msg_{app}_1"]
    assert [r["id"] for r in all_rows(base, app_id=app, endpoint="chat")] == [chat_id]
    assert all_rows(base, app_id=app, endpoint="images") == []
    assert {r["endpoint"] for r in all_rows(base, endpoint="messages")} == {"messages"}
    usage = httpx.get(f"{base}/v1/usage", headers=MASTER,
                      params={"group_by": "endpoint,model", "app_id": app}).json()
    assert usage["group_by"] == ["endpoint", "model"]
    assert [(r["endpoint"], r["model"], r["requests"], r["errors"]) for r in usage["data"]] == [
        ("chat", "openai/gpt-4o", 1, 0), ("embeddings", "anthropic/claude-haiku-4-5", 1, 0),
        ("messages", "anthropic/claude-haiku-4-5", 2, 1)]
    assert usage["totals"]["requests"] == 4
    bad = httpx.get(f"{base}/v1/logs", headers=MASTER, params={"endpoint": "chat_completions"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "endpoint"
    assert all(name in bad.json()["error"]["message"] for name in ENDPOINTS)
    bad = httpx.get(f"{base}/v1/usage", headers=MASTER, params={"group_by": "endpoint,door"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"
    assert "endpoint" in bad.json()["error"]["message"]


def test_a_gateway_migrates_an_older_postgresql_history_to_endpoint(standins, tmp_path):
    """Rows written before `endpoint` existed read as chat once a gateway has started on
    the database; rows of other doors are told apart from then on."""
    standins.reset()

    async def as_the_version_before(url: str) -> None:
        store = Store.open(url)
        await store.migrate()
        async with store.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE lunos_requests DROP COLUMN endpoint"))
            await conn.execute(text("DELETE FROM lunos_migrations WHERE version = 5"))
            await conn.execute(insert(schema.requests).values(
                id="chatcmpl-before", app_id="old", model="openai/gpt-4o", status=200,
                created_at=946_684_800.0, day="2000-01-01", cost=0.5))
        await store.close()

    with database("postgresql", tmp_path) as url:
        asyncio.run(as_the_version_before(url))
        g = GatewayProcess(tmp_path / "gw", {**standins.env(), "LUNOS_DATABASE_URL": url}).start()
        try:
            old = wait_for_row(g.url, "chatcmpl-before")
            write_rows(url, [other_door_row("msg_after", "new", "messages")])
            new = httpx.get(f"{g.url}/v1/logs", headers=MASTER, params={"endpoint": "messages"}).json()
            usage = httpx.get(f"{g.url}/v1/usage", headers=MASTER, params={"group_by": "endpoint"}).json()
        finally:
            g.stop()
    assert old["endpoint"] == "chat" and old["usage"]["cost"] == 0.5
    assert [r["id"] for r in new["data"]] == ["msg_after"]
    assert [(r["endpoint"], r["requests"]) for r in usage["data"]] == [("chat", 1), ("messages", 1)]


# ---------------------------------------------------------------- tenants
def test_a_key_sees_only_its_own_rows(gateway, upstreams):
    base = gateway.url
    a, b = make_key(base, "tenant-a"), make_key(base, "tenant-b")
    ha, hb = {"authorization": f"Bearer {a['key']}"}, {"authorization": f"Bearer {b['key']}"}
    ids = {}
    for name, headers in (("a", ha), ("b", hb)):
        ids[name] = [httpx.post(f"{base}/v1/chat/completions", headers={**headers, "x-app-id": f"app-{name}"},
                                json=ask(f"from {name} {i}"), timeout=10).headers["x-request-id"] for i in range(3)]
    for row_id in ids["a"] + ids["b"]:
        wait_for_row(base, row_id)
    # by id
    for row_id in ids["b"]:
        r = httpx.get(f"{base}/v1/logs/{row_id}", headers=ha)
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert httpx.get(f"{base}/v1/logs/{ids['a'][0]}", headers=ha).json()["key_id"] == a["id"]
    # by listing, filter, paging, and a key_id parameter it may not use
    assert {r["id"] for r in all_rows(base, ha)} == set(ids["a"])
    assert all_rows(base, ha, app_id="app-b") == []
    assert all_rows(base, ha, key_id=b["id"]) and {r["key_id"] for r in all_rows(base, ha, key_id=b["id"])} == {a["id"]}
    paged = []
    page = httpx.get(f"{base}/v1/logs", headers=ha, params={"limit": 1}).json()
    while True:
        paged += [r["id"] for r in page["data"]]
        if not page["next_cursor"]:
            break
        page = httpx.get(f"{base}/v1/logs", headers=ha, params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert sorted(paged) == sorted(ids["a"])
    # usage: own only
    usage = httpx.get(f"{base}/v1/usage", headers=ha, params={"group_by": "app_id"}).json()
    assert [row["app_id"] for row in usage["data"]] == ["app-a"] and usage["totals"]["requests"] == 3
    # the master sees both, and can narrow to one key
    assert set(ids["a"] + ids["b"]) <= {r["id"] for r in all_rows(base)}
    assert {r["id"] for r in all_rows(base, key_id=b["id"])} == set(ids["b"])


def test_admin_routes_need_the_master_key(gateway):
    key = make_key(gateway.url, "not-admin")
    headers = {"authorization": f"Bearer {key['key']}"}
    assert httpx.get(f"{gateway.url}/admin/keys", headers=headers).status_code == 403
    assert httpx.post(f"{gateway.url}/admin/keys", headers=headers, json={"name": "x"}).status_code == 403
    assert httpx.delete(f"{gateway.url}/admin/keys/{key['id']}", headers=headers).status_code == 403
    assert httpx.get(f"{gateway.url}/admin/keys").status_code == 401


def test_key_lifecycle_over_http(gateway, upstreams):
    base = gateway.url
    created = make_key(base, "ci", budget_usd=5, rpm=60, tpm=1000)
    assert created["key"].startswith("sk-lunos-") and created["prefix"] == created["key"][: len(created["prefix"])]
    listed = httpx.get(f"{base}/admin/keys", headers=MASTER).json()["data"]
    entry = next(k for k in listed if k["id"] == created["id"])
    assert "key" not in entry and entry["budget_usd"] == 5 and entry["revoked_at"] is None
    headers = {"authorization": f"Bearer {created['key']}"}
    r = httpx.post(f"{base}/v1/chat/completions", headers=headers, json=ask("hi", max_tokens=50), timeout=10)
    assert r.status_code == 200
    revoked = httpx.delete(f"{base}/admin/keys/{created['id']}", headers=MASTER).json()
    assert revoked["revoked_at"] is not None
    r = httpx.post(f"{base}/v1/chat/completions", headers=headers, json=ask("hi"), timeout=10)
    assert r.status_code == 401  # at once, on this worker
    assert httpx.delete(f"{base}/admin/keys/key_nope", headers=MASTER).status_code == 404
    bad = httpx.post(f"{base}/admin/keys", headers=MASTER, json={"name": "", "rpm": -1})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "name"


def test_model_allow_list_and_expiry(gateway, upstreams):
    base = gateway.url
    limited = make_key(base, "limited", allowed_models=["openai/gpt-4o"])
    headers = {"authorization": f"Bearer {limited['key']}"}
    assert httpx.post(f"{base}/v1/chat/completions", headers=headers, json=ask("hi"), timeout=10).status_code == 200
    r = httpx.post(f"{base}/v1/chat/completions", headers=headers,
                   json={**ask("hi"), "model": "anthropic/claude-haiku-4-5"}, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["param"] == "model"
    r = httpx.post(f"{base}/v1/chat/completions", headers=headers, timeout=10,
                   json=ask("hi", models=["anthropic/claude-haiku-4-5"]))
    assert r.status_code == 403  # a fallback outside the list is refused too
    expired = make_key(base, "expired", expires_at="2020-01-01T00:00:00Z")
    r = httpx.post(f"{base}/v1/chat/completions", headers={"authorization": f"Bearer {expired['key']}"},
                   json=ask("hi"), timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "expired_api_key"


# ---------------------------------------------------------------- several workers / gateways
def test_revocation_reaches_another_gateway_within_two_seconds(standins, tmp_path):
    """Two gateways on one PostgreSQL database: a key revoked through one is refused by the
    other within the stated bound (key sync interval 1 s + one reload)."""
    with database("postgresql", tmp_path) as url:
        env = {**standins.env(), "LUNOS_DATABASE_URL": url}
        one = GatewayProcess(tmp_path / "one", env).start()
        two = GatewayProcess(tmp_path / "two", env).start()
        try:
            key = make_key(one.url, "shared")
            headers = {"authorization": f"Bearer {key['key']}"}
            deadline = time.monotonic() + 2.0
            while httpx.get(f"{two.url}/v1/logs", headers=headers).status_code != 200:
                assert time.monotonic() < deadline, "a new key did not reach the other gateway"
                time.sleep(0.05)
            httpx.delete(f"{one.url}/admin/keys/{key['id']}", headers=MASTER).raise_for_status()
            revoked_at = time.monotonic()
            while httpx.get(f"{two.url}/v1/logs", headers=headers).status_code != 401:
                assert time.monotonic() - revoked_at < 2.0, "revocation did not reach the other gateway"
                time.sleep(0.05)
        finally:
            one.stop()
            two.stop()


# ---------------------------------------------------------------- one bad row
def test_a_nul_in_a_model_id_stops_no_history_on_postgresql(standins, tmp_path):
    """PostgreSQL refuses a NUL in text: the row is cleaned, and every later row is written."""
    standins.reset()
    with database("postgresql", tmp_path) as url:
        g = GatewayProcess(tmp_path / "gw", {**standins.env(), "LUNOS_DATABASE_URL": url}).start()
        try:
            bad = httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER, timeout=10,
                             json={**ask("hi"), "model": "openai/gpt-4o\u0000"})
            ids = [bad.headers["x-request-id"]]
            for i in range(20):
                r = httpx.post(f"{g.url}/v1/chat/completions", headers=MASTER, json=ask(f"after {i}"),
                               timeout=10)
                assert r.status_code == 200, r.text
                ids.append(r.headers["x-request-id"])
            wait_for_row(g.url, ids[-1], within=5)
            rows = {r["id"]: r for r in all_rows(g.url)}
            metrics = httpx.get(f"{g.url}/metrics", timeout=5).text
        finally:
            g.stop()
    assert set(ids) <= set(rows) and len(rows) == 21
    assert "\x00" not in rows[ids[0]]["model"] and rows[ids[0]]["status"] == bad.status_code
    assert "lunos_history_rows_failed_total{" in metrics and "lunos_history_store_up{" in metrics
    failed = [line for line in metrics.splitlines()
              if line.startswith(("lunos_history_rows_failed_total{", "lunos_history_store_up{"))]
    assert [line.rsplit(" ", 1)[1] for line in failed] == ["0", "1"]


# ---------------------------------------------------------------- under load
async def _mixed_load(base: str, n: int) -> dict[str, int]:
    """n concurrent requests: JSON, streams, upstream failures and client disconnects."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    outcome = {"ok": 0, "failed": 0, "disconnected": 0}
    async with httpx.AsyncClient(base_url=base, headers=MASTER, timeout=60, limits=limits) as client:
        async def one(i: int) -> None:
            kind = i % 10
            if kind in (0, 1, 2, 3):
                r = await client.post("/v1/chat/completions", json=ask(f"json {i}"))
                outcome["ok" if r.status_code == 200 else "failed"] += 1
            elif kind in (4, 5, 6):
                async with client.stream("POST", "/v1/chat/completions",
                                         json=ask(f"stream {i}", stream=True)) as s:
                    await s.aread()
                outcome["ok"] += 1
            elif kind == 7:
                r = await client.post("/v1/chat/completions", json=ask(f"fail {i} [[status:400]]"))
                assert r.status_code == 400
                outcome["failed"] += 1
            elif kind == 8:  # gone during a slow non-streaming call
                try:
                    await client.post("/v1/chat/completions", json=ask(f"wait {i} [[delay:15]]"),
                                      timeout=httpx.Timeout(60, read=0.5))  # sent whole, then given up
                except httpx.TimeoutException:
                    outcome["disconnected"] += 1
            else:  # gone mid-stream
                async with client.stream("POST", "/v1/chat/completions",
                                         json=ask(f"slow {i} a b c d [[slow:1.5]]", stream=True)) as s:
                    async for _ in s.aiter_bytes():
                        break
                outcome["disconnected"] += 1

        await asyncio.gather(*(one(i) for i in range(n)))
    return outcome


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_1000_concurrent_requests_leave_1000_rows_and_exact_cost(standins, tmp_path, kind):
    standins.reset()
    with database(kind, tmp_path) as url:
        g = GatewayProcess(tmp_path / "gw", {**standins.env(), "LUNOS_DATABASE_URL": url}).start()
        try:
            outcome = asyncio.run(_mixed_load(g.url, 1000))
            assert sum(outcome.values()) == 1000
            deadline = time.monotonic() + 30  # streams cut by their client end at their next event
            while len(rows := all_rows(g.url)) < 1000 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            g.stop()
    assert len(rows) == 1000 and len({r["id"] for r in rows}) == 1000
    statuses = [r["status"] for r in rows]
    assert statuses.count(499) == 200 and statuses.count(400) == 100
    price = Catalog.load().get("openai/gpt-4o")
    expected = sum(cost_of(TokenCounts.of(u), price) for u in standins.openai.billed)
    assert len(standins.openai.billed) == 700
    assert sum(r["usage"]["cost"] or 0 for r in rows) == pytest.approx(expected, rel=1e-9)


def test_sigterm_under_load_loses_no_row(standins, tmp_path):
    standins.reset()
    g = GatewayProcess(tmp_path / "gw", standins.env()).start()
    answered: list[str] = []
    after_signal: list[str] = []  # answered after SIGTERM: in flight when it came
    signalled = asyncio.Event()

    async def load() -> None:
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
        async with httpx.AsyncClient(base_url=g.url, headers=MASTER, timeout=30, limits=limits) as client:
            async def one(i: int) -> None:
                await asyncio.sleep(i * 0.002)
                try:
                    r = await client.post("/v1/chat/completions", json=ask(f"load {i} [[delay:0.5]]"))
                except httpx.HTTPError:
                    return  # refused once shutdown began: never reached the gateway's app
                answered.append(r.headers["x-request-id"])
                if signalled.is_set():
                    after_signal.append(r.headers["x-request-id"])

            tasks = [asyncio.create_task(one(i)) for i in range(400)]
            # Signal once the stand-in holds enough requests (each waits 0.5 s there): on a
            # busy machine a fixed pause could come before the load did.
            for _ in range(200):
                if len(standins.openai.requests) >= 50:
                    break
                await asyncio.sleep(0.05)
            g.proc.send_signal(signal.SIGTERM)
            signalled.set()
            await asyncio.gather(*tasks)

    asyncio.run(load())
    assert g.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once shut down
    assert "Application shutdown complete" in g.log_path.read_text()
    assert len(after_signal) >= 10  # the load really was in flight when the signal came
    with sqlite3.connect(g.home / "lunos.db") as db:
        stored = {row[0] for row in db.execute("SELECT id FROM lunos_requests")}
    assert set(answered) <= stored
    assert len(stored) <= 400


def test_no_secret_reaches_the_database_or_the_logs(standins, tmp_path):
    standins.reset()
    g = GatewayProcess(tmp_path / "gw", standins.env()).start()
    try:
        key = make_key(g.url, "secret-holder")
        for headers in (MASTER, {"authorization": f"Bearer {key['key']}"}):
            for body in (ask("hi", observability=True), ask("x [[status:401]]", observability=True),
                         {**ask("hi", observability=True), "model": "anthropic/claude-haiku-4-5"},
                         {**ask("hi", observability=True), "model": "google/gemini-2.5-flash", "stream": True}):
                httpx.post(f"{g.url}/v1/chat/completions", headers=headers, json=body, timeout=30)
        httpx.post(f"{g.url}/v1/chat/completions", headers={"authorization": "Bearer sk-lunos-wrong-key"},
                   json=ask("hi"), timeout=10)
        time.sleep(0.5)
    finally:
        g.stop()
    secrets = [MASTER_KEY, key["key"], "sk-openai-test", "sk-ant-test", "gm-test", "sk-lunos-wrong-key",
               "Bearer "]
    files = [p for p in g.home.rglob("*") if p.is_file() and p.name != "master_key"]
    assert any(p.name == "lunos.db" for p in files) and g.log_path in files
    assert any(p.suffix == ".trace" for p in files)  # the traces' payloads are searched too
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret!r} found in {path.name}"

"""The store, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from sqlalchemy import insert, inspect, text

from lunos.gateway.auth import Authenticator
from lunos.gateway.errors import GatewayError
from lunos.gateway.keys import hash_key
from lunos.gateway.records import CallRecord
from lunos.gateway.store import HistoryWriter, KeySync, Store, row_values, schema
from lunos.gateway.store.rows import COUNT_MAX
from lunos.gateway.store.sqlite_rows import PAGE_SIZE
from lunos.gateway.usage import TokenCounts
from tests.databases import database


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request, tmp_path):
    with database(request.param, tmp_path) as url:
        s = Store.open(url)
        await s.migrate()
        yield s
        await s.close()


def record(i: int, key_id: str | None = "key_a", **kw) -> CallRecord:
    r = CallRecord(f"chatcmpl-{i:04d}", key_id, kw.pop("app_id", "app1"), kw.pop("model", "openai/gpt-4o"))
    r.created_at = kw.pop("created_at", 1_700_000_000.0 + i)
    r.status = kw.pop("status", 200)
    r.provider = "openai"
    r.tokens = TokenCounts(prompt=10, completion=5, cached=2)
    r.cost = kw.pop("cost", 0.001)
    r.latency_ms = 12.5
    for k, v in kw.items():
        setattr(r, k, v)
    return r


async def test_migrate_is_idempotent(store):
    assert await store.migrate() == []


async def rerun_migration(store, version: int, undo: str) -> None:
    """Put the database back as the step before `version` left it, then migrate again."""
    async with store.engine.begin() as conn:
        await conn.execute(text(undo))
        await conn.execute(text(f"DELETE FROM lunos_migrations WHERE version = {version}"))
    assert await store.migrate() == [version]


async def history_table(store, what: str) -> list[dict]:
    async with store.engine.connect() as conn:
        return await conn.run_sync(lambda c: getattr(inspect(c), what)("lunos_requests"))


async def test_migration_2_drops_the_day_index_of_an_older_database(store):
    await rerun_migration(store, 2, "CREATE INDEX ix_lunos_requests_day ON lunos_requests (day)")
    indexes = await history_table(store, "get_indexes")
    assert sorted(i["name"] for i in indexes) == ["ix_lunos_requests_created",
                                                  "ix_lunos_requests_key_created",
                                                  "ix_lunos_requests_replay",
                                                  "ix_lunos_requests_session"]


async def test_migration_3_adds_trace_ref_to_an_older_database(store):
    await rerun_migration(store, 3, "ALTER TABLE lunos_requests DROP COLUMN trace_ref")
    assert (await history_table(store, "get_columns"))[-1]["name"] == "trace_ref"


async def test_migration_8_adds_the_finding_columns_to_an_older_database(store):
    async with store.engine.begin() as conn:  # the database as the version before left it
        await conn.execute(text("DROP INDEX ix_lunos_requests_session"))
        await conn.execute(text("DROP INDEX ix_lunos_requests_replay"))
        for name in ("requested_model", "session_id", "replay_of", "search"):
            await conn.execute(text(f"ALTER TABLE lunos_requests DROP COLUMN {name}"))
        await conn.execute(text("DELETE FROM lunos_migrations WHERE version = 8"))
        await conn.execute(insert(schema.requests).values(  # a row written by that version
            id="chatcmpl-old8", app_id="app1", model="openai/gpt-4o", status=200,
            created_at=1_700_000_000.0, day="2023-11-14"))
    assert await store.migrate() == [8]
    names = {c["name"] for c in await history_table(store, "get_columns")}
    assert {"requested_model", "session_id", "replay_of", "search"} <= names
    assert {"ix_lunos_requests_session", "ix_lunos_requests_replay"} <= {
        i["name"] for i in await history_table(store, "get_indexes")}
    old = await store.get_log("chatcmpl-old8", None)
    assert old["requested_model"] == "openai/gpt-4o" and old["session_id"] is None
    await store.insert_rows([row_values(record(8, session_id="s1", requested_model="x/y"))])
    rows, _ = await store.list_logs(key_id=None, session_id="s1")
    assert [(r["id"], r["requested_model"]) for r in rows] == [("chatcmpl-0008", "x/y")]


async def test_migration_5_adds_endpoint_and_older_rows_read_as_chat(store):
    """A new database gets the column from step 1; an older one from step 5, the same."""
    column = lambda columns: {c["name"]: c for c in columns}["endpoint"]  # noqa: E731
    new = column(await history_table(store, "get_columns"))
    async with store.engine.begin() as conn:  # the database as the version before left it
        await conn.execute(text("ALTER TABLE lunos_requests DROP COLUMN endpoint"))
        await conn.execute(text("DELETE FROM lunos_migrations WHERE version = 5"))
        await conn.execute(insert(schema.requests).values(  # a row written by that version
            id="chatcmpl-old", app_id="app1", model="openai/gpt-4o", status=200,
            created_at=1_700_000_000.0, day="2023-11-14"))
    assert "endpoint" not in {c["name"] for c in await history_table(store, "get_columns")}
    assert await store.migrate() == [5]
    migrated = column(await history_table(store, "get_columns"))
    for got in (new, migrated):
        assert got["nullable"] is False and "'chat'" in str(got["default"]), got
    assert (await store.get_log("chatcmpl-old", None))["endpoint"] == "chat"
    await store.insert_rows([row_values(record(1, endpoint="messages"))])
    assert (await store.get_log("chatcmpl-0001", None))["endpoint"] == "messages"
    assert await store.migrate() == []


async def test_keys_are_hashed_shown_once_and_revocable(store):
    row, raw = await store.create_key("ci", budget_usd=5.0, rpm=60, allowed_models=["openai/gpt-4o"])
    assert raw.startswith("sk-lunos-") and row["prefix"] == raw[: len(row["prefix"])]
    assert "key" not in row and "key_hash" not in row
    listed = await store.list_keys()
    assert [k["id"] for k in listed] == [row["id"]]
    assert listed[0]["budget_usd"] == 5.0 and listed[0]["allowed_models"] == ["openai/gpt-4o"]
    active = await store.active_keys()
    assert active[0]["key_hash"] == hash_key(raw)
    version = await store.keys_version()
    revoked = await store.revoke_key(row["id"])
    assert revoked["revoked_at"] is not None
    assert await store.keys_version() != version
    assert await store.active_keys() == []
    assert await store.revoke_key("key_missing") is None


async def test_master_key_only_hash_and_not_listed(store):
    await store.set_master("sk-lunos-the-master")
    assert await store.list_keys() == []
    assert await store.active_keys() == []


async def prefixes(store) -> dict[str, str]:
    async with store.engine.connect() as conn:
        return dict((await conn.execute(text("SELECT id, prefix FROM lunos_keys"))).all())


async def test_a_short_master_key_is_never_stored_whole(store):
    short = "sk-lunos-abcdef"  # 15 characters: kept whole as the prefix before
    await store.set_master(short)
    assert (await prefixes(store))["master"] == short[:7]
    await store.set_master("sk-lunos-test-master-key-0123456789")
    assert (await prefixes(store))["master"] == "sk-lunos-test-m"


async def test_migration_4_shortens_a_prefix_that_is_the_whole_key(store):
    row, _ = await store.create_key("generated")
    short = "my-master-key-15"
    async with store.engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO lunos_keys (id, name, key_hash, prefix, is_master, created_at, spend_usd) "
            f"VALUES ('master', 'master', '{hash_key(short)}', '{short}', true, 0, 0)"))
    await rerun_migration(store, 4, "SELECT 1")
    assert await prefixes(store) == {"master": short[:7], row["id"]: row["prefix"]}


async def test_a_new_sqlite_database_is_private(tmp_path):
    """Its directory 0700; the database, its -wal and -shm files and trace files 0600."""
    home = tmp_path / "home"
    store = Store.open(f"sqlite:///{home}/lunos.db")
    try:
        await store.migrate()
        await store.insert_rows([row_values(record(1, trace=True))])
        made = list(home.rglob("*"))
        assert {p.name for p in made} >= {"lunos.db", "lunos.db-wal", "lunos.db-shm", "lunos.db-traces"}
        for p in [home, *made]:
            assert p.stat().st_mode & 0o777 == (0o700 if p.is_dir() else 0o600), p.name
    finally:
        await store.close()


async def test_rows_round_trip_and_spend(store):
    row, _ = await store.create_key("a")
    await store.insert_rows([row_values(record(1, row["id"], cost=0.25)),
                             row_values(record(2, row["id"], cost=0.5))])
    entry = await store.get_log("chatcmpl-0001", None)
    assert entry["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                              "cached_tokens": 2, "cache_write_tokens": 0, "reasoning_tokens": 0,
                              "cost": 0.25}
    assert entry["created_at"].endswith("Z") and entry["request"] is None
    keys = await store.list_keys()
    assert keys[0]["spend_usd"] == pytest.approx(0.75)


async def test_trace_payload_kept_only_when_traced(store):
    traced = record(1, trace=True, request={"messages": [{"role": "user", "content": "hi"}]},
                    response={"content": "hello"})
    untraced = record(2, request={"messages": ["should not be stored"]})
    await store.insert_rows([row_values(traced), row_values(untraced)])
    assert (await store.get_log("chatcmpl-0001", None))["request"]["messages"][0]["content"] == "hi"
    assert (await store.get_log("chatcmpl-0002", None))["request"] is None


AWKWARD = 'quote " backslash \\ newline \n tab \t nul-ish \x01 é 漢字 🚀 </script> \u2028'


async def test_awkward_values_round_trip_exactly(store):
    """Every kind of value the history holds comes back unchanged."""
    r = record(1, app_id=AWKWARD[:200], trace=True, error=AWKWARD, cost=0.1 + 0.2,
               request={"messages": [{"role": "user", "content": AWKWARD}]},
               response={"content": AWKWARD, "finish_reason": None})
    r.latency_ms, r.ttft_ms, r.stream = 1e-7, None, True
    r.tokens = TokenCounts(prompt=2**31 - 1, completion=0, reasoning=3)
    await store.insert_rows([row_values(r), row_values(record(2, key_id=None, cost=None))])
    got = await store.get_log("chatcmpl-0001", None)
    assert got["app_id"] == AWKWARD[:200] and got["error"] == AWKWARD
    assert got["request"]["messages"][0]["content"] == AWKWARD
    assert got["response"] == {"content": AWKWARD, "finish_reason": None}
    assert got["usage"]["cost"] == 0.1 + 0.2 and got["usage"]["prompt_tokens"] == 2**31 - 1
    assert got["usage"]["reasoning_tokens"] == 3
    assert got["latency_ms"] == 1e-7 and got["ttft_ms"] is None and got["stream"] is True
    other = await store.get_log("chatcmpl-0002", None)
    assert other["key_id"] is None and other["usage"]["cost"] is None and other["stream"] is False


async def test_a_string_that_is_not_utf8_does_not_block_the_batch(store):
    bad = "lone surrogate \ud800 here"  # no database stores it: it is written as '?'
    await store.insert_rows([row_values(record(1, error=bad)), row_values(record(2))])
    assert (await store.get_log("chatcmpl-0001", None))["error"] == "lone surrogate ? here"
    assert (await store.get_log("chatcmpl-0002", None))["status"] == 200


async def test_nul_and_absurd_counts_are_cleaned_before_they_reach_the_database(store):
    """PostgreSQL refuses a NUL in text; SQLite an integer past 2**63, PostgreSQL past 2**31."""
    r = record(1, model="openai/gpt\x00-4o", app_id="a\x00pp", error="bad \x00 model")
    r.tokens = TokenCounts(prompt=2**70, completion=-5, cached=2**63, reasoning=7)
    await store.insert_rows([row_values(r), row_values(record(2, model="other"))])
    got = await store.get_log("chatcmpl-0001", None)
    assert (got["model"], got["app_id"], got["error"]) == ("openai/gpt-4o", "app", "bad  model")
    assert got["usage"]["prompt_tokens"] == COUNT_MAX and got["usage"]["completion_tokens"] == 0
    assert got["usage"]["cached_tokens"] == COUNT_MAX and got["usage"]["reasoning_tokens"] == 7
    rows, _ = await store.list_logs(key_id=None, model="openai/gpt\x00-4o")  # no 500 either
    assert [row["id"] for row in rows] == ["chatcmpl-0001"]


def refused_row(store, i: int, cost: float = 0.001):
    """A row with a value cleaning would have caught, as if one slipped through."""
    row = row_values(record(i, cost=cost))
    if store.is_sqlite:
        return row._replace(prompt_tokens=2**64)
    return row._replace(model="nul \x00 model")


async def test_a_row_the_database_refuses_is_set_aside_and_the_rest_written(store, tmp_path):
    key, _ = await store.create_key("k")
    failed = tmp_path / "history-failed.jsonl"
    writer = HistoryWriter(store, interval=0.05, failed_rows=failed)
    rows = [row_values(record(i, key["id"], cost=0.5)) for i in range(40)]
    rows[17] = refused_row(store, 17, cost=0.5)._replace(key_id=key["id"])
    writer.queue.extend(rows)
    await writer.start()
    writer.put(record(40, key["id"], cost=0.5))
    await writer.close()
    stored, _ = await store.list_logs(key_id=None, limit=100)
    assert sorted(r["id"] for r in stored) == sorted(f"chatcmpl-{i:04d}" for i in range(41) if i != 17)
    assert (writer.written, writer.failed, writer.depth, writer.store_ok) == (40, 1, 0, True)
    lines = failed.read_text().splitlines()
    assert len(lines) == 1 and failed.stat().st_mode & 0o777 == 0o600
    entry = json.loads(lines[0])
    assert entry["row"]["id"] == "chatcmpl-0017" and entry["error"] and entry["failed_at"]
    assert (await store.get_key(key["id"]))["spend_usd"] == pytest.approx(41 * 0.5)  # served


async def test_a_store_that_is_down_keeps_the_rows_queued_not_set_aside(store, tmp_path):
    async def down(rows):
        raise OSError("connection refused")

    store.insert_rows = down
    writer = HistoryWriter(store, interval=0.05, failed_rows=tmp_path / "failed.jsonl")
    for i in range(5):
        writer.put(record(i))
    assert not await writer._drain()
    assert (writer.depth, writer.failed, writer.store_ok) == (5, 0, False)
    assert not (tmp_path / "failed.jsonl").exists()


async def test_a_key_sees_only_its_own_rows(store):
    await store.insert_rows([row_values(record(i, "key_a" if i % 2 else "key_b")) for i in range(10)])
    assert await store.get_log("chatcmpl-0002", "key_a") is None
    assert (await store.get_log("chatcmpl-0001", "key_a"))["key_id"] == "key_a"
    rows, _ = await store.list_logs(key_id="key_a", limit=100)
    assert {r["key_id"] for r in rows} == {"key_a"} and len(rows) == 5


async def test_cursor_pagination_walks_every_row_once(store):
    rows = [row_values(record(i)) for i in range(23)]
    rows[5] = rows[5]._replace(created_at=rows[6].created_at)  # equal timestamps page too
    await store.insert_rows(rows)
    seen, cursor = [], None
    while True:
        page, cursor = await store.list_logs(key_id="key_a", limit=5, cursor=cursor)
        seen += [r["id"] for r in page]
        if cursor is None:
            break
    assert sorted(seen) == sorted(r[0] for r in rows) and len(seen) == 23
    with pytest.raises(GatewayError):
        await store.list_logs(key_id=None, cursor="garbage!")


async def test_filters(store):
    await store.insert_rows([
        row_values(record(1, model="openai/gpt-4o", app_id="web")),
        row_values(record(2, model="anthropic/claude-haiku-4-5", app_id="web", status=502)),
        row_values(record(3, model="openai/gpt-4o", app_id="cli")),
    ])
    ids = lambda rows: sorted(r["id"] for r in rows[0])  # noqa: E731
    assert ids(await store.list_logs(key_id=None, model="openai/gpt-4o")) == ["chatcmpl-0001", "chatcmpl-0003"]
    assert ids(await store.list_logs(key_id=None, app_id="web")) == ["chatcmpl-0001", "chatcmpl-0002"]
    assert ids(await store.list_logs(key_id=None, status="error")) == ["chatcmpl-0002"]
    assert ids(await store.list_logs(key_id=None, since=1_700_000_002.0)) == ["chatcmpl-0002", "chatcmpl-0003"]
    assert ids(await store.list_logs(key_id=None, until=1_700_000_002.0)) == ["chatcmpl-0001"]


async def test_usage_by_day_model_app(store):
    day = 86400
    await store.insert_rows([
        row_values(record(1, created_at=1_700_000_000.0, cost=0.1)),
        row_values(record(2, created_at=1_700_000_100.0, cost=0.2)),
        row_values(record(3, created_at=1_700_000_000.0 + day, cost=0.3, model="google/gemini-2.5-flash")),
        row_values(record(4, key_id="key_b", cost=5.0)),
    ])
    rows = await store.usage(key_id="key_a")
    assert [(r["day"], r["model"], r["requests"], round(r["cost"], 6)) for r in rows] == [
        ("2023-11-14", "openai/gpt-4o", 2, 0.3),
        ("2023-11-15", "google/gemini-2.5-flash", 1, 0.3),
    ]
    assert rows[0]["prompt_tokens"] == 20 and rows[0]["total_tokens"] == 30
    by_app = await store.usage(key_id=None, group_by=("app_id",))
    assert by_app == [{**by_app[0], "app_id": "app1", "requests": 4}]


async def test_endpoint_is_kept_filtered_and_grouped(store):
    """Rows of every front door through the real writer: `endpoint` reads back as written,
    filters the list and groups usage; a record that does not set it is chat."""
    writer = HistoryWriter(store, interval=0.05)
    await writer.start()
    writer.put(record(1, cost=0.1))
    writer.put(record(2, endpoint="messages", cost=0.25))
    writer.put(record(3, endpoint="messages", cost=0.5, status=502))
    writer.put(record(4, endpoint="embeddings", cost=0.01, key_id="key_b"))
    await writer.close()
    assert writer.written == 4
    rows, _ = await store.list_logs(key_id=None)
    assert {r["id"]: r["endpoint"] for r in rows} == {
        "chatcmpl-0001": "chat", "chatcmpl-0002": "messages", "chatcmpl-0003": "messages",
        "chatcmpl-0004": "embeddings"}
    messages, _ = await store.list_logs(key_id=None, endpoint="messages")
    assert [r["id"] for r in messages] == ["chatcmpl-0003", "chatcmpl-0002"]
    assert (await store.list_logs(key_id="key_b", endpoint="messages"))[0] == []
    assert (await store.list_logs(key_id=None, endpoint="messages", status="error"))[0][0]["id"] == "chatcmpl-0003"
    by_endpoint = await store.usage(key_id=None, group_by=("endpoint",))
    assert [(r["endpoint"], r["requests"], r["errors"], r["cost"]) for r in by_endpoint] == [
        ("chat", 1, 0, 0.1), ("embeddings", 1, 0, 0.01), ("messages", 2, 1, 0.75)]
    by_both = await store.usage(key_id="key_a", group_by=("endpoint", "model"))
    assert [(r["endpoint"], r["model"], r["requests"]) for r in by_both] == [
        ("chat", "openai/gpt-4o", 1), ("messages", "openai/gpt-4o", 2)]


async def test_usage_counts_cache_hits_lookups_and_savings(store):
    """Hits and misses are lookups, rows without `cache` are not; the saving is summed from
    the hits' `extra.cache_saved_usd` (JSON text), per group and on both databases."""
    await store.insert_rows([row_values(r) for r in (
        record(1, cache="hit", cost=0.0, extra={"cache_saved_usd": 0.0125}),
        record(2, cache="hit", cost=0.0, extra={"cache_saved_usd": 0.0075, "cache_similarity": 0.93}),
        record(3, cache="miss", cost=0.0125),
        record(4, cost=0.5, extra={"passthrough": True}),  # did not ask the cache
        record(5, cache="hit", cost=0.0, model="google/gemini-2.5-flash"),  # an entry with no price
        record(6, cache="miss", cost=0.002, model="google/gemini-2.5-flash", status=502),
        record(7, cache="hit", cost=0.0, key_id="key_b", extra={"cache_saved_usd": 1.0}),
    )])
    by_model = await store.usage(key_id="key_a", group_by=("model",))
    assert [(r["model"], r["requests"], r["cache_hits"], r["cache_lookups"], r["cache_saved_usd"])
            for r in by_model] == [("google/gemini-2.5-flash", 2, 1, 2, 0.0),
                                   ("openai/gpt-4o", 4, 2, 3, 0.02)]
    (everyone,) = await store.usage(key_id=None, group_by=("app_id",))
    assert (everyone["cache_hits"], everyone["cache_lookups"], everyone["cache_saved_usd"]) == (4, 6, 1.02)
    (uncached,) = await store.usage(key_id="key_a", group_by=("model",), model="openai/gpt-4o",
                                    since=1_700_000_004.0, until=1_700_000_005.0)
    assert (uncached["requests"], uncached["cache_hits"], uncached["cache_lookups"],
            uncached["cache_saved_usd"]) == (1, 0, 0, 0.0)


async def test_purge_traces_keeps_rows(store):
    old = record(1, trace=True, request={"m": 1}, response={"c": 2}, created_at=time.time() - 40 * 86400)
    new = record(2, trace=True, request={"m": 1}, response={"c": 2}, created_at=time.time())
    await store.insert_rows([row_values(old), row_values(new)])
    assert await store.purge_traces(time.time() - 30 * 86400) == 1
    assert (await store.get_log("chatcmpl-0001", None))["request"] is None
    assert (await store.get_log("chatcmpl-0002", None))["request"] == {"m": 1}
    rows, _ = await store.list_logs(key_id=None)
    assert [(r["id"], r["trace"], r["response"]) for r in rows] == [
        ("chatcmpl-0002", True, {"c": 2}), ("chatcmpl-0001", True, None)]


async def test_sqlite_keeps_trace_payloads_in_files_beside_the_database(tmp_path):
    """Written once, outside the WAL and the table's pages; the row holds a reference."""
    store = Store.open(f"sqlite:///{tmp_path}/lunos.db")
    await store.migrate()
    try:
        traced = record(1, trace=True, request=b'{"messages":[{"role":"user","content":"PAYLOAD-IN"}]}',
                        response={"content": "PAYLOAD-OUT", "finish_reason": "stop"})
        await store.insert_rows([row_values(traced), row_values(record(2))])
        await store.insert_rows([row_values(record(3, trace=True, request={"m": 3}))])
        got = await store.get_log("chatcmpl-0001", None)
        assert got["request"]["messages"][0]["content"] == "PAYLOAD-IN"
        assert got["response"] == {"content": "PAYLOAD-OUT", "finish_reason": "stop"}
        assert (await store.get_log("chatcmpl-0003", None))["request"] == {"m": 3}
        assert (await store.get_log("chatcmpl-0003", None))["response"] is None
        async with store.engine.connect() as conn:
            refs = (await conn.execute(text(
                "SELECT request, response, trace_ref FROM lunos_requests ORDER BY id"))).all()
        assert refs[0][:2] == (None, None) and refs[0][2].endswith(".trace:0:53:48")
        assert refs[1] == (None, None, None)
        files = list((tmp_path / "lunos.db-traces").iterdir())
        assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
        assert b"PAYLOAD-IN" in files[0].read_bytes()
    finally:
        await store.close()
    for path in tmp_path.glob("lunos.db*"):
        if path.is_file():
            assert b"PAYLOAD" not in path.read_bytes(), path.name


async def test_a_new_sqlite_database_gets_large_pages_and_an_older_one_keeps_its_own(tmp_path):
    """16 KiB pages make a history batch's commit cheaper; SQLite cannot change the page
    size of a database that has tables, and the pragma must not break one."""
    older = tmp_path / "older.db"
    conn = sqlite3.connect(older)
    conn.execute("CREATE TABLE t (x)")  # made with SQLite's default pages
    conn.close()
    for path, expected in ((tmp_path / "lunos.db", PAGE_SIZE), (older, 4096)):
        store = Store.open(f"sqlite:///{path}")
        await store.migrate()
        try:
            await store.insert_rows([row_values(record(1))])
            assert (await store.get_log("chatcmpl-0001", None))["status"] == 200
        finally:
            await store.close()
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA page_size").fetchone()[0] == expected
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


async def test_rows_traced_before_trace_files_still_read_their_payloads(store):
    await store.insert_rows([row_values(record(1, trace=True))])
    async with store.engine.begin() as conn:  # as a row of migration 2's time was written
        await conn.execute(text("UPDATE lunos_requests SET trace_ref = NULL, "
                                "request = '{\"model\":\"m\",\"messages\":[]}', "
                                "response = '{\"content\":\"old\"}'"))
    got = await store.get_log("chatcmpl-0001", None)
    assert got["request"] == {"messages": [], "params": {"model": "m"}}
    assert got["response"] == {"content": "old"}


async def test_writer_batches_and_flushes_on_close(store):
    writer = HistoryWriter(store, batch=7, max_batch=7, interval=0.05)
    await writer.start()
    for i in range(50):
        writer.put(record(i))
    await writer.close()
    rows, _ = await store.list_logs(key_id=None, limit=500)
    assert len(rows) == 50 and writer.written == 50 and writer.depth == 0


async def test_writer_catches_up_in_larger_transactions(store):
    """Rows that queued up while the writer waited go out in transactions of up to
    `max_batch`, not `batch`: a writer that fell behind catches up."""
    sizes = []
    insert_rows = store.insert_rows

    async def counted(rows):
        sizes.append(len(rows))
        await insert_rows(rows)

    store.insert_rows = counted
    writer = HistoryWriter(store, batch=64, max_batch=1000, interval=0.05)
    for i in range(2500):
        writer.put(record(i))
    await writer.start()
    await writer.close()
    assert sizes == [1000, 1000, 500]
    rows, _ = await store.list_logs(key_id=None, limit=500)
    assert len(rows) == 500 and writer.written == 2500


async def test_writer_bounded_queue_counts_drops(store):
    writer = HistoryWriter(store, max_queue=3)
    for i in range(5):
        writer.put(record(i))
    assert writer.depth == 3 and writer.dropped == 2


async def test_writer_survives_a_replayed_batch(store):
    await store.insert_rows([row_values(record(1))])
    writer = HistoryWriter(store, interval=0.05)
    await writer.start()
    writer.put(record(1))  # already written: a lost commit acknowledgement
    writer.put(record(2))
    await writer.close()
    rows, _ = await store.list_logs(key_id=None)
    assert sorted(r["id"] for r in rows) == ["chatcmpl-0001", "chatcmpl-0002"]


async def test_key_sync_picks_up_changes_from_elsewhere(store):
    auth = Authenticator("sk-lunos-master")
    sync = KeySync(store, auth, interval=0.05)
    await sync.start()
    row, raw = await store.create_key("elsewhere")  # as another worker would
    for _ in range(100):
        try:
            principal = auth.authenticate(f"Bearer {raw}".encode())
            break
        except GatewayError:
            import asyncio

            await asyncio.sleep(0.02)
    assert principal.key_id == row["id"]
    await store.revoke_key(row["id"])
    for _ in range(100):
        try:
            auth.authenticate(f"Bearer {raw}".encode())
        except GatewayError as exc:
            assert exc.status == 401
            break
        import asyncio

        await asyncio.sleep(0.02)
    else:
        pytest.fail("revocation never reached the key table")
    await sync.close()


def test_sqlite_batches_use_few_statement_shapes():
    from lunos.gateway.store.sqlite_rows import ROWS_PER_STATEMENT, statement_sizes

    shapes = set()
    for n in range(1, 3 * ROWS_PER_STATEMENT + 2):
        sizes = statement_sizes(n)
        assert sum(sizes) == n and all(0 < s <= ROWS_PER_STATEMENT for s in sizes)
        shapes.update(sizes)
    assert len(shapes) <= 9

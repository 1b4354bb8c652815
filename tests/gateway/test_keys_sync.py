"""The key table: revocations stay, new keys work at once, the sync outlives errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import openai
import pytest

from lunos.gateway.auth import Authenticator
from lunos.gateway.keys import hash_key
from lunos.gateway.store import KeySync, Store
from lunos.gateway.store import keysync as keysync_module
from tests.databases import database
from tests.gateway_process import MASTER_KEY, GatewayProcess

HELLO = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    with database(request.param, tmp_path) as url:
        yield url


def run(url: str, scenario) -> None:
    """Run `scenario(store)` on a migrated store, all in one event loop."""
    async def main():
        store = Store.open(url)
        try:
            await store.migrate()
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


def test_a_sync_that_started_before_a_revocation_does_not_undo_it(db_url):
    async def scenario(store):
        auth = Authenticator(MASTER_KEY)
        sync = KeySync(store, auth, interval=3600)
        row, raw = await store.create_key("victim")
        await sync.refresh()
        assert auth.authenticate(f"Bearer {raw}".encode()).key_id == row["id"]

        # A periodic sync reads the keys (the victim still active), then is slow to finish.
        real, gate, read = store.active_keys, asyncio.Event(), asyncio.Event()

        async def slow_active_keys():
            rows = await real()
            store.active_keys = real
            read.set()
            await gate.wait()
            return rows

        store.active_keys = slow_active_keys
        await store.create_key("another")  # a change, so the poll reloads
        poll = asyncio.create_task(sync.poll())
        await read.wait()
        # Meanwhile the key is revoked, as the admin route does it: store, then refresh.
        await store.revoke_key(row["id"])
        revoke = asyncio.create_task(sync.refresh())
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(poll, revoke)
        assert auth.by_hash(hash_key(raw)) is None
        assert await sync.lookup(hash_key(raw)) is None

    run(db_url, scenario)


def test_key_sync_survives_any_exception(db_url, caplog):
    async def scenario(store):
        auth = Authenticator(MASTER_KEY)
        failures = [RuntimeError("boom"), ValueError("bad row")]

        def on_load(rows):
            if failures and len(rows) > 0:
                raise failures.pop(0)

        sync = KeySync(store, auth, interval=0.01, on_load=on_load)
        await sync.start()
        try:
            _, raw = await store.create_key("k")
            for _ in range(1000):
                if auth.by_hash(hash_key(raw)) is not None and not failures:
                    break
                await asyncio.sleep(0.01)
            assert not failures  # both raised inside the sync loop
            assert auth.by_hash(hash_key(raw)) is not None  # and it went on
            assert not sync._task.done()
        finally:
            await sync.close()

    run(db_url, scenario)
    assert "key sync failed" in caplog.text


def test_unknown_keys_are_looked_up_once_then_remembered(db_url, monkeypatch):
    async def scenario(store):
        auth = Authenticator(MASTER_KEY)
        sync = KeySync(store, auth, interval=3600)
        await sync.refresh()
        reads = 0
        real = store.keys_version

        async def counted():
            nonlocal reads
            reads += 1
            return await real()

        store.keys_version = counted
        bad = hash_key("sk-lunos-not-a-key")
        results = await asyncio.gather(*(sync.lookup(bad) for _ in range(50)))
        assert results == [None] * 50 and reads == 1
        # A key made elsewhere (another worker, the CLI) is found on its first use.
        row, raw = await store.create_key("new")
        assert (await sync.lookup(hash_key(raw))).key_id == row["id"]
        # The memory of unknown keys is bounded.
        monkeypatch.setattr(keysync_module, "NEGATIVE_MAX", 10)
        for i in range(30):
            await sync.lookup(hash_key(f"bad-{i}"))
        assert len(sync._unknown) <= 10

    run(db_url, scenario)


def test_a_key_made_by_the_cli_works_at_once(standins, upstreams, tmp_path):
    home = tmp_path / "home"
    env = {**standins.env(), "LUNOS_KEY_SYNC_INTERVAL": "3600"}
    gw = GatewayProcess(home, env).start()
    try:
        created = subprocess.run(
            [sys.executable, "-m", "lunos.cli", "keys", "create", "--name", "fresh"],
            env={**os.environ, **env, "LUNOS_HOME": str(home)}, cwd=home,
            capture_output=True, text=True, check=True)
        key = json.loads(created.stdout)["key"]
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
        assert client.chat.completions.create(**HELLO).choices[0].message.content
        bad = openai.OpenAI(base_url=gw.url + "/v1", api_key=key + "x", max_retries=0)
        for _ in range(3):
            with pytest.raises(openai.AuthenticationError):
                bad.chat.completions.create(**HELLO)
    finally:
        gw.stop()


def test_a_key_revoked_under_a_stream_of_requests_stays_revoked(standins, tmp_path):
    """Four clients (the official openai SDK) keep calling with one key while the key table
    is reloaded every 50 ms; once the revocation has answered, no request succeeds again."""
    import threading
    import time

    import httpx

    standins.reset()
    env = {**standins.env(), "LUNOS_KEY_SYNC_INTERVAL": "0.05"}
    g = GatewayProcess(tmp_path / "gw", env).start()
    try:
        admin = {"Authorization": f"Bearer {MASTER_KEY}"}
        made = httpx.post(f"{g.url}/admin/keys", headers=admin, json={"name": "busy"}, timeout=10).json()
        client = openai.OpenAI(base_url=g.url + "/v1", api_key=made["key"], max_retries=0, timeout=30)
        outcomes: list[tuple[float, int]] = []  # (when the request was sent, status)
        stop = threading.Event()

        def call() -> None:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    client.chat.completions.create(**HELLO)
                    outcomes.append((sent, 200))
                except openai.APIStatusError as exc:
                    outcomes.append((sent, exc.status_code))

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        assert httpx.delete(f"{g.url}/admin/keys/{made['id']}", headers=admin, timeout=10).status_code == 200
        revoked = time.monotonic()
        time.sleep(1.5)  # some 30 key-table reloads
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        g.stop()
    before = [status for sent, status in outcomes if sent < revoked]
    after = [status for sent, status in outcomes if sent > revoked]
    assert 200 in before
    assert after and set(after) == {401}

"""Stored Responses-API responses (SPEC §9.2), on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from sqlalchemy import inspect, text

from lunos.gateway.store import Store, StoredResponse, StoreUnavailable
from tests.databases import database


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request, tmp_path):
    with database(request.param, tmp_path) as url:
        s = Store.open(url)
        await s.migrate()
        yield s
        await s.close()


def turn(n: int, previous: int | None = None, key_id: str = "key_a", **kw) -> StoredResponse:
    """The response `resp_<n>`, continuing `resp_<previous>`."""
    items = [{"id": f"msg_in_{n}", "type": "message", "role": "user",
              "content": [{"type": "input_text", "text": f"question {n}"}]}]
    response = {"id": f"resp_{n}", "object": "response", "status": "completed",
                "output": [{"id": f"msg_out_{n}", "type": "message", "role": "assistant",
                            "content": [{"type": "output_text", "text": f"answer {n}",
                                         "annotations": []}]}]}
    return StoredResponse(f"resp_{n}", key_id, kw.pop("created_at", 1_700_000_000.0 + n),
                          kw.pop("model", "openai/gpt-4o"),
                          None if previous is None else f"resp_{previous}",
                          kw.pop("input_items", items), kw.pop("response", response))


async def test_a_saved_response_reads_back_whole_for_its_key_only(store):
    saved = turn(1, input_items=[{"id": "msg_1", "type": "message", "role": "user",
                                  "content": "naïve \u0000 \U0001f600 \"quoted\""}])
    await store.save_response(saved)
    got = await store.get_response("resp_1", "key_a")
    assert got == saved
    assert got.created_at == saved.created_at and isinstance(got.response, dict)
    assert await store.get_response("resp_1", "key_b") is None
    assert await store.get_response("resp_1", "master") is None  # the master key included
    assert await store.get_response("resp_2", "key_a") is None


async def test_json_bytes_as_sent_are_stored_as_they_are(store):
    response = {"id": "resp_1", "output": [], "usage": {"cost": 0.00012}}
    await store.save_response(turn(1, input_items=orjson.dumps([{"id": "i", "type": "message"}]),
                                   response=orjson.dumps(response)))
    got = await store.get_response("resp_1", "key_a")
    assert got.response == response and got.input_items == [{"id": "i", "type": "message"}]


async def test_ids_no_response_can_have_are_not_found_not_refused(store):
    await store.save_response(turn(1))
    for odd in ("resp_\x001", "", "r" * 500, "resp_1\x00"):
        assert await store.get_response(odd, "key_a") is None
        assert await store.delete_response(odd, "key_a") is False
        assert await store.response_chain(odd, "key_a") == []


async def test_delete_is_per_key_and_once(store):
    await store.save_response(turn(1))
    assert await store.delete_response("resp_1", "key_b") is False
    assert await store.get_response("resp_1", "key_a") is not None
    assert await store.delete_response("resp_1", "key_a") is True
    assert await store.get_response("resp_1", "key_a") is None
    assert await store.delete_response("resp_1", "key_a") is False


async def test_a_duplicate_id_is_refused_as_the_store_failing(store):
    await store.save_response(turn(1))
    with pytest.raises(StoreUnavailable):
        await store.save_response(turn(1, model="other"))
    assert (await store.get_response("resp_1", "key_a")).model == "openai/gpt-4o"


async def test_saves_that_arrive_together_are_committed_together_each_readable_on_return(store):
    transactions = []
    insert = store._insert_responses

    async def counted(rows):
        transactions.append(len(rows))
        await insert(rows)

    store._response_saves._write = counted

    async def save_then_read(n):
        await store.save_response(turn(n))
        return await store.get_response(f"resp_{n}", "key_a")  # committed when save returns

    read = await asyncio.gather(*(save_then_read(n) for n in range(1, 41)))
    assert [r.id for r in read] == [f"resp_{n}" for n in range(1, 41)]
    assert sum(transactions) == 40
    assert len(transactions) < 40  # some went in one transaction


async def test_a_bad_row_in_a_group_fails_its_own_caller_only(store):
    await store.save_response(turn(1))
    outcomes = await asyncio.gather(store.save_response(turn(2)), store.save_response(turn(1, model="dup")),
                                    store.save_response(turn(3)), return_exceptions=True)
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], StoreUnavailable)
    assert (await store.get_response("resp_1", "key_a")).model == "openai/gpt-4o"
    assert await store.get_response("resp_2", "key_a") is not None
    assert await store.get_response("resp_3", "key_a") is not None


async def test_a_save_whose_caller_went_away_is_still_written(store):
    first = asyncio.ensure_future(store.save_response(turn(1)))
    second = asyncio.ensure_future(store.save_response(turn(2)))
    await asyncio.sleep(0)
    second.cancel()
    await first
    await store.save_response(turn(3))  # after the group that held resp_2
    assert await store.get_response("resp_2", "key_a") is not None


async def test_the_chain_follows_previous_ids_oldest_first(store):
    for n, previous in ((1, None), (2, 1), (3, 2), (4, 3)):
        await store.save_response(turn(n, previous))
    await store.save_response(turn(5, 2))  # a branch from turn 2
    chain = await store.response_chain("resp_4", "key_a")
    assert [r.id for r in chain] == ["resp_1", "resp_2", "resp_3", "resp_4"]
    assert chain[-1] == turn(4, 3)
    assert [r.id for r in await store.response_chain("resp_5", "key_a")] == ["resp_1", "resp_2", "resp_5"]
    assert [r.id for r in await store.response_chain("resp_1", "key_a")] == ["resp_1"]
    assert await store.response_chain("resp_4", "key_b") == []


async def test_the_chain_stops_at_a_missing_link_or_another_keys_response(store):
    await store.save_response(turn(1))
    await store.save_response(turn(2, 1, key_id="key_b"))  # another key's
    await store.save_response(turn(3, 2))
    await store.save_response(turn(4, 3))
    assert [r.id for r in await store.response_chain("resp_4", "key_a")] == ["resp_3", "resp_4"]
    await store.save_response(turn(6, 5))  # resp_5 was never stored (or was deleted)
    await store.save_response(turn(7, 6))
    assert [r.id for r in await store.response_chain("resp_7", "key_a")] == ["resp_6", "resp_7"]
    await store.delete_response("resp_3", "key_a")
    assert [r.id for r in await store.response_chain("resp_4", "key_a")] == ["resp_4"]


async def test_the_chain_is_bounded_to_its_newest_turns(store):
    for n in range(1, 31):
        await store.save_response(turn(n, n - 1 if n > 1 else None))
    chain = await store.response_chain("resp_30", "key_a", limit=10)
    assert [r.id for r in chain] == [f"resp_{n}" for n in range(21, 31)]
    assert len(await store.response_chain("resp_30", "key_a")) == 30
    assert [r.id for r in await store.response_chain("resp_30", "key_a", limit=1)] == ["resp_30"]


async def test_a_cycle_ends_at_the_bound(store):
    """No two responses can name each other through the door, but rows written otherwise
    must not make the query run forever."""
    await store.save_response(turn(1, 2))
    await store.save_response(turn(2, 1))
    chain = await store.response_chain("resp_2", "key_a", limit=5)
    assert [r.id for r in chain] == ["resp_2", "resp_1", "resp_2", "resp_1", "resp_2"]


async def test_purge_deletes_what_is_older_than_retention(store):
    now = time.time()
    await store.save_response(turn(1, created_at=now - 40 * 86400))
    await store.save_response(turn(2, 1, created_at=now - 10))
    assert await store.purge_responses(now - 30 * 86400) == 1
    assert await store.get_response("resp_1", "key_a") is None
    assert [r.id for r in await store.response_chain("resp_2", "key_a")] == ["resp_2"]
    assert await store.purge_responses(now - 30 * 86400) == 0


async def test_a_store_that_is_down_says_so():
    store = Store.open("postgresql://postgres@127.0.0.1:1/none")
    try:
        with pytest.raises(StoreUnavailable):
            await store.save_response(turn(1))
        with pytest.raises(StoreUnavailable):
            await store.get_response("resp_1", "key_a")
    finally:
        await store.close()


async def test_migration_6_adds_the_table_to_an_older_database(store):
    async def tables() -> dict[str, list[str]]:
        async with store.engine.connect() as conn:
            return await conn.run_sync(lambda c: {
                t: sorted(i["name"] for i in inspect(c).get_indexes(t))
                for t in inspect(c).get_table_names()})
    new = await tables()
    assert new["lunos_responses"] == ["ix_lunos_responses_created"]
    async with store.engine.begin() as conn:  # the database as version 5 left it
        await conn.execute(text("DROP TABLE lunos_responses"))
        await conn.execute(text("DELETE FROM lunos_migrations WHERE version = 6"))
    assert "lunos_responses" not in await tables()
    assert await store.migrate() == [6]
    assert await tables() == new
    await store.save_response(turn(1))
    assert (await store.get_response("resp_1", "key_a")).id == "resp_1"
    assert await store.migrate() == []

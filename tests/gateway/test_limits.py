"""Limit backends: a settlement Redis refuses is not lost; the shared file is one set of
counters for every process that opens it."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from lunos.gateway import limits as limits_module
from lunos.gateway.auth import Principal
from lunos.gateway.errors import GatewayError
from lunos.gateway.limits import RedisLimits, SharedLimits, Ticket, create_shared_file
from tests.standins.tcp_proxy import TcpProxy


def principal(**fields) -> Principal:
    return Principal(key_id="key-" + secrets.token_hex(4), name="limited", **fields)


def test_a_settlement_redis_refuses_is_retried_until_it_lands(monkeypatch):
    monkeypatch.setattr(limits_module, "SETTLE_RETRY_FIRST_DELAY", 0.05)
    proxy = TcpProxy("127.0.0.1", 6379).start()

    async def run():
        redis = RedisLimits(f"redis://127.0.0.1:{proxy.port}/0")
        who = principal(budget_usd=1.0)
        ticket = Ticket(who.key_id, cost=0.5)
        try:
            await redis.admit(who, ticket, 0.0)
            proxy.cut()
            await asyncio.sleep(0.1)
            await redis.settle(ticket, 10, 0.25)  # Redis is away: queued, not dropped
            assert len(redis.pending) == 1
            proxy.restore()
            for _ in range(200):
                if not redis.pending:
                    break
                await asyncio.sleep(0.05)
            assert not redis.pending and redis.unsettled == 0
            keys = RedisLimits._keys(who.key_id)
            assert float(await redis._redis.get(keys["spent"])) == 0.25
            assert await redis._redis.hlen(keys["reserved:amounts"]) == 0
            await redis.settle(ticket, 10, 0.25)  # settling again counts nothing twice
            assert float(await redis._redis.get(keys["spent"])) == 0.25
        finally:
            await redis.close()

    try:
        asyncio.run(run())
    finally:
        proxy.stop()


def test_a_settlement_still_pending_at_shutdown_is_counted_as_lost(monkeypatch):
    monkeypatch.setattr(limits_module, "SETTLE_RETRY_FIRST_DELAY", 10.0)
    proxy = TcpProxy("127.0.0.1", 6379).start()

    async def run():
        redis = RedisLimits(f"redis://127.0.0.1:{proxy.port}/0")
        who = principal(budget_usd=1.0)
        ticket = Ticket(who.key_id, cost=0.5)
        await redis.admit(who, ticket, 0.0)
        proxy.cut()
        await asyncio.sleep(0.1)
        await redis.settle(ticket, 10, 0.25)
        await redis.close()
        return redis.unsettled

    try:
        assert asyncio.run(run()) == 1
    finally:
        proxy.stop()


def test_processes_sharing_the_file_share_the_counters(tmp_path):
    path = str(tmp_path / "limits.db")
    create_shared_file(path)

    async def run():
        one, two = SharedLimits(path), SharedLimits(path)
        who = principal(rpm=3, budget_usd=1.0)
        admitted = 0
        for backend in (one, two, one, two, one):
            try:
                await backend.arrive(who)
                admitted += 1
            except GatewayError as exc:
                assert exc.status == 429 and int(exc.headers["retry-after"]) >= 1
        assert admitted == 3
        first, second = Ticket(who.key_id, cost=0.6), Ticket(who.key_id, cost=0.6)
        await one.admit(who, first, 0.0)
        with pytest.raises(GatewayError) as refused:
            await two.admit(who, second, 0.0)  # 0.6 reserved + 0.6 > 1.0
        assert refused.value.headers["retry-after"] == "1"  # a reservation may still free room
        await one.settle(first, 10, 0.3)
        await two.admit(who, second, 0.0)  # 0.3 spent + 0.6 fits
        await two.settle(second, 10, 0.3)
        third = Ticket(who.key_id, cost=0.6)
        with pytest.raises(GatewayError) as spent:
            await one.admit(who, third, 0.0)  # 0.6 spent + 0.6 > 1.0
        assert spent.value.code == "budget_exceeded"
        await one.close()
        await two.close()

    asyncio.run(run())

"""The Redis tpm window keeps its sum beside its entries: decisions stay exact as tickets
are reserved, settled and leave the window, and a window without a sum (made before the
sum existed) gets one from its entries."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from lunos.gateway import limits as limits_module
from lunos.gateway.auth import Principal
from lunos.gateway.errors import GatewayError
from lunos.gateway.limits import RedisLimits, Ticket

REDIS = "redis://127.0.0.1:6379/0"


def test_the_tpm_sum_follows_reservations_settlements_and_the_window(monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(limits_module.time, "time", lambda: clock[0])
    who = Principal(key_id="key-" + secrets.token_hex(4), name="tpm", tpm=100)

    async def run():
        redis = RedisLimits(REDIS)
        keys = redis._keys(who.key_id)

        async def used() -> int:
            return int(await redis._redis.get(keys["tpm:used"]))

        try:
            first = Ticket(who.key_id, tokens=60)
            await redis.admit(who, first, 0.0)
            assert await used() == 60
            with pytest.raises(GatewayError) as refused:  # 60 + 50 > 100
                await redis.admit(who, Ticket(who.key_id, tokens=50), 0.0)
            assert refused.value.status == 429
            await redis.settle(first, 20, 0.0)  # the real usage was less than reserved
            assert await used() == 20
            clock[0] += 30
            second = Ticket(who.key_id, tokens=80)
            await redis.admit(who, second, 0.0)  # 20 + 80 = 100: exactly the limit
            assert await used() == 100
            with pytest.raises(GatewayError):
                await redis.admit(who, Ticket(who.key_id, tokens=1), 0.0)
            clock[0] += 31  # the first ticket leaves the window, the second stays
            await redis.admit(who, Ticket(who.key_id, tokens=20), 0.0)
            assert await used() == 100
            # A window made before the sum key existed is summed once from its entries.
            await redis._redis.delete(keys["tpm:used"])
            with pytest.raises(GatewayError):
                await redis.admit(who, Ticket(who.key_id, tokens=1), 0.0)
            assert await used() == 100
            amounts = await redis._redis.hvals(keys["tpm:amounts"])
            assert sum(int(v) for v in amounts) == 100
        finally:
            await redis._redis.delete(*keys.values())
            await redis.close()

    asyncio.run(run())

"""Where cached answers live: Redis when `LUNOS_REDIS_URL` is set, else the database.

Both keep at most `max_entries` entries: past that, the entries closest to expiry go first
(the oldest, when entries share a TTL), and expired entries are purged as new ones come
in. An entry is its key (keys.py), the completion as JSON, its expiry, and, for semantic
matching, its scope and prompt vector (float32 bytes). Either store raises its own errors;
the cache (`ResponseCache`) treats a failing store as a miss and never fails a request.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, func, insert, select

from ..store import schema

_T = schema.response_cache


class SqlCacheStore:
    """Entries in the `lunos_response_cache` table (migration 7), on the gateway's store."""

    def __init__(self, engine, max_entries: int) -> None:
        self.engine = engine
        self.max_entries = max_entries

    async def get(self, key: str) -> bytes | None:
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(_T.c.value).where(
                _T.c.key == key, _T.c.expires_at > time.time()))).scalar()
        return value.encode() if value is not None else None

    async def candidates(self, scope: str) -> list[tuple[str, bytes]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(_T.c.key, _T.c.vector).where(
                _T.c.scope == scope, _T.c.vector.is_not(None), _T.c.expires_at > time.time()))).all()
        return [(key, bytes(vector)) for key, vector in rows]

    async def put(self, key: str, value: bytes, ttl: float, scope: str | None, vector: bytes | None) -> None:
        now = time.time()
        async with self.engine.begin() as conn:
            await conn.execute(delete(_T).where((_T.c.key == key) | (_T.c.expires_at <= now)))
            await conn.execute(insert(_T).values(key=key, scope=scope if vector else None,
                                                 created_at=now, expires_at=now + ttl,
                                                 value=value.decode(), vector=vector))
            over = (await conn.execute(select(func.count()).select_from(_T))).scalar() - self.max_entries
            if over > 0:
                oldest = select(_T.c.key).order_by(_T.c.expires_at).limit(over).scalar_subquery()
                await conn.execute(delete(_T).where(_T.c.key.in_(oldest)))

    async def forget_vector(self, scope: str, key: str) -> None:
        pass  # candidates() gives live entries only

    async def clear(self) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(_T))
        return result.rowcount or 0

    async def close(self) -> None:
        pass  # the store's engine is closed with the store


class RedisCacheStore:
    """Entries as Redis strings with their TTL; a sorted set of keys by expiry bounds their
    number; each semantic scope is a hash of key -> vector (a vector whose entry expired or
    was evicted is dropped when a lookup finds it so)."""

    PREFIX = "lunos:cache:"

    def __init__(self, url: str, max_entries: int) -> None:
        import redis.asyncio as redis

        self.redis = redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.max_entries = max_entries
        self.index = self.PREFIX + "index"

    def _entry(self, key: str) -> str:
        return f"{self.PREFIX}e:{key}"

    def _scope(self, scope: str) -> str:
        return f"{self.PREFIX}v:{scope}"

    async def get(self, key: str) -> bytes | None:
        return await self.redis.get(self._entry(key))

    async def candidates(self, scope: str) -> list[tuple[str, bytes]]:
        found = await self.redis.hgetall(self._scope(scope))
        return [(key.decode(), vector) for key, vector in found.items()]

    async def forget_vector(self, scope: str, key: str) -> None:
        await self.redis.hdel(self._scope(scope), key)

    async def put(self, key: str, value: bytes, ttl: float, scope: str | None, vector: bytes | None) -> None:
        now = time.time()
        ms = max(int(ttl * 1000), 1)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self._entry(key), value, px=ms)
        pipe.zremrangebyscore(self.index, "-inf", now)  # entries Redis has expired already
        pipe.zadd(self.index, {key: now + ttl})
        if vector is not None and scope is not None:
            pipe.hset(self._scope(scope), key, vector)
            pipe.pexpire(self._scope(scope), ms)
        pipe.zcard(self.index)
        count = (await pipe.execute())[-1]
        if count > self.max_entries:
            evicted = await self.redis.zpopmin(self.index, count - self.max_entries)
            if evicted:
                await self.redis.delete(*(self._entry(k.decode()) for k, _ in evicted))

    async def clear(self) -> int:
        """Delete every entry, vector and the index; return how many entries there were."""
        entries = 0
        batch: list[bytes] = []
        async for name in self.redis.scan_iter(match=self.PREFIX + "*", count=500):
            batch.append(name)
            entries += name.startswith(self.PREFIX.encode() + b"e:")
            if len(batch) >= 500:
                await self.redis.delete(*batch)
                batch = []
        if batch:
            await self.redis.delete(*batch)
        return entries

    async def close(self) -> None:
        await self.redis.aclose()

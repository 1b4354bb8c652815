"""Keep the in-memory key table in step with the database.

Every worker polls a version stamp (one indexed read) every `interval` seconds and reloads
the table when it changed; a worker that changes keys itself reloads at once. So a
revocation made anywhere takes effect everywhere within `interval` + one reload.

Reloads run one at a time (a lock): a periodic reload that read the table before a
revocation can never finish after the revocation's own reload and bring the key back.
A key the table does not know is checked once against the database (`lookup`), so a key
works the moment it is shown; unknown keys are remembered for a few seconds, so a client
sending bad keys costs the database one read per key per `NEGATIVE_TTL`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.exc import SQLAlchemyError

from ..auth import Authenticator, Principal
from .sql import Store

log = logging.getLogger("lunos.keys")

NEGATIVE_TTL = 5.0  # seconds an unknown key is answered 401 without asking the database
NEGATIVE_MAX = 10_000  # unknown keys remembered at most (oldest forgotten first)


def principal_of(row: dict) -> Principal:
    allowed = row.get("allowed_models")
    return Principal(
        key_id=row["id"],
        name=row["name"],
        allowed_models=frozenset(allowed) if allowed else None,
        expires_at=row.get("expires_at_ts"),
        budget_usd=row.get("budget_usd"),
        rpm=row.get("rpm"),
        tpm=row.get("tpm"),
    )


class KeySync:
    def __init__(self, store: Store, auth: Authenticator, interval: float = 1.0,
                 on_load=None) -> None:
        self.store = store
        self.auth = auth
        self.interval = interval
        self.on_load = on_load  # called with the loaded rows (limits seed spend from them)
        self.version: str | None = None
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._unknown: dict[str, float] = {}  # key hash -> when to ask the database again
        self._store_down = False  # logged once when it goes, once when it is back

    async def refresh(self) -> None:
        async with self._lock:
            await self._reload()

    async def _reload(self) -> None:
        version = await self.store.keys_version()
        rows = await self.store.active_keys()
        self.auth.replace_keys({row["key_hash"]: principal_of(row) for row in rows})
        self._unknown.clear()
        if self.on_load is not None:
            self.on_load(rows)
        self.version = version

    async def lookup(self, digest: str) -> Principal | None:
        """The principal of a key hash the table did not have: reload once if the keys
        changed since the last load (a key just created on any worker), else None."""
        now = time.monotonic()
        if self._unknown.get(digest, 0.0) > now or self.version is None or self._store_down:
            return None  # known bad, or no store to ask (the sync is retrying it)
        async with self._lock:
            principal = self.auth.by_hash(digest)
            if principal is not None or self._unknown.get(digest, 0.0) > now:
                return principal  # found, or refused, while this waited for the lock
            try:
                if await self.store.keys_version() != self.version:
                    await self._reload()
            except (SQLAlchemyError, OSError) as exc:
                self._store_down = True  # until the periodic sync reaches it again
                log.warning("key sync paused, the store is unavailable: %s", exc.__class__.__name__)
                return None
            principal = self.auth.by_hash(digest)
            if principal is None:
                if len(self._unknown) >= NEGATIVE_MAX:
                    self._unknown.pop(next(iter(self._unknown)))
                self._unknown[digest] = time.monotonic() + NEGATIVE_TTL
            return principal

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="lunos-key-sync")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.poll()

    async def poll(self) -> None:
        """One round of the periodic sync; never raises (the loop must outlive any error)."""
        try:
            async with self._lock:
                if await self.store.keys_version() != self.version:
                    await self._reload()
            if self._store_down:
                self._store_down = False
                log.warning("key sync: the store is back")
        except (SQLAlchemyError, OSError) as exc:
            if not self._store_down:
                self._store_down = True
                log.warning("key sync paused, the store is unavailable: %s", exc.__class__.__name__)
        except Exception:
            log.exception("key sync failed; trying again in %g s", self.interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

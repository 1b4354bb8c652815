"""Keep the in-memory key table in step with the database.

Every worker polls a version stamp (one indexed read) every `interval` seconds and reloads
the table when it changed; a worker that changes keys itself reloads at once. So a
revocation made anywhere takes effect everywhere within `interval` + one reload.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from ..auth import Authenticator, Principal
from .sql import Store

log = logging.getLogger("lunos.keys")


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

    async def refresh(self) -> None:
        version = await self.store.keys_version()
        rows = await self.store.active_keys()
        self.auth.replace_keys({row["key_hash"]: principal_of(row) for row in rows})
        if self.on_load is not None:
            self.on_load(rows)
        self.version = version

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="lunos-key-sync")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if await self.store.keys_version() != self.version:
                    await self.refresh()
            except (SQLAlchemyError, OSError) as exc:
                log.debug("key sync skipped: %s", exc.__class__.__name__)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

"""History rows leave the request path: a bounded queue, batched inserts, flushed on shutdown.

`put` is O(1) and never waits. A background task drains the queue every `interval` seconds
(or as soon as `batch` rows wait), up to `max_batch` rows per transaction: when the store
falls behind, transactions grow, so the writer catches up instead of trailing the load.
Large batches are cheaper per row (each wakes the writer's thread once, commits once and
rewrites the last page of each index once); `interval` keeps SPEC §7's bound: a row is
readable within a second of its response.
When the database is down the rows stay queued and the task retries with backoff, so
nothing is lost until the queue is full; past `max_queue` new rows are counted as dropped
(visible in /metrics), never blocking.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque

from sqlalchemy.exc import IntegrityError

try:  # the driver's own error, now that batches go through the drivers directly
    from asyncpg import UniqueViolationError as _PgUnique
except ImportError:  # pragma: no cover
    _PgUnique = IntegrityError

from ..records import CallRecord
from .sql import Store, row_values

log = logging.getLogger("lunos.history")


class HistoryWriter:
    def __init__(self, store: Store, *, max_queue: int = 100_000, batch: int = 2048,
                 max_batch: int = 8192, interval: float = 0.5) -> None:
        self.store = store
        self.max_queue = max_queue
        self.batch = batch
        self.max_batch = max(batch, max_batch)
        self.interval = interval
        self.queue: deque[tuple] = deque()  # row_values tuples
        self.dropped = 0
        self.written = 0
        self.failures = 0
        self.store_ok = True
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def depth(self) -> int:
        return len(self.queue)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lunos-history-writer")

    def put(self, record: CallRecord) -> None:
        if len(self.queue) >= self.max_queue:
            self.dropped += 1
            return
        # Queue the compact row, not the record: the record's objects are freed at once,
        # which keeps the event loop's working set (and its cache misses) small.
        self.queue.append(row_values(record))
        if len(self.queue) >= self.batch:
            self._wake.set()

    async def _run(self) -> None:
        delay = self.interval
        while True:
            if not (self.store_ok and len(self.queue) >= self.batch):  # a full batch waits for nobody
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
            self._wake.clear()
            # When the store is down: back off, keep the rows.
            delay = self.interval if await self._drain() else min(max(delay * 2, 0.25), 2.0)
            if self._closing and not self.queue:
                return

    async def _drain(self) -> bool:
        """Write the rows queued now, batch by batch. False when the store failed.

        Rows queued meanwhile wait for the next turn (a full batch or the interval): under
        load they make the next large transaction, not a stream of small ones. Each commit
        rewrites the last page of the table and of every index, so a transaction of eight
        rows costs several times more per row than one of a few hundred.
        """
        left = len(self.queue)
        while left > 0:
            rows = [self.queue.popleft() for _ in range(min(self.max_batch, left))]
            left -= len(rows)
            try:
                await self._insert(rows)
            except Exception as exc:  # the store is down or refused: keep the rows, retry later
                self.queue.extendleft(reversed(rows))
                self.failures += 1
                if self.store_ok:
                    log.warning("history store unavailable (%s); %d rows kept queued",
                                exc.__class__.__name__, len(self.queue))
                self.store_ok = False
                return False
            self.written += len(rows)
            if not self.store_ok:
                log.warning("history store is back; writing queued rows")
            self.store_ok = True
        return True

    async def _insert(self, rows: list[tuple]) -> None:
        try:
            await self.store.insert_rows(rows)
        except (IntegrityError, sqlite3.IntegrityError, _PgUnique):
            # A batch whose commit succeeded but whose answer was lost: write the rest only.
            present = await self.store.existing_ids([r[0] for r in rows])
            missing = [r for r in rows if r[0] not in present]
            if missing:
                await self.store.insert_rows(missing)

    async def close(self, timeout: float = 30.0) -> None:
        """Flush what is queued (waiting up to `timeout` for the store), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            log.error("history store unreachable at shutdown; %d rows not written", len(self.queue))
            self._task.cancel()

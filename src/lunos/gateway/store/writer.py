"""History rows leave the request path: a bounded queue, batched inserts, flushed on shutdown.

`put` is O(1) and never waits. A background task drains the queue every `interval` seconds
(or as soon as `batch` rows wait), up to `max_batch` rows per transaction: when the store
falls behind, transactions grow, so the writer catches up instead of trailing the load.
Large batches are cheaper per row (each wakes the writer's thread once, commits once and
rewrites the last page of each index once); `interval` keeps SPEC §7's bound: a row is
readable within a second of its response.
When the database is down the rows stay queued and the task retries with backoff, so
nothing is lost until the queue is full; past `max_queue` new rows are counted as dropped
(visible in /metrics), never blocking. When the database refuses a row (a value it cannot
store), that row alone is set aside in a file and counted; the rest are written.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import sqlite3
from collections import deque
from pathlib import Path

import asyncpg
from sqlalchemy.exc import IntegrityError

from ..records import CallRecord
from .rows import HistoryRow, as_json, row_values
from .sql import Store

log = logging.getLogger("lunos.history")

# What a database answers when it refuses the values of a batch (not when it is down): one
# of the rows holds them, and the batch is split until that row stands alone.
_REFUSED = (ValueError, TypeError, OverflowError, sqlite3.DataError, sqlite3.IntegrityError,
            asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, IntegrityError)
_DUPLICATE = (sqlite3.IntegrityError, asyncpg.UniqueViolationError, IntegrityError)


class _StoreDown(Exception):
    def __init__(self, cause: Exception, unwritten: list[HistoryRow]) -> None:
        super().__init__(cause)
        self.cause = cause
        self.unwritten = unwritten


class HistoryWriter:
    """`failed_rows`: a JSON Lines file that receives each row the database refuses (one
    object per line: when, the error, the row), so a bad row is set aside and inspectable,
    never retried forever in front of the others."""

    def __init__(self, store: Store, *, max_queue: int = 100_000, batch: int = 2048,
                 max_batch: int = 8192, interval: float = 0.5,
                 failed_rows: Path | None = None) -> None:
        self.store = store
        self.max_queue = max_queue
        self.batch = batch
        self.max_batch = max(batch, max_batch)
        self.interval = interval
        self.failed_rows = failed_rows
        self.queue: deque[HistoryRow] = deque()
        self.dropped = 0
        self.written = 0
        self.failed = 0  # rows the database refused, set aside in `failed_rows`
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
                await self._write(rows)
            except _StoreDown as down:  # keep the rows not written, retry later
                self.queue.extendleft(reversed(down.unwritten))
                if self.store_ok:
                    log.warning("history store unavailable (%s); %d rows kept queued",
                                down.cause.__class__.__name__, len(self.queue))
                self.store_ok = False
                return False
            if not self.store_ok:
                log.warning("history store is back; writing queued rows")
            self.store_ok = True
        return True

    async def _write(self, rows: list[HistoryRow]) -> None:
        """Write `rows`. A batch the database refuses is split in halves until the row it
        refuses stands alone; that row is set aside and the others are written. Raises
        `_StoreDown` with the rows not written yet when the store fails."""
        parts = [rows]
        while parts:
            part = parts.pop()
            try:
                await self.store.insert_rows(part)
                self.written += len(part)
                continue
            except _DUPLICATE as exc:
                try:  # a batch whose commit succeeded but whose answer was lost?
                    present = await self.store.existing_ids([r.id for r in part])
                except Exception as down:
                    raise _StoreDown(down, [r for p in (*parts, part) for r in p]) from down
                if present:
                    parts.append([r for r in part if r.id not in present])
                    continue
                refused = exc  # no: a value the database refuses
            except _REFUSED as exc:
                refused = exc
            except Exception as down:
                raise _StoreDown(down, [r for p in (*parts, part) for r in p]) from down
            if len(part) > 1:
                half = len(part) // 2
                parts += [part[half:], part[:half]]  # the first half is written first
            else:
                await self._set_aside(part[0], refused)

    async def _set_aside(self, row: HistoryRow, error: Exception) -> None:
        """Keep a refused row in `failed_rows`, count it, and still add its cost to the
        key's spend (the request was served)."""
        self.failed += 1
        log.error("history row %s refused by the database (%s); set aside in %s",
                  row.id, error.__class__.__name__, self.failed_rows or "nowhere (no file set)")
        if self.failed_rows is not None:
            line = json.dumps({"failed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                               "error": f"{error.__class__.__name__}: {error}",
                               "row": as_json(row)}, default=repr)
            try:
                self.failed_rows.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self.failed_rows, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, (line + "\n").encode("utf-8", "backslashreplace"))
                finally:
                    os.close(fd)
            except OSError as exc:
                log.error("history row %s could not be set aside: %s", row.id, exc)
        try:
            await self.store.add_spend([row])
        except Exception as exc:
            log.error("the cost of history row %s was not added to its key's spend (%s)",
                      row.id, exc.__class__.__name__)

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

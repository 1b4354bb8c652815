"""Group commit: rows that arrive while a write is in progress go together in the next one.

Each caller still returns only once its own row is committed (a stored response must be
readable the moment its client has it: the next turn may name it, on any gateway), but a
busy gateway pays one transaction, and on SQLite one hand-off to the writer thread, per
batch instead of per row. When a batch fails, its rows are written one at a time, so a bad
row fails its own caller only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class GroupCommit:
    def __init__(self, write: Callable[[list[tuple]], Awaitable[None]]) -> None:
        self._write = write  # commits the rows it is given, all or none
        self._waiting: list[tuple[tuple, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def add(self, row: tuple) -> None:
        """Write `row`; return when it is committed (raise what its write raised)."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((row, done))
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        await done

    async def drain(self) -> None:
        """Wait for the rows already given (at shutdown)."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                if not await self._commit(batch, last_try=len(batch) == 1):
                    for item in batch:  # one at a time: only a bad row's caller fails
                        await self._commit([item], last_try=True)
        finally:
            self._task = None

    async def _commit(self, batch: list[tuple[tuple, asyncio.Future]], *, last_try: bool) -> bool:
        """Write `batch` and tell its callers; False (callers not told) when it failed and
        this was not the last try."""
        failure = None
        try:
            await self._write([row for row, _ in batch])
        except Exception as exc:
            if not last_try:
                return False
            failure = exc
        for _, done in batch:
            if done.done():  # its caller was cancelled; the row is written all the same
                continue
            if failure is None:
                done.set_result(None)
            else:
                done.set_exception(failure)
        return True

"""History inserts on SQLite, in one thread of their own with their own connection.

Through the async driver a batch took several hops between the event loop and the driver's
thread (connect, BEGIN, INSERT, UPDATE, COMMIT, reset), each waiting for a turn of a busy
loop: under sustained load the writer fell behind and the queue grew. Here a batch is one
hand-off: the thread runs the whole transaction, a few hundred rows per statement so that
it takes the GIL back once per statement, not once per row.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from .trace_files import TraceFiles

PAGE_SIZE = 16384  # of a new database file
ROWS_PER_STATEMENT = 256  # x 25 columns: well under SQLite's 32,766 bound parameters


def statement_sizes(n: int) -> list[int]:
    """Rows per statement for a batch of `n`: full statements, then powers of two, so at
    most nine statement shapes are ever prepared (each is cached, and a large one holds
    memory)."""
    sizes = [ROWS_PER_STATEMENT] * (n // ROWS_PER_STATEMENT)
    rest = n % ROWS_PER_STATEMENT
    size = ROWS_PER_STATEMENT // 2
    while rest:
        if rest >= size:
            sizes.append(size)
            rest -= size
        size //= 2
    return sizes


def configure(conn, cache_kib: int = 16384) -> None:
    """Pragmas every connection to the database file gets (WAL: readers never block the
    writer). `conn`: a sqlite3 connection, or the engine's DB-API adapter of one. Queries
    over a large history want a large page cache; appending rows needs little.

    A new database gets 16 KiB pages (SQLite ignores the pragma once a database has
    tables): a commit writes each changed page to the WAL as one frame, and a batch of
    history rows changes a quarter as many 16 KiB pages as 4 KiB ones. That took a batch's
    commit from 1.2-1.7 µs to 0.5-0.6 µs per row (2,048 traced rows per batch)."""
    cursor = conn.cursor()
    cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
    cursor.close()


@lru_cache(maxsize=16)
def insert_rows_sql(columns: tuple[str, ...], n: int) -> str:
    one = "(" + ", ".join("?" for _ in columns) + ")"
    return f"INSERT INTO lunos_requests ({', '.join(columns)}) VALUES " + ", ".join([one] * n)


class SqliteRowWriter:
    """Rows come with their trace payloads as the last value; `trace_files` writes them
    out and puts the reference (the last column, `trace_ref`) in their place."""

    def __init__(self, path: str, columns: tuple[str, ...], spend_sql: str,
                 trace_files: TraceFiles) -> None:
        self.path = path
        self.columns = columns
        self.spend_sql = spend_sql
        self.trace_files = trace_files
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lunos-history")

    async def write(self, rows: list[tuple], updates: list[tuple]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._write, rows, updates)

    async def execute_many(self, sql: str, rows: list[tuple]) -> None:
        """One statement for each of `rows`, in one transaction of its own, on this thread:
        it waits for the batch in progress, where another connection would poll for
        SQLite's write lock."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._execute_many, sql, rows)

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            conn = self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            configure(conn, cache_kib=2048)
        return conn

    def _execute_many(self, sql: str, rows: list[tuple]) -> None:
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            conn.executemany(sql, rows)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _write(self, rows: list[tuple], updates: list[tuple]) -> None:
        conn = self._connection()
        rows = self.trace_files.move_out(rows)
        conn.execute("BEGIN")
        try:
            start = 0
            for size in statement_sizes(len(rows)):
                part = rows[start:start + size]
                start += size
                conn.execute(insert_rows_sql(self.columns, size), list(itertools.chain.from_iterable(part)))
            if updates:
                conn.executemany(self.spend_sql, updates)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        self.trace_files.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

"""Throwaway databases for tests: a SQLite file, or a fresh PostgreSQL database on the local
server (127.0.0.1:5432, trust auth), dropped afterwards."""

from __future__ import annotations

import asyncio
import secrets
from contextlib import contextmanager
from pathlib import Path

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _run(coro) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    import threading

    error: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(coro, error))
    thread.start()
    thread.join()
    if error:
        raise error[0]


def _capture(coro, error: list) -> None:
    try:
        asyncio.run(coro)
    except BaseException as exc:  # re-raised in the caller's thread
        error.append(exc)


@contextmanager
def database(kind: str, directory: Path):
    if kind == "sqlite":
        yield f"sqlite:///{directory / ('db-' + secrets.token_hex(4) + '.sqlite')}"
        return
    name = "lunos_test_" + secrets.token_hex(6)
    _run(_pg(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        _run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

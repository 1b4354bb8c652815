"""The store on SQLAlchemy 2 (async): SQLite by default, PostgreSQL when the URL says so.

One class serves both; differences are confined to `_engine_url` and connection setup.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import GatewayError
from ..keys import display_prefix, hash_key, new_key
from ..traces import public_request
from . import responses, schema
from .group_commit import GroupCommit
from .migrations import migrate
from .rows import COLUMNS, HistoryRow, as_text
from .sqlite_rows import SqliteRowWriter, insert_rows_sql
from .sqlite_rows import configure as configure_sqlite
from .trace_files import TraceFiles

KEYS_VERSION = "keys_version"
_TEXT_COLUMNS = (*COLUMNS, "request", "response")  # PostgreSQL, in-memory SQLite
_FILE_COLUMNS = (*COLUMNS, "trace_ref")  # a SQLite file (trace_files.py)
_INSERT_PG = (f"INSERT INTO lunos_requests ({', '.join(_TEXT_COLUMNS)}) "
              f"VALUES ({', '.join(f'${i}' for i in range(1, len(_TEXT_COLUMNS) + 1))})")
_SPEND_SQLITE = "UPDATE lunos_keys SET spend_usd = spend_usd + ? WHERE id = ?"
_SPEND_PG = "UPDATE lunos_keys SET spend_usd = spend_usd + $1 WHERE id = $2"


class StoreUnavailable(GatewayError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(503, "The gateway's store is unavailable; try again shortly",
                         code="store_unavailable", retryable=True)
        self.detail = detail


def _engine_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _unjson(value: str | bytes | None) -> Any:
    return None if value is None else orjson.loads(value)


async def _insert_aiosqlite(driver, rows: list[HistoryRow], updates: list[tuple]) -> None:
    """An in-memory database (tests): its one connection is the engine's."""
    await driver.execute("BEGIN")
    try:
        await driver.executemany(insert_rows_sql(_TEXT_COLUMNS, 1), [as_text(r) for r in rows])
        await driver.executemany(_SPEND_SQLITE, updates)
    except BaseException:
        await driver.rollback()
        raise
    await driver.commit()


async def _insert_pg(driver, rows: list[HistoryRow], updates: list[tuple]) -> None:
    rows = [as_text(r) for r in rows]
    async with driver.transaction():
        await driver.executemany(_INSERT_PG, rows)
        await driver.executemany(_SPEND_PG, updates)


def _spend(rows: list[HistoryRow]) -> list[tuple[float, str]]:
    """(amount, key id) for each key with a cost in `rows`."""
    spend: dict[str, float] = {}
    for row in rows:
        if row.key_id and row.cost:
            spend[row.key_id] = spend.get(row.key_id, 0.0) + row.cost
    return [(amount, key_id) for key_id, amount in spend.items()]


def _valid_utf8(value: Any) -> Any:
    """Strings the database can store: lone surrogates become '?', so one odd value never
    blocks a batch (and the history queued behind it)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def row_to_public(row: Any, payloads: tuple[Any, Any] | None = None) -> dict:
    """A history row as the API shows it. `payloads`: the trace's request and response
    when they lie in a trace file (`trace_ref`), else they are read from the row."""
    m = row._mapping
    request, response = payloads or (m["request"], m["response"])
    return {
        "id": m["id"],
        "key_id": m["key_id"],
        "app_id": m["app_id"],
        "endpoint": m["endpoint"],
        "cache": m["cache"],
        "model": m["model"],
        "requested_model": m["requested_model"] or m["model"],  # older rows: the model
        "provider": m["provider"],
        "status": m["status"],
        "error": m["error"],
        "usage": {
            "prompt_tokens": m["prompt_tokens"],
            "completion_tokens": m["completion_tokens"],
            "total_tokens": m["prompt_tokens"] + m["completion_tokens"],
            "cached_tokens": m["cached_tokens"],
            "cache_write_tokens": m["cache_write_tokens"],
            "reasoning_tokens": m["reasoning_tokens"],
            "cost": m["cost"],
        },
        "latency_ms": m["latency_ms"],
        "ttft_ms": m["ttft_ms"],
        "tokens_per_second": m["tokens_per_second"],
        "stream": bool(m["stream"]),
        "created_at": _iso(m["created_at"]),
        "attempts": _unjson(m["attempts"]) or [],
        "dropped_params": _unjson(m["dropped_params"]) or [],
        "trace": bool(m["trace"]),
        "request": public_request(_unjson(request)),
        "response": _unjson(response),
        "extra": _unjson(m["extra"]) or {},
        "session_id": m["session_id"],
        "replay_of": m["replay_of"],
    }


def key_to_public(row: Any) -> dict:
    m = row._mapping
    return {
        "id": m["id"],
        "name": m["name"],
        "prefix": m["prefix"],
        "created_at": _iso(m["created_at"]),
        "revoked_at": _iso(m["revoked_at"]),
        "expires_at": _iso(m["expires_at"]),
        "budget_usd": m["budget_usd"],
        "rpm": m["rpm"],
        "tpm": m["tpm"],
        "allowed_models": _unjson(m["allowed_models"]),
        "spend_usd": round(m["spend_usd"] or 0.0, 10),
    }


def nearest_rank(values: list[float] | None, p: int) -> float | None:
    """The p-th percentile by nearest rank (the smallest value with p% at or below it)."""
    if not values:
        return None
    values = sorted(values)
    return round(float(values[max(-(-len(values) * p // 100), 1) - 1]), 3)


def _encode_cursor(value: float | None, row_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([value, row_id])).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float | None, str]:
    try:
        value, row_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return (None if value is None else float(value)), str(row_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise GatewayError(400, "Invalid cursor", param="cursor") from None


# `order` of GET /v1/logs (SPEC §12): the column and whether it goes down. Latency and cost
# go down (slowest, dearest first); rows without a value come last.
ORDERS = {"newest": ("created_at", True), "oldest": ("created_at", False),
          "latency": ("latency_ms", True), "cost": ("cost", True)}


def _after(column, value: float | None, row_id: str, descending: bool):
    """Keyset pagination: the rows after (value, id) in the order, NULL values last."""
    if value is None:  # within the NULL tail
        return and_(column.is_(None), schema.requests.c.id < row_id if descending
                    else schema.requests.c.id > row_id)
    c = schema.requests.c
    nulls = [] if column is c.created_at else [column.is_(None)]  # created_at is never NULL
    if descending:
        return or_(column < value, and_(column == value, c.id < row_id), *nulls)
    return or_(column > value, and_(column == value, c.id > row_id), *nulls)


def _match(column, value: str):
    """`value` exactly, or with a final `*` every value it begins (`openai/*`)."""
    if value.endswith("*"):
        return column.like(_like(value[:-1])[1:], escape="\\")
    return column == value


def _like(words: str) -> str:
    """A LIKE pattern matching `words` anywhere (% and _ taken literally, `\\` escapes)."""
    return "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_DATABASE_ERRORS = (SQLAlchemyError, OSError, sqlite3.Error, asyncpg.PostgresError,
                    asyncpg.InterfaceError)


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """A database failure as the 503 a client can retry, whichever layer raised it."""
    try:
        yield
    except _DATABASE_ERRORS as exc:
        raise StoreUnavailable(exc.__class__.__name__) from exc


def _create_private(path: Path) -> None:
    """Create a new SQLite file (and its directory) readable by its owner only: SQLite gives
    its -wal and -shm files the database file's mode. An existing file keeps its own."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


class Store:
    def __init__(self, engine: AsyncEngine, url: str, sqlite_path: str | None = None) -> None:
        self.engine = engine
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # A SQLite file keeps trace payloads in files beside it (trace_files.py).
        self.trace_files = TraceFiles(Path(sqlite_path + "-traces")) if sqlite_path else None
        self._rows = (SqliteRowWriter(sqlite_path, _FILE_COLUMNS, _SPEND_SQLITE,
                                      self.trace_files) if sqlite_path else None)
        self._response_saves = GroupCommit(self._insert_responses)

    @classmethod
    def open(cls, url: str) -> Store:
        engine_url = _engine_url(url)
        sqlite_path = None
        if engine_url.startswith("sqlite"):
            path = engine_url.split(":///", 1)[1]
            if path and path != ":memory:":
                _create_private(Path(path))
                sqlite_path = path  # history rows get their own connection and thread
            engine = create_async_engine(engine_url, connect_args={"timeout": 30})
            from sqlalchemy import event

            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_conn, _record) -> None:
                configure_sqlite(dbapi_conn)
        else:
            engine = create_async_engine(engine_url, pool_size=10, max_overflow=10,
                                         pool_pre_ping=True, pool_recycle=300,
                                         connect_args={"timeout": 5, "command_timeout": 30})
        return cls(engine, url, sqlite_path)

    async def migrate(self) -> list[int]:
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(7716001)"))
            return await conn.run_sync(migrate)

    async def ping(self) -> None:
        """One round trip (`/readyz`); raises when the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self._response_saves.drain()
        if self._rows is not None:
            await self._rows.close()
        await self.engine.dispose()

    # ------------------------------------------------------------------ keys
    async def create_key(
        self,
        name: str,
        *,
        budget_usd: float | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        allowed_models: list[str] | None = None,
        expires_at: float | None = None,
    ) -> tuple[dict, str]:
        raw = new_key()
        values = {
            "id": "key_" + secrets.token_hex(8),
            "name": name,
            "key_hash": hash_key(raw),
            "prefix": display_prefix(raw),
            "is_master": False,
            "created_at": time.time(),
            "revoked_at": None,
            "expires_at": expires_at,
            "budget_usd": budget_usd,
            "rpm": rpm,
            "tpm": tpm,
            "allowed_models": _json(allowed_models),
            "spend_usd": 0.0,
        }
        async with self.engine.begin() as conn:
            await conn.execute(insert(schema.keys).values(**values))
            await self._bump_keys_version(conn)
            row = (await conn.execute(select(schema.keys).where(schema.keys.c.id == values["id"]))).one()
        return key_to_public(row), raw

    async def list_keys(self, include_revoked: bool = True) -> list[dict]:
        q = select(schema.keys).where(schema.keys.c.is_master.is_(False))
        if not include_revoked:
            q = q.where(schema.keys.c.revoked_at.is_(None))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(schema.keys.c.created_at.desc()))).all()
        return [key_to_public(r) for r in rows]

    async def get_key(self, key_id: str) -> dict | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(schema.keys).where(
                schema.keys.c.id == key_id, schema.keys.c.is_master.is_(False)))).first()
        return key_to_public(row) if row else None

    async def revoke_key(self, key_id: str) -> dict | None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(schema.keys)
                .where(schema.keys.c.id == key_id, schema.keys.c.is_master.is_(False),
                       schema.keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            if result.rowcount:
                await self._bump_keys_version(conn)
            row = (await conn.execute(select(schema.keys).where(
                schema.keys.c.id == key_id, schema.keys.c.is_master.is_(False)))).first()
        return key_to_public(row) if row else None

    async def update_key(self, key_id: str, **fields: Any) -> dict | None:
        """Change a live key's name, budget, limits, allowed models or expiry (None clears
        one); None when there is no such live key."""
        if "allowed_models" in fields:
            fields["allowed_models"] = _json(fields["allowed_models"])
        return await self._change_key(key_id, fields)

    async def rotate_key(self, key_id: str) -> tuple[dict, str] | None:
        """A new secret for a live key: the same id, limits, spend and history; the old
        secret stops working at the next key sync."""
        raw = new_key()
        row = await self._change_key(key_id, {"key_hash": hash_key(raw), "prefix": display_prefix(raw)})
        return (row, raw) if row else None

    async def _change_key(self, key_id: str, values: dict) -> dict | None:
        k = schema.keys.c
        async with self.engine.begin() as conn:
            result = await conn.execute(update(schema.keys).where(
                k.id == key_id, k.is_master.is_(False), k.revoked_at.is_(None)).values(**values))
            if not result.rowcount:
                return None
            await self._bump_keys_version(conn)
            row = (await conn.execute(select(schema.keys).where(k.id == key_id))).one()
        return key_to_public(row)

    async def active_keys(self) -> list[dict]:
        """Every key that can authenticate, with its hash (for the in-memory table)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(schema.keys).where(
                schema.keys.c.revoked_at.is_(None), schema.keys.c.is_master.is_(False)))).all()
        out = []
        for row in rows:
            public = key_to_public(row)
            public["key_hash"] = row._mapping["key_hash"]
            public["expires_at_ts"] = row._mapping["expires_at"]
            out.append(public)
        return out

    async def set_master(self, key: str) -> None:
        """Keep only the master key's hash (and display prefix) in the database."""
        digest, prefix = hash_key(key), display_prefix(key)
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(schema.keys.c.key_hash, schema.keys.c.prefix).where(
                schema.keys.c.id == "master"))).first()
            if row is None:
                await conn.execute(insert(schema.keys).values(
                    id="master", name="master", key_hash=digest, prefix=prefix, is_master=True,
                    created_at=time.time(), spend_usd=0.0))
            elif tuple(row) != (digest, prefix):
                await conn.execute(update(schema.keys).where(schema.keys.c.id == "master")
                                   .values(key_hash=digest, prefix=prefix))

    async def keys_version(self) -> str:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(schema.meta.c.value).where(
                schema.meta.c.name == KEYS_VERSION))).first()
        return row[0] if row else "0"

    async def _bump_keys_version(self, conn) -> None:
        version = secrets.token_hex(8)
        result = await conn.execute(update(schema.meta).where(schema.meta.c.name == KEYS_VERSION)
                                    .values(value=version))
        if not result.rowcount:
            await conn.execute(insert(schema.meta).values(name=KEYS_VERSION, value=version))

    # ------------------------------------------------------------------ history
    async def insert_rows(self, rows: list[HistoryRow]) -> None:
        """Insert a batch of history rows and add their cost to each key's spend, atomically.

        The history writer's hot loop: the SQL is fixed and runs through the driver itself
        (sqlite3 / asyncpg), without per-row SQL compilation.
        """
        if not rows:
            return
        updates = _spend(rows)
        try:
            await self._insert_batch(rows, updates)
        except Exception as exc:  # a string the driver cannot encode (asyncpg wraps it)
            if not isinstance(exc, UnicodeEncodeError) and not isinstance(exc.__cause__, UnicodeEncodeError):
                raise
            # Rolled back: write the batch again with valid strings.
            await self._insert_batch([r._make(map(_valid_utf8, r)) for r in rows], updates)

    async def add_spend(self, rows: list[HistoryRow]) -> None:
        """Add the rows' cost to their keys' spend without the rows (rows set aside)."""
        async with self.engine.begin() as conn:
            for amount, key_id in _spend(rows):
                await conn.execute(update(schema.keys).where(schema.keys.c.id == key_id)
                                   .values(spend_usd=schema.keys.c.spend_usd + amount))

    async def _insert_batch(self, rows: list[HistoryRow], updates: list[tuple]) -> None:
        """One transaction: the SQLite history thread, or the engine's driver connection."""
        if self._rows is not None:
            await self._rows.write(rows, updates)
            return
        async with self.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            insert = _insert_aiosqlite if self.is_sqlite else _insert_pg
            await insert(driver, rows, updates)

    async def existing_ids(self, ids: list[str]) -> set[str]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(schema.requests.c.id).where(
                schema.requests.c.id.in_(ids)))).all()
        return {r[0] for r in rows}

    def _filters(self, key_id: str | None, model: str | None, app_id: str | None,
                 status: str | None, since: float | None, until: float | None,
                 endpoint: str | None = None, *, q: str | None = None,
                 session_id: str | None = None, requested_model: str | None = None,
                 key: str | None = None, replay_of: str | None = None) -> list:
        """WHERE terms. `key` (master only): a key id or name. `q`: every word in a traced
        row's prompt or output (the `search` column) or in its error, in any case: LIKE over
        the rows the other filters leave, no index (docs/history.md says what it costs)."""
        c = schema.requests.c
        where = []
        if key_id is not None:
            where.append(c.key_id == key_id)
        if key:
            k = schema.keys.c
            where.append(c.key_id.in_(select(k.id).where(or_(k.id == key, k.name == key))))
        if endpoint:
            where.append(c.endpoint == endpoint)
        if session_id:
            where.append(c.session_id == session_id.replace("\0", ""))
        if replay_of:
            where.append(c.replay_of == replay_of)
        if requested_model:
            where.append(func.coalesce(c.requested_model, c.model) == requested_model.replace("\0", ""))
        for word in (q or "").replace("\0", "").lower().split()[:10]:
            pattern = _like(word)
            where.append(or_(c.search.like(pattern, escape="\\"),
                             func.lower(c.error).like(pattern, escape="\\")))
        if model:  # as rows store them (rows.py): a NUL would make PostgreSQL refuse the query
            where.append(_match(c.model, model.replace("\0", "")))
        if app_id:
            where.append(_match(c.app_id, app_id.replace("\0", "")))
        if status:
            if status == "success":
                where.append(c.status < 400)
            elif status == "error":
                where.append(c.status >= 400)
            elif status.isdigit():
                where.append(c.status == int(status))
            else:
                raise GatewayError(400, "'status' must be success, error or an HTTP status",
                                   param="status")
        if since is not None:
            where.append(c.created_at >= since)
        if until is not None:
            where.append(c.created_at < until)
        return where

    async def list_logs(
        self,
        *,
        key_id: str | None,
        model: str | None = None,
        app_id: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        cursor: str | None = None,
        endpoint: str | None = None,
        order: str = "newest",
        with_total: bool = False,
        **more_filters: str | None,
    ) -> tuple[list[dict], str | None] | tuple[list[dict], str | None, int]:
        """A page of rows in `order` (ORDERS), the cursor of the next page, and with
        `with_total` the count of every row the filters match. `more_filters`: `q`,
        `session_id`, `requested_model`, `key` (see `_filters`)."""
        c = schema.requests.c
        name, descending = ORDERS[order]
        column = getattr(c, name)
        where = self._filters(key_id, model, app_id, status, since, until, endpoint, **more_filters)
        total_q = select(func.count()).select_from(schema.requests).where(*where)
        if cursor:
            where.append(_after(column, *_decode_cursor(cursor), descending))
        keys = (column.desc(), c.id.desc()) if descending else (column.asc(), c.id.asc())
        if name != "created_at":  # a column that may be NULL: those rows last
            keys = (column.is_(None), *keys)
        q = select(schema.requests).where(*where).order_by(*keys).limit(limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
            total = (await conn.execute(total_q)).scalar_one() if with_total else None
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if more and rows:
            last = rows[-1]._mapping
            next_cursor = _encode_cursor(last[name], last["id"])
        page = await self._public(rows)
        return (page, next_cursor, total) if with_total else (page, next_cursor)

    async def get_log(self, row_id: str, key_id: str | None) -> dict | None:
        c = schema.requests.c
        q = select(schema.requests).where(c.id == row_id)
        if key_id is not None:
            q = q.where(c.key_id == key_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).first()
        return (await self._public([row]))[0] if row else None

    async def neighbours(self, row_id: str, key_id: str | None) -> tuple[str | None, str | None]:
        """The ids of the rows just newer and just older than `row_id` among those `key_id`
        sees (all: None), for Detail's previous / next links."""
        c = schema.requests.c
        mine = [] if key_id is None else [c.key_id == key_id]
        at = select(c.created_at).where(c.id == row_id).scalar_subquery()
        newer = (select(c.id).where(*mine, or_(c.created_at > at, and_(c.created_at == at, c.id > row_id)))
                 .order_by(c.created_at.asc(), c.id.asc()).limit(1))
        older = (select(c.id).where(*mine, or_(c.created_at < at, and_(c.created_at == at, c.id < row_id)))
                 .order_by(c.created_at.desc(), c.id.desc()).limit(1))
        async with self.engine.connect() as conn:
            return (await conn.execute(newer)).scalar(), (await conn.execute(older)).scalar()

    async def _public(self, rows: list) -> list[dict]:
        """Rows as the API shows them, with the payloads of traces kept in files."""
        refs = [r._mapping["trace_ref"] for r in rows]
        if self.trace_files is None or not any(refs):
            return [row_to_public(r) for r in rows]
        payloads = await asyncio.to_thread(self.trace_files.read, refs)
        return [row_to_public(r, p) for r, p in zip(rows, payloads, strict=True)]

    def _group_column(self, name: str):
        """A `group_by` field as a column: `hour` is the hour's number since the epoch
        (shown as an ISO time), `key` the key id."""
        c = schema.requests.c
        if name == "hour":
            hours = (func.cast(c.created_at, Integer).op("/")(3600) if self.is_sqlite  # truncates
                     else func.cast(func.floor(c.created_at / 3600), BigInteger))
            return hours.label("hour")
        return (c.key_id if name == "key" else getattr(c, name)).label(name)

    def _cache_saved(self):
        """A cache hit's `extra.cache_saved_usd`, read from the row's JSON text."""
        extra = schema.requests.c.extra
        if self.is_sqlite:
            return func.json_extract(extra, "$.cache_saved_usd")
        return cast(cast(extra, JSONB).op("->>")("cache_saved_usd"), Float)

    async def usage(self, *, key_id: str | None, since: float | None = None,
                    until: float | None = None, group_by: tuple[str, ...] = ("day", "model", "app_id"),
                    model: str | None = None, app_id: str | None = None,
                    endpoint: str | None = None, percentiles: bool = False) -> list[dict]:
        """Totals per group, and with `percentiles` latency and time-to-first-token
        percentiles (nearest rank, `_percentiles`). A row that asked the response cache has
        `cache` "hit" or "miss" (else NULL): those are its lookups."""
        c = schema.requests.c
        hit = c.cache == "hit"
        columns = [self._group_column(g) for g in group_by]
        where = self._filters(key_id, model, app_id, None, since, until, endpoint)
        q = (
            select(
                *columns,
                func.count().label("requests"),
                func.coalesce(func.sum(c.prompt_tokens), 0).label("prompt_tokens"),
                func.coalesce(func.sum(c.completion_tokens), 0).label("completion_tokens"),
                func.coalesce(func.sum(c.cached_tokens), 0).label("cached_tokens"),
                func.coalesce(func.sum(c.reasoning_tokens), 0).label("reasoning_tokens"),
                func.coalesce(func.sum(c.cost), 0.0).label("cost"),
                func.sum(case((c.status >= 400, 1), else_=0)).label("errors"),
                func.sum(case((hit, 1), else_=0)).label("cache_hits"),
                func.count(c.cache).label("cache_lookups"),
                func.coalesce(func.sum(case((hit, self._cache_saved()))), 0.0).label("cache_saved_usd"),
            )
            .where(*where)
            .group_by(*columns)
            .order_by(*columns)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
            ranks = await self._percentiles(conn, columns, where) if percentiles else {}
        out = []
        for row in rows:
            m = {str(k): v for k, v in row._mapping.items()}  # labels are str subclasses
            group = tuple(row[:len(columns)])
            m["total_tokens"] = int(m["prompt_tokens"]) + int(m["completion_tokens"])
            m["cost"] = round(float(m["cost"] or 0.0), 10)
            m["cache_saved_usd"] = round(float(m["cache_saved_usd"] or 0.0), 10)
            m["errors"] = int(m["errors"] or 0)
            for k in ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens",
                      "requests", "cache_hits", "cache_lookups"):
                m[k] = int(m[k])
            m["error_rate"] = round(m["errors"] / m["requests"], 4) if m["requests"] else 0.0
            if percentiles:
                p50, p95, ttft50 = ranks.get(group, (None, None, None))
                m["latency_p50_ms"], m["latency_p95_ms"], m["ttft_p50_ms"] = p50, p95, ttft50
            if "hour" in m:
                m["hour"] = _iso(int(m["hour"]) * 3600)
            if "key" in m:
                m["key_id"] = m["key"]
            out.append(m)
        return out

    @staticmethod
    async def _percentiles(conn, columns: list, where: list) -> dict[tuple, tuple]:
        """{group: (latency p50, latency p95, ttft p50)} over the rows matching `where`:
        one scan of the two columns, ranked here (a window function per metric cost
        SQLite several times as much)."""
        raw = await Store._percentiles_raw(conn, columns, where)
        return {g: (nearest_rank(lat, 50), nearest_rank(lat, 95), nearest_rank(first, 50))
                for g, (lat, first) in raw.items()}

    async def percentiles(self, *, key_id: str | None, since: float | None,
                          fields: tuple[str, ...], sample: int = 5000,
                          until: float | None = None) -> dict[str, dict]:
        """For each of `fields` (a `group_by` name), {value: (latency p50, p95, ttft p50)}
        over the newest `sample` rows since `since` (the dashboard's estimate: reading every
        row of a large history costs more than the page may)."""
        columns = [self._group_column(f) for f in fields]
        async with self.engine.connect() as conn:
            by_all = await self._percentiles_raw(conn, columns, self._filters(
                key_id, None, None, None, since, until), sample)
        out = {}
        for i, field in enumerate(fields):
            latency: dict = {}
            ttft: dict = {}
            for group, (lat, first) in by_all.items():
                latency.setdefault(group[i], []).extend(lat)
                ttft.setdefault(group[i], []).extend(first)
            out[field] = {v: (nearest_rank(latency[v], 50), nearest_rank(latency[v], 95),
                              nearest_rank(ttft.get(v), 50)) for v in latency}
        return out

    @staticmethod
    async def _percentiles_raw(conn, columns: list, where: list,
                               sample: int | None = None) -> dict[tuple, tuple[list, list]]:
        c = schema.requests.c
        q = select(*columns, c.latency_ms, c.ttft_ms).where(*where)
        if sample:
            q = q.order_by(c.created_at.desc()).limit(sample)
        rows = (await conn.execute(q)).all()
        width = len(columns)
        out: dict[tuple, tuple[list, list]] = {}
        for row in rows:
            lat, first = out.setdefault(tuple(row[:width]), ([], []))
            if row[width] is not None:
                lat.append(row[width])
            if row[width + 1] is not None:
                first.append(row[width + 1])
        return out

    async def purge_traces(self, older_than: float) -> int:
        """Drop the trace payloads of rows older than `older_than` (rows stay); return how
        many rows had one. Trace files go whole, once every row in them is that old."""
        c = schema.requests.c
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(schema.requests)
                .where(c.created_at < older_than,
                       or_(c.request.is_not(None), c.response.is_not(None), c.trace_ref.is_not(None)))
                .values(request=None, response=None, trace_ref=None)
            )
        if self.trace_files is not None:
            await asyncio.to_thread(self.trace_files.purge, older_than)
        return result.rowcount or 0

    # ------------------------------------------------------------------ stored responses
    # SPEC §9.2. Every method is scoped to one key: another key's response is as good as
    # missing, for the master key too. A database failure raises StoreUnavailable.
    async def save_response(self, row: responses.StoredResponse) -> None:
        """Store one response, committed on return: the next turn may name it as its
        `previous_response_id` straight away. Saves that arrive together are committed
        together (group_commit.py)."""
        await self._response_saves.add(responses.row_values(row))

    async def _insert_responses(self, rows: list[tuple]) -> None:
        """One transaction for `rows`."""
        with _unavailable_on_failure():
            if self._rows is not None:
                await self._rows.execute_many(responses.INSERT_SQLITE, rows)
                return
            async with self.engine.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                if self.is_sqlite:  # in memory: the engine's one connection
                    await driver.executemany(responses.INSERT_SQLITE, rows)
                    await driver.commit()
                else:  # asyncpg: executemany is one transaction
                    await driver.executemany(responses.INSERT_PG, rows)

    async def get_response(self, response_id: str, key_id: str) -> responses.StoredResponse | None:
        """The response, or None when there is none of this key's with this id."""
        if not responses.usable_id(response_id):
            return None
        c = schema.responses.c
        with _unavailable_on_failure():
            async with self.engine.connect() as conn:
                row = (await conn.execute(select(schema.responses).where(
                    c.id == response_id, c.key_id == key_id))).first()
        return responses.from_db(row) if row else None

    async def delete_response(self, response_id: str, key_id: str) -> bool:
        """Delete this key's response; False when there was none. A later turn that names it
        keeps its own row, and its chain now starts after the gap."""
        if not responses.usable_id(response_id):
            return False
        c = schema.responses.c
        with _unavailable_on_failure():
            async with self.engine.begin() as conn:
                result = await conn.execute(delete(schema.responses).where(
                    c.id == response_id, c.key_id == key_id))
        return bool(result.rowcount)

    async def response_chain(self, response_id: str, key_id: str,
                             limit: int = 1000) -> list[responses.StoredResponse]:
        """The conversation ending at `response_id`, oldest first: the response and those
        its `previous_response_id` links lead to, as long as they are this key's and at
        most `limit` of them (the newest). Empty when the response itself is not found.
        One query (a recursive CTE), however long the chain."""
        if not responses.usable_id(response_id) or limit < 1:
            return []
        r = schema.responses
        chain = (select(r.c.id, r.c.previous_response_id, literal_column("1").label("depth"))
                 .where(r.c.id == response_id, r.c.key_id == key_id)
                 .cte("chain", recursive=True))
        chain = chain.union_all(
            select(r.c.id, r.c.previous_response_id, chain.c.depth + 1)
            .where(r.c.id == chain.c.previous_response_id, r.c.key_id == key_id,
                   chain.c.depth < limit))
        q = select(r).join(chain, r.c.id == chain.c.id).order_by(chain.c.depth.desc())
        with _unavailable_on_failure():
            async with self.engine.connect() as conn:
                rows = (await conn.execute(q)).all()
        return [responses.from_db(row) for row in rows]

    async def purge_responses(self, before: float) -> int:
        """Delete the stored responses created before `before` (trace retention); return
        how many."""
        with _unavailable_on_failure():
            async with self.engine.begin() as conn:
                result = await conn.execute(delete(schema.responses).where(
                    schema.responses.c.created_at < before))
        return result.rowcount or 0

"""Schema migrations: a plain ordered list; each step runs once, recorded by its version.

Add a step at the end; never edit a step that has shipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.engine import Connection

from ..keys import display_prefix, hash_key
from . import schema


def _v1_initial(conn: Connection) -> None:
    for table in (schema.meta, schema.keys, schema.requests):
        table.create(conn, checkfirst=True)


def _v2_drop_day_index(conn: Connection) -> None:
    """Usage queries filter by key and time, never by day, so the index on `day` was only
    a fifth B-tree for every history insert to update."""
    conn.execute(text("DROP INDEX IF EXISTS ix_lunos_requests_day"))


def _v3_trace_ref(conn: Connection) -> None:
    """Where a row's trace payloads lie when they are kept outside the table (SQLite)."""
    columns = {c["name"] for c in inspect(conn).get_columns("lunos_requests")}
    if "trace_ref" not in columns:  # a database created by step 1 of this version has it
        conn.execute(text("ALTER TABLE lunos_requests ADD COLUMN trace_ref TEXT"))


def _v4_no_whole_key_prefix(conn: Connection) -> None:
    """A key of 15 characters or fewer (a set master key) was kept whole as its display
    prefix; a prefix whose hash is the key's hash is the whole key: shorten it."""
    keys = schema.keys
    for key_id, key_hash, prefix in conn.execute(select(keys.c.id, keys.c.key_hash, keys.c.prefix)):
        if hash_key(prefix) == key_hash:
            conn.execute(update(keys).where(keys.c.id == key_id).values(prefix=display_prefix(prefix)))


def _v5_endpoint(conn: Connection) -> None:
    """The route each row came through (SPEC §9); every row before it came through chat.
    A constant default: PostgreSQL adds the column without rewriting the table."""
    columns = {c["name"] for c in inspect(conn).get_columns("lunos_requests")}
    if "endpoint" not in columns:  # a database created by step 1 of this version has it
        conn.execute(text("ALTER TABLE lunos_requests "
                          "ADD COLUMN endpoint VARCHAR(20) NOT NULL DEFAULT 'chat'"))


def _v6_responses(conn: Connection) -> None:
    """Stored Responses-API responses (SPEC §9.2)."""
    schema.responses.create(conn, checkfirst=True)


def _v7_cache(conn: Connection) -> None:
    """The response cache (SPEC §10): each row's `cache` (hit, miss or NULL) and the
    entries' table when Redis is not configured."""
    columns = {c["name"] for c in inspect(conn).get_columns("lunos_requests")}
    if "cache" not in columns:  # a database created by step 1 of this version has it
        conn.execute(text("ALTER TABLE lunos_requests ADD COLUMN cache VARCHAR(8)"))
    schema.response_cache.create(conn, checkfirst=True)
def _v8_finding_requests(conn: Connection) -> None:
    """SPEC §12: requested_model, session_id, replay_of, and the words `q` searches.
    Nullable columns without a default: PostgreSQL adds them without rewriting the table."""
    columns = {c["name"] for c in inspect(conn).get_columns("lunos_requests")}
    for name, kind in (("requested_model", "VARCHAR(300)"), ("session_id", "VARCHAR(200)"),
                       ("replay_of", "VARCHAR(64)"), ("search", "TEXT")):
        if name not in columns:  # a database created by step 1 of this version has them
            conn.execute(text(f"ALTER TABLE lunos_requests ADD COLUMN {name} {kind}"))
    for name, columns, column in (("session", "session_id, created_at", "session_id"),
                                  ("replay", "replay_of", "replay_of")):
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS ix_lunos_requests_{name} "
                          f"ON lunos_requests ({columns}) WHERE {column} IS NOT NULL"))


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _v1_initial),
    (2, _v2_drop_day_index),
    (3, _v3_trace_ref),
    (4, _v4_no_whole_key_prefix),
    (5, _v5_endpoint),
    (6, _v6_responses),
    (7, _v7_cache),
    (8, _v8_finding_requests),
]


def migrate(conn: Connection) -> list[int]:
    """Apply the steps this database has not seen; return their versions."""
    schema.migrations_table.create(conn, checkfirst=True)
    done = {row[0] for row in conn.execute(select(schema.migrations_table.c.version))}
    applied = []
    for version, step in MIGRATIONS:
        if version in done:
            continue
        step(conn)
        conn.execute(insert(schema.migrations_table).values(version=version, applied_at=time.time()))
        applied.append(version)
    return applied

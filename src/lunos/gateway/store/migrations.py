"""Schema migrations: a plain ordered list; each step runs once, recorded by its version.

Add a step at the end; never edit a step that has shipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from . import schema


def _v1_initial(conn: Connection) -> None:
    for table in (schema.meta, schema.keys, schema.requests):
        table.create(conn, checkfirst=True)


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _v1_initial),
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

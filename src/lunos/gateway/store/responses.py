"""Stored Responses-API responses (SPEC §9.2): the row, and its values as the table holds them.

A row is written on the request path (the next turn may name it at once), so saving is one
INSERT through the driver with fixed SQL, like the history's batches; on a SQLite file it runs
on the history's thread, after the batch in progress rather than polling for the write lock.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from . import schema

MAX_ID = 128  # the width of the id columns


class StoredResponse(NamedTuple):
    """One stored response. `input_items` and `response` read back as JSON values; to save,
    either the value or its JSON bytes (as already serialized for the client) will do."""

    id: str  # `resp_…`
    key_id: str  # the key that made it; only that key reads it (the master key included)
    created_at: float  # unix seconds, for retention
    model: str
    previous_response_id: str | None
    input_items: list[dict] | bytes  # the request's input items as the door normalised them
    response: dict | bytes  # the response object as returned to the client


COLUMNS = StoredResponse._fields
INSERT_SQLITE = (f"INSERT INTO {schema.responses.name} ({', '.join(COLUMNS)}) "
                 f"VALUES ({', '.join('?' for _ in COLUMNS)})")
INSERT_PG = (f"INSERT INTO {schema.responses.name} ({', '.join(COLUMNS)}) "
             f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})")


def _json_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode()
    return orjson.dumps(value).decode()


def row_values(row: StoredResponse) -> tuple:
    """The row as the table's columns hold it: JSON as text, no NUL in the model's name
    (PostgreSQL refuses one; the JSON escapes its own)."""
    return (row.id, row.key_id, row.created_at, row.model[:300].replace("\0", ""),
            row.previous_response_id, _json_text(row.input_items), _json_text(row.response))


def from_db(row: Any) -> StoredResponse:
    m = row._mapping
    return StoredResponse(m["id"], m["key_id"], m["created_at"], m["model"],
                          m["previous_response_id"], orjson.loads(m["input_items"]),
                          orjson.loads(m["response"]))


def usable_id(response_id: Any) -> bool:
    """An id a stored response can have: anything else is simply not found (a NUL would make
    PostgreSQL refuse the query)."""
    return isinstance(response_id, str) and 0 < len(response_id) <= MAX_ID and "\0" not in response_id

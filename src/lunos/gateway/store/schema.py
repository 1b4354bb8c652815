"""Tables, as SQLAlchemy Core objects (one definition for SQLite and PostgreSQL).

JSON payloads are stored as text serialized by the gateway (orjson), so both databases
hold the same bytes and no driver-specific JSON handling is involved.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

migrations_table = Table(
    "lunos_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", Float, nullable=False),
)

meta = Table(
    "lunos_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

keys = Table(
    "lunos_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),
    Column("is_master", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("expires_at", Float),
    Column("budget_usd", Float),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("allowed_models", Text),  # JSON list, or NULL for any model
    Column("spend_usd", Float, nullable=False, default=0.0),
)

requests = Table(
    "lunos_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(40)),
    Column("app_id", String(200), nullable=False),
    Column("model", String(300), nullable=False),
    Column("provider", String(100)),
    Column("status", Integer, nullable=False),
    Column("error", Text),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),
    Column("cache_write_tokens", Integer, nullable=False, default=0),
    Column("reasoning_tokens", Integer, nullable=False, default=0),
    Column("cost", Float),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("tokens_per_second", Float),
    Column("stream", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("day", String(10), nullable=False),  # UTC date, for usage by day on any database
    Column("attempts", Text),  # JSON
    Column("dropped_params", Text),  # JSON
    Column("trace", Boolean, nullable=False, default=False),
    Column("request", Text),  # JSON, only with observability
    Column("response", Text),  # JSON, only with observability
    Column("extra", Text),  # JSON (web searches, ...)
    Column("trace_ref", Text),  # SQLite: where the trace's payloads lie (trace_files.py)
    # The route the request came through (params.ENDPOINTS); rows older than it are chat.
    Column("endpoint", String(20), nullable=False, server_default="chat"),
    Column("cache", String(8)),  # "hit", "miss" or NULL: the response cache was not asked
    # SPEC §12 (migration 8): what the caller asked for, the conversation it belongs to, the
    # row it replays, and a traced row's words for `q` (rows.search_words).
    Column("requested_model", String(300)),
    Column("session_id", String(200)),
    Column("replay_of", String(64)),
    Column("search", Text),
    Index("ix_lunos_requests_key_created", "key_id", "created_at"),
    # partial: rows without a session or a replay (most) cost these indexes nothing
    Index("ix_lunos_requests_session", "session_id", "created_at",
          sqlite_where=text("session_id IS NOT NULL"), postgresql_where=text("session_id IS NOT NULL")),
    Index("ix_lunos_requests_replay", "replay_of",
          sqlite_where=text("replay_of IS NOT NULL"), postgresql_where=text("replay_of IS NOT NULL")),
    Index("ix_lunos_requests_created", "created_at"),
)

# The response cache's entries when Redis is not configured (SPEC §10, cache/stores.py).
response_cache = Table(
    "lunos_response_cache",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 of scope, model, messages, parameters
    Column("scope", String(64)),  # what a semantic match must share (set only with a vector)
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("value", Text, nullable=False),  # JSON: the chat completion
    Column("vector", LargeBinary),  # float32 embedding of the prompt, for semantic matches
    Index("ix_lunos_response_cache_expires", "expires_at"),  # purge and eviction
    Index("ix_lunos_response_cache_scope", "scope"),
)

# Responses-API responses kept for `previous_response_id` and GET /v1/responses/{id}
# (SPEC §9.2); each key sees only its own.
responses = Table(
    "lunos_responses",
    metadata,
    Column("id", String(128), primary_key=True),  # `resp_…`
    Column("key_id", String(40), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("model", String(300), nullable=False),
    Column("previous_response_id", String(128)),
    Column("input_items", Text, nullable=False),  # JSON list, each item with its `id`
    Column("response", Text, nullable=False),  # JSON: the response object as returned
    Index("ix_lunos_responses_created", "created_at"),  # retention
)

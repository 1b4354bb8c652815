"""Request history rows as `GET /v1/logs` and `GET /v1/logs/{id}` return them (SPEC §7)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import Field

from ._base import BaseModel

__all__ = ["LogEntry", "LogList", "LogUsage"]


class LogUsage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost: float | None = None


class LogEntry(BaseModel):
    """One request. `request` and `response` are only filled with `observability: true`."""

    id: str
    key_id: str | None = None
    app_id: str | None = None
    endpoint: str | None = None  # the route it came through: chat, messages, responses, ...
    model: str | None = None
    requested_model: str | None = None  # what the caller asked for (SPEC §12)
    provider: str | None = None
    status: int | str | None = None
    error: Any = None
    usage: LogUsage | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    stream: bool | None = None
    created_at: datetime | str | None = Field(default=None, union_mode="left_to_right")
    trace: bool | None = None  # whether `request` / `response` were kept
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = []  # one per upstream try, with started_ms and latency_ms
    dropped_params: list[str] = []
    session_id: str | None = None  # the request's x-lunos-session-id
    replay_of: str | None = None  # the row this one replays (POST /v1/logs/{id}/replay)


class LogList(BaseModel):
    """One page; pass `next_cursor` as `cursor` to get the next (None on the last page)."""

    data: list[LogEntry] = []
    next_cursor: str | int | None = None
    total: int | None = None  # rows matching the filters, over every page

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> LogEntry:
        return self.data[index]

    def __iter__(self) -> Iterator[LogEntry]:  # type: ignore[override]
        """The rows, not pydantic's (field, value) pairs: `for row in page`."""
        return iter(self.data)

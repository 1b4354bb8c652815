"""`client.logs`: the caller's request history (the master key sees everyone's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from .._base_client import validate
from ..types.log import LogEntry, LogList

if TYPE_CHECKING:
    from .._base_client import AsyncAPIClient, SyncAPIClient


def _query(extra: Mapping[str, Any] | None, **filters: Any) -> dict[str, Any]:
    return {**{k: v for k, v in filters.items() if v is not None}, **(extra or {})}


def _path(log_id: str) -> str:
    if not isinstance(log_id, str) or not log_id:
        raise ValueError("log_id must be a non-empty string")
    return f"logs/{quote(log_id, safe='')}"


class Logs:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def list(
        self,
        *,
        model: str | None = None,
        app_id: str | None = None,
        status: int | str | None = None,
        limit: int | None = None,
        cursor: str | int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> LogList:
        """One page of history, newest first; pass `next_cursor` back as `cursor`."""
        params = _query(
            extra_query, model=model, app_id=app_id, status=status, limit=limit, cursor=cursor
        )
        response = self._client.request(
            "GET", "logs", params=params, headers=extra_headers, timeout=timeout
        )
        return validate(LogList, response)

    def retrieve(
        self,
        log_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> LogEntry:
        """One row; its id is the completion id (`response.id`)."""
        response = self._client.request(
            "GET", _path(log_id), headers=extra_headers, timeout=timeout
        )
        return validate(LogEntry, response)


class AsyncLogs:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def list(
        self,
        *,
        model: str | None = None,
        app_id: str | None = None,
        status: int | str | None = None,
        limit: int | None = None,
        cursor: str | int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> LogList:
        params = _query(
            extra_query, model=model, app_id=app_id, status=status, limit=limit, cursor=cursor
        )
        response = await self._client.request(
            "GET", "logs", params=params, headers=extra_headers, timeout=timeout
        )
        return validate(LogList, response)

    async def retrieve(
        self,
        log_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> LogEntry:
        response = await self._client.request(
            "GET", _path(log_id), headers=extra_headers, timeout=timeout
        )
        return validate(LogEntry, response)

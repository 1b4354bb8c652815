"""`client.models`: the gateway's model catalog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from .._base_client import validate
from ..types.model import ModelList

if TYPE_CHECKING:
    from .._base_client import AsyncAPIClient, SyncAPIClient


class Models:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def list(
        self,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ModelList:
        """Every model the gateway knows: id, provider, limits, prices, modalities, parameters."""
        response = self._client.request(
            "GET", "models", params=extra_query, headers=extra_headers, timeout=timeout
        )
        return validate(ModelList, response)


class AsyncModels:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def list(
        self,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ModelList:
        response = await self._client.request(
            "GET", "models", params=extra_query, headers=extra_headers, timeout=timeout
        )
        return validate(ModelList, response)

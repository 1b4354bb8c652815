"""`Lunos` and `AsyncLunos`: configuration plus the resources, built on first use."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import httpx

from ._base_client import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    AsyncAPIClient,
    SyncAPIClient,
)
from ._exceptions import LunosError
from .resources.audio import AsyncAudio, Audio
from .resources.chat import AsyncChat, Chat
from .resources.completions import AsyncTextCompletions, TextCompletions
from .resources.embeddings import AsyncEmbeddings, Embeddings
from .resources.images import AsyncImages, Images
from .resources.logs import AsyncLogs, Logs
from .resources.models import AsyncModels, Models
from .resources.responses import AsyncResponses, Responses

__all__ = ["AsyncLunos", "Lunos"]


def _options(
    api_key: str | None,
    base_url: str | None,
    timeout: float | httpx.Timeout | None,
    http_client: httpx.Client | httpx.AsyncClient | None,
) -> dict[str, Any]:
    api_key = api_key or os.environ.get("LUNOS_API_KEY")
    if not api_key:
        raise LunosError(
            "No API key: pass api_key=... to the client or set the LUNOS_API_KEY "
            "environment variable (create a key with `lunos keys create --name NAME`)."
        )
    if timeout is DEFAULT_TIMEOUT and http_client is not None:
        timeout = http_client.timeout  # the caller's client carries its own timeout
    return {
        "api_key": api_key,
        "base_url": base_url or os.environ.get("LUNOS_BASE_URL") or DEFAULT_BASE_URL,
        "timeout": timeout,
    }


class Lunos(SyncAPIClient):
    """Client for a Lunos gateway (or any OpenAI-compatible Lunos deployment).

    `api_key` defaults to $LUNOS_API_KEY and `base_url` to $LUNOS_BASE_URL, then
    http://127.0.0.1:8000 (with or without `/v1`). `app_id` is sent as `X-App-ID`.
    `timeout` is in seconds (or an `httpx.Timeout`; None waits forever). A `http_client`
    passed in is used as is and left open by `close()`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        app_id: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError("http_client must be an httpx.Client (use AsyncLunos for AsyncClient)")
        super().__init__(
            http_client=http_client,
            app_id=app_id,
            max_retries=max_retries,
            default_headers=default_headers,
            **_options(api_key, base_url, timeout, http_client),
        )

    @cached_property
    def chat(self) -> Chat:
        return Chat(self)

    @cached_property
    def responses(self) -> Responses:
        return Responses(self)

    @cached_property
    def completions(self) -> TextCompletions:
        return TextCompletions(self)

    @cached_property
    def embeddings(self) -> Embeddings:
        return Embeddings(self)

    @cached_property
    def images(self) -> Images:
        return Images(self)

    @cached_property
    def audio(self) -> Audio:
        return Audio(self)

    @cached_property
    def models(self) -> Models:
        return Models(self)

    @cached_property
    def logs(self) -> Logs:
        return Logs(self)

    def __enter__(self) -> Lunos:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lunos(base_url={self.base_url!r}, app_id={self.app_id!r})"


class AsyncLunos(AsyncAPIClient):
    """The asyncio twin of `Lunos`: same options, awaitable methods, `AsyncStream`s."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        app_id: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError("http_client must be an httpx.AsyncClient (use Lunos for Client)")
        super().__init__(
            http_client=http_client,
            app_id=app_id,
            max_retries=max_retries,
            default_headers=default_headers,
            **_options(api_key, base_url, timeout, http_client),
        )

    @cached_property
    def chat(self) -> AsyncChat:
        return AsyncChat(self)

    @cached_property
    def responses(self) -> AsyncResponses:
        return AsyncResponses(self)

    @cached_property
    def completions(self) -> AsyncTextCompletions:
        return AsyncTextCompletions(self)

    @cached_property
    def embeddings(self) -> AsyncEmbeddings:
        return AsyncEmbeddings(self)

    @cached_property
    def images(self) -> AsyncImages:
        return AsyncImages(self)

    @cached_property
    def audio(self) -> AsyncAudio:
        return AsyncAudio(self)

    @cached_property
    def models(self) -> AsyncModels:
        return AsyncModels(self)

    @cached_property
    def logs(self) -> AsyncLogs:
        return AsyncLogs(self)

    async def __aenter__(self) -> AsyncLunos:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncLunos(base_url={self.base_url!r}, app_id={self.app_id!r})"

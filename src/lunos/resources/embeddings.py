"""`client.embeddings.create`: OpenAI's embeddings parameters, plus Lunos's own
(`observability`, `models`, `fallback_model`); a parameter left at None is not sent.

Models: OpenAI-compatible providers' (`openai/text-embedding-3-small`), Gemini's
(`google/gemini-embedding-001`) and the gateway's built-in `local/all-minilm-l6-v2`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .._base_client import validate
from ..types.embeddings import CreateEmbeddingResponse

if TYPE_CHECKING:
    from .._base_client import AsyncAPIClient, SyncAPIClient

__all__ = ["AsyncEmbeddings", "Embeddings"]

EMBEDDING_PARAMS = ("input", "model", "dimensions", "encoding_format", "user",
                    "observability", "models", "fallback_model")
Input = str | list[str] | list[int] | list[list[int]]


def _body(values: Mapping[str, Any], extra_body: Mapping[str, Any] | None) -> dict[str, Any]:
    body = {name: values[name] for name in EMBEDDING_PARAMS if values[name] is not None}
    body.update(extra_body or {})
    return body


class Embeddings:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def create(
        self,
        *,
        input: Input,
        model: str,
        dimensions: int | None = None,
        encoding_format: Literal["float", "base64"] | None = None,
        user: str | None = None,
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> CreateEmbeddingResponse:
        """One vector per input, in order (floats unless `encoding_format="base64"`)."""
        response = self._client.request(
            "POST", "embeddings", body=_body(locals(), extra_body), params=extra_query,
            headers=extra_headers, timeout=timeout,
        )
        return validate(CreateEmbeddingResponse, response)


class AsyncEmbeddings:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def create(
        self,
        *,
        input: Input,
        model: str,
        dimensions: int | None = None,
        encoding_format: Literal["float", "base64"] | None = None,
        user: str | None = None,
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> CreateEmbeddingResponse:
        response = await self._client.request(
            "POST", "embeddings", body=_body(locals(), extra_body), params=extra_query,
            headers=extra_headers, timeout=timeout,
        )
        return validate(CreateEmbeddingResponse, response)

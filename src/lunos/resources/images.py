"""`client.images.generate`: OpenAI's image generation parameters, plus Lunos's own
(`observability`, `models`, `fallback_model`); a parameter left at None is not sent.

Models: OpenAI's image models (`openai/gpt-image-1`, `openai/dall-e-3`), Gemini's
(`google/gemini-2.5-flash-image`, answered as `b64_json`) and OpenAI-compatible providers'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .._base_client import validate
from ..types.media import ImagesResponse

if TYPE_CHECKING:
    from .._base_client import AsyncAPIClient, SyncAPIClient

__all__ = ["AsyncImages", "Images"]

IMAGE_PARAMS = ("prompt", "model", "n", "size", "quality", "style", "response_format", "background",
                "output_format", "user", "observability", "models", "fallback_model")


def body_of(names: tuple[str, ...], values: Mapping[str, Any], extra_body: Mapping[str, Any] | None) -> dict:
    body = {name: values[name] for name in names if values[name] is not None}
    body.update(extra_body or {})
    return body


class Images:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def generate(
        self,
        *,
        prompt: str,
        model: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        style: str | None = None,
        response_format: Literal["url", "b64_json"] | None = None,
        background: str | None = None,
        output_format: str | None = None,
        user: str | None = None,
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ImagesResponse:
        """Images for `prompt`; `data[i].bytes()` gives each image's bytes."""
        response = self._client.request(
            "POST", "images/generations", body=body_of(IMAGE_PARAMS, locals(), extra_body),
            params=extra_query, headers=extra_headers, timeout=timeout,
        )
        return validate(ImagesResponse, response)


class AsyncImages:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def generate(
        self,
        *,
        prompt: str,
        model: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        style: str | None = None,
        response_format: Literal["url", "b64_json"] | None = None,
        background: str | None = None,
        output_format: str | None = None,
        user: str | None = None,
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ImagesResponse:
        response = await self._client.request(
            "POST", "images/generations", body=body_of(IMAGE_PARAMS, locals(), extra_body),
            params=extra_query, headers=extra_headers, timeout=timeout,
        )
        return validate(ImagesResponse, response)

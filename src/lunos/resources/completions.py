"""`client.completions.create`: legacy text completions (`POST /v1/completions`), JSON or
stream. Every parameter of OpenAI's Completions `create` is a keyword (a test holds this
against the official `openai` SDK), plus Lunos's own (`observability`, `models`,
`fallback_model`); a parameter left at None is not sent.

Models: providers with a text completions route (`openai/gpt-3.5-turbo-instruct`, OpenAI-
compatible ones); any other is a 400 naming `model` (use `client.chat.completions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from .._base_client import validate
from .._streaming import AsyncStream, Stream
from ..types.completion import Completion
from .images import body_of

if TYPE_CHECKING:
    from .._base_client import AsyncAPIClient, SyncAPIClient

__all__ = ["COMPLETION_PARAMS", "AsyncTextCompletions", "TextCompletions"]

# OpenAI's Completions parameters, then Lunos's own.
COMPLETION_PARAMS = (
    "model", "prompt", "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs",
    "max_tokens", "n", "presence_penalty", "seed", "stop", "stream", "stream_options", "suffix",
    "temperature", "top_p", "user",
    "observability", "models", "fallback_model",
)
Prompt = str | list[str] | list[int] | list[list[int]]


class TextCompletions:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def create(
        self,
        *,
        model: str,
        prompt: Prompt,
        best_of: int | None = None,
        echo: bool | None = None,
        frequency_penalty: float | None = None,
        logit_bias: Mapping[str, int] | None = None,
        logprobs: int | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        stream: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        suffix: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        user: str | None = None,
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Completion | Stream[Completion]:
        """The text that continues `prompt`; with `stream=True` a `Stream` of `Completion`
        chunks, each carrying the new text in `choices[i].text`."""
        body = body_of(COMPLETION_PARAMS, locals(), extra_body)
        streaming = bool(body.get("stream"))
        response = self._client.request(
            "POST", "completions", body=body, params=extra_query,
            headers=extra_headers, timeout=timeout, stream=streaming,
        )
        if streaming:
            return Stream(response, Completion)
        return validate(Completion, response)


class AsyncTextCompletions:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def create(
        self,
        *,
        model: str,
        prompt: Prompt,
        best_of: int | None = None,
        echo: bool | None = None,
        frequency_penalty: float | None = None,
        logit_bias: Mapping[str, int] | None = None,
        logprobs: int | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        stream: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        suffix: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        user: str | None = None,
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Completion | AsyncStream[Completion]:
        """The text that continues `prompt`; with `stream=True` an `AsyncStream` of
        `Completion` chunks."""
        body = body_of(COMPLETION_PARAMS, locals(), extra_body)
        streaming = bool(body.get("stream"))
        response = await self._client.request(
            "POST", "completions", body=body, params=extra_query,
            headers=extra_headers, timeout=timeout, stream=streaming,
        )
        if streaming:
            return AsyncStream(response, Completion)
        return validate(Completion, response)

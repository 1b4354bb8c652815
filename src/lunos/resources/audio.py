"""`client.audio.speech.create` (text to speech: the audio as it streams in, a
`BinaryResponse`) and `client.audio.transcriptions.create` (an audio file, uploaded as
multipart, to text). OpenAI's parameters plus Lunos's `observability`, `models` and
`fallback_model`; a parameter left at None is not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from os import PathLike
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import httpx

from .._base_client import validate
from .._binary import AsyncBinaryResponse, BinaryResponse
from ..types.media import Transcription
from .images import body_of

if TYPE_CHECKING:
    from .._base_client import AsyncAPIClient, SyncAPIClient

__all__ = ["AsyncAudio", "Audio"]

SPEECH_PARAMS = ("model", "input", "voice", "response_format", "speed", "instructions",
                 "observability", "models", "fallback_model")
TRANSCRIPTION_PARAMS = ("model", "language", "prompt", "response_format", "temperature",
                        "observability", "models", "fallback_model")
FileInput = bytes | IO[bytes] | str | PathLike[str] | tuple


def _upload(file: FileInput) -> tuple:
    """httpx's file tuple for `file`: a path, bytes, an open binary file, or a tuple as
    httpx and the openai SDK take it (name, content[, content type])."""
    if isinstance(file, tuple):
        return file
    if isinstance(file, (str, PathLike)):
        path = Path(file)
        return (path.name, path.read_bytes())
    if isinstance(file, bytes):
        return ("audio", file)
    return (Path(getattr(file, "name", "audio")).name, file.read())


def _transcription(response: httpx.Response) -> Transcription | str:
    if response.headers.get("content-type", "").startswith("application/json"):
        return validate(Transcription, response)
    return response.text  # response_format text, srt or vtt


class Speech:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def create(
        self,
        *,
        input: str,
        model: str,
        voice: str,
        response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None,
        speed: float | None = None,
        instructions: str | None = None,
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> BinaryResponse:
        response = self._client.request(
            "POST", "audio/speech", body=body_of(SPEECH_PARAMS, locals(), extra_body),
            headers=extra_headers, timeout=timeout, stream=True,
        )
        return BinaryResponse(response)


class Transcriptions:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def create(
        self,
        *,
        file: FileInput,
        model: str,
        language: str | None = None,
        prompt: str | None = None,
        response_format: Literal["json", "text", "srt", "verbose_json", "vtt"] | None = None,
        temperature: float | None = None,
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Transcription | str:
        """The transcript: a `Transcription` (json formats) or the text (text, srt, vtt)."""
        response = self._client.request(
            "POST", "audio/transcriptions", body=body_of(TRANSCRIPTION_PARAMS, locals(), extra_body),
            files={"file": _upload(file)}, headers=extra_headers, timeout=timeout,
        )
        return _transcription(response)


class Audio:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    @cached_property
    def speech(self) -> Speech:
        return Speech(self._client)

    @cached_property
    def transcriptions(self) -> Transcriptions:
        return Transcriptions(self._client)


class AsyncSpeech:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def create(
        self,
        *,
        input: str,
        model: str,
        voice: str,
        response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None,
        speed: float | None = None,
        instructions: str | None = None,
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> AsyncBinaryResponse:
        response = await self._client.request(
            "POST", "audio/speech", body=body_of(SPEECH_PARAMS, locals(), extra_body),
            headers=extra_headers, timeout=timeout, stream=True,
        )
        return AsyncBinaryResponse(response)


class AsyncTranscriptions:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def create(
        self,
        *,
        file: FileInput,
        model: str,
        language: str | None = None,
        prompt: str | None = None,
        response_format: Literal["json", "text", "srt", "verbose_json", "vtt"] | None = None,
        temperature: float | None = None,
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Transcription | str:
        response = await self._client.request(
            "POST", "audio/transcriptions", body=body_of(TRANSCRIPTION_PARAMS, locals(), extra_body),
            files={"file": _upload(file)}, headers=extra_headers, timeout=timeout,
        )
        return _transcription(response)


class AsyncAudio:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    @cached_property
    def speech(self) -> AsyncSpeech:
        return AsyncSpeech(self._client)

    @cached_property
    def transcriptions(self) -> AsyncTranscriptions:
        return AsyncTranscriptions(self._client)

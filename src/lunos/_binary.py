"""`BinaryResponse`: audio (or any bytes) as the gateway streams it.

    speech = client.audio.speech.create(model="openai/tts-1", voice="alloy", input="Hi",
                                        response_format="wav")
    speech.write_to_file("hi.wav")        # written piece by piece as it arrives
    audio = speech.content                # or all of it in memory

The connection stays open until the body is read whole or `close()` is called (a `with`
block does that).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from os import PathLike

import httpx

__all__ = ["AsyncBinaryResponse", "BinaryResponse"]


class BinaryResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.http_response = response

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    @property
    def content(self) -> bytes:
        return self.http_response.read()

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        return self.http_response.iter_bytes(chunk_size)

    def write_to_file(self, path: str | PathLike[str]) -> int:
        """Write the bytes to `path` as they arrive; return how many were written."""
        written = 0
        with open(path, "wb") as out:
            for piece in self.http_response.iter_bytes():
                out.write(piece)
                written += len(piece)
        return written

    def close(self) -> None:
        self.http_response.close()

    def __enter__(self) -> BinaryResponse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncBinaryResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.http_response = response

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    async def read(self) -> bytes:
        return await self.http_response.aread()

    def iter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        return self.http_response.aiter_bytes(chunk_size)

    async def write_to_file(self, path: str | PathLike[str]) -> int:
        written = 0
        with open(path, "wb") as out:
            async for piece in self.http_response.aiter_bytes():
                out.write(piece)
                written += len(piece)
        return written

    async def close(self) -> None:
        await self.http_response.aclose()

    async def __aenter__(self) -> AsyncBinaryResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

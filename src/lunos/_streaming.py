"""`Stream` / `AsyncStream`: typed chunks out of a Server-Sent Events response.

Bytes go through the shared `SSEDecoder`; each event's JSON becomes one item. `data: [DONE]`
ends the stream (or, for APIs without it, an item for which `last(item)` is true); an event
carrying an `error` object raises the typed error (the server sends one when a stream fails
after it started); a body that ends with neither raises `IncompleteStreamError`, so a cut
answer is never taken for a whole one. The response is closed when iteration
ends for any reason: exhaustion, `[DONE]`, an error, `break`, or leaving a `with` block.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

import httpx
import pydantic

from ._accumulate import accumulate
from ._base_client import connection_error
from ._exceptions import APIResponseValidationError, IncompleteStreamError, make_stream_error
from ._sse import ServerSentEvent, SSEDecoder
from .types.chat import ChatCompletion

ItemT = TypeVar("ItemT", bound=pydantic.BaseModel)


class _Decode(Generic[ItemT]):
    """Event -> item (or the error it carries), shared by both streams."""

    def __init__(self, response: httpx.Response, cast: type[ItemT]) -> None:
        self.response = response
        self._cast = cast

    def item(self, event: ServerSentEvent) -> ItemT:
        try:
            payload: Any = json.loads(event.data)
        except ValueError as exc:
            if event.event == "error":
                payload = {"error": {"message": event.data}}
            else:
                raise APIResponseValidationError(
                    f"A stream event is not valid JSON: {event.data[:200]!r}",
                    self.response,
                    body=event.data,
                ) from exc
        if isinstance(payload, dict):
            error = payload.get("error")
            if isinstance(error, str):
                payload = {"error": {"message": error}}
            elif event.event == "error" and not isinstance(error, dict):
                payload = {"error": payload}
            if isinstance(payload.get("error"), dict):
                raise make_stream_error(self.response, payload)
        try:
            return self._cast.model_validate(payload)
        except pydantic.ValidationError as exc:
            raise APIResponseValidationError(
                f"A stream event does not fit {self._cast.__name__}: {exc}",
                self.response,
                body=payload,
            ) from exc


class Stream(Generic[ItemT]):
    """Iterate it (once) for the items; use it as a context manager to close it early."""

    def __init__(
        self,
        response: httpx.Response,
        cast: type[ItemT],
        *,
        last: Callable[[ItemT], bool] | None = None,
    ) -> None:
        self.response = response
        self._decode = _Decode(response, cast)
        self._last = last
        self._iterator = self._items()

    @property
    def request_id(self) -> str | None:
        return self.response.headers.get("x-request-id")

    def _events(self) -> Iterator[ServerSentEvent]:
        decoder = SSEDecoder()
        for data in self.response.iter_bytes():
            yield from decoder.feed(data)
        yield from decoder.flush()

    def _items(self) -> Iterator[ItemT]:
        try:
            for event in self._events():
                if event.data == "[DONE]":
                    return
                if event.data.strip() or event.event == "error":  # no data: a keep-alive
                    item = self._decode.item(event)
                    yield item
                    if self._last is not None and self._last(item):
                        return
            raise IncompleteStreamError(self.response.request)
        except httpx.TransportError as exc:  # the connection broke mid-stream: never retried
            raise connection_error(self.response.request, exc) from exc
        finally:
            self.response.close()

    def __iter__(self) -> Iterator[ItemT]:
        # A generator of its own, so that a `break` out of a plain `for` loop (which drops
        # it) closes the response right away.
        try:
            yield from self._iterator
        finally:
            self.close()

    def __next__(self) -> ItemT:
        return next(self._iterator)

    def __enter__(self) -> Stream[ItemT]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._iterator.close()
        self.response.close()

    def get_final_completion(self) -> ChatCompletion:
        """Consume the rest of a chat stream and return the completion it adds up to."""
        snapshot: ChatCompletion | None = None
        for chunk in self:
            snapshot = accumulate(snapshot, chunk)
        return snapshot if snapshot is not None else ChatCompletion()


class AsyncStream(Generic[ItemT]):
    """`async for` it (once); use `async with` to close it early."""

    def __init__(
        self,
        response: httpx.Response,
        cast: type[ItemT],
        *,
        last: Callable[[ItemT], bool] | None = None,
    ) -> None:
        self.response = response
        self._decode = _Decode(response, cast)
        self._last = last
        self._iterator = self._items()

    @property
    def request_id(self) -> str | None:
        return self.response.headers.get("x-request-id")

    async def _events(self) -> AsyncIterator[ServerSentEvent]:
        decoder = SSEDecoder()
        async for data in self.response.aiter_bytes():
            for event in decoder.feed(data):
                yield event
        for event in decoder.flush():
            yield event

    async def _items(self) -> AsyncIterator[ItemT]:
        events = self._events()
        try:
            async for event in events:
                if event.data == "[DONE]":
                    return
                if event.data.strip() or event.event == "error":  # no data: a keep-alive
                    item = self._decode.item(event)
                    yield item
                    if self._last is not None and self._last(item):
                        return
            raise IncompleteStreamError(self.response.request)
        except httpx.TransportError as exc:
            raise connection_error(self.response.request, exc) from exc
        finally:
            await events.aclose()
            await self.response.aclose()

    def __aiter__(self) -> AsyncIterator[ItemT]:
        return self._guarded()

    async def _guarded(self) -> AsyncIterator[ItemT]:
        try:
            async for item in self._iterator:
                yield item
        finally:
            await self.close()

    async def __anext__(self) -> ItemT:
        return await self._iterator.__anext__()

    async def __aenter__(self) -> AsyncStream[ItemT]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._iterator.aclose()
        await self.response.aclose()

    async def get_final_completion(self) -> ChatCompletion:
        snapshot: ChatCompletion | None = None
        async for chunk in self:
            snapshot = accumulate(snapshot, chunk)
        return snapshot if snapshot is not None else ChatCompletion()

"""`ResponseStream` / `AsyncResponseStream`: the typed events of a streamed Responses answer.

A Responses stream has no `data: [DONE]`: it ends with `response.completed`,
`response.incomplete` or `response.failed`. As for chat, a failure is raised, never
yielded: `response.failed` raises the error it carries (its `body["response"]` is the failed
response), an `error` event raises its error, and a body that ends before a last event
raises `IncompleteStreamError`. The response is closed however iteration stops.

    with client.responses.stream(model=..., input="Hi") as stream:
        for text in stream.text_deltas():
            print(text, end="")
        final = stream.get_final_response()
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Generic, TypeVar

import httpx

from ._exceptions import LunosError, make_stream_error
from ._streaming import AsyncStream, Stream
from .types.responses import Response, ResponseStreamEvent

__all__ = [
    "AsyncResponseStream",
    "AsyncResponseStreamManager",
    "ResponseStream",
    "ResponseStreamManager",
]

LAST_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
TEXT_DELTA = "response.output_text.delta"

FinalT = TypeVar("FinalT", bound=Response)


def _is_last(event: ResponseStreamEvent) -> bool:
    return event.type in LAST_EVENTS


def _raise_failure(response: httpx.Response, event: ResponseStreamEvent) -> None:
    if event.type == "error":
        error = {k: v for k, v in event.model_dump().items() if k in ("code", "message", "param")}
        raise make_stream_error(response, {"error": error})
    if event.type == "response.failed":
        failed = event.response.model_dump(mode="json") if event.response else {}
        error = failed.get("error") or {"message": "The response failed."}
        raise make_stream_error(response, {"error": error, "response": failed})


def _final(final: Response | None) -> Response:
    if final is None:
        raise LunosError("The stream was closed before its last event: there is no final response.")
    return final


class ResponseStream(Generic[FinalT]):
    """Iterate it (once) for `ResponseStreamEvent`s; a context manager that closes it."""

    def __init__(
        self, response: httpx.Response, finish: Callable[[Response], FinalT] | None = None
    ) -> None:
        self.response = response
        self._stream = Stream(response, ResponseStreamEvent, last=_is_last)
        self._finish = finish
        self._final: Response | None = None
        self._iterator = self._events()

    @property
    def request_id(self) -> str | None:
        return self.response.headers.get("x-request-id")

    def _events(self) -> Iterator[ResponseStreamEvent]:
        for event in self._stream:
            _raise_failure(self.response, event)
            if _is_last(event):
                self._final = event.response
            yield event

    def __iter__(self) -> Iterator[ResponseStreamEvent]:
        try:
            yield from self._iterator
        finally:
            self.close()

    def __next__(self) -> ResponseStreamEvent:
        return next(self._iterator)

    def __enter__(self) -> ResponseStream[FinalT]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._iterator.close()
        self._stream.close()

    def text_deltas(self) -> Iterator[str]:
        """The answer's text as it arrives (the `response.output_text.delta` events)."""
        for event in self:
            if event.type == TEXT_DELTA and event.delta:
                yield event.delta

    def until_done(self) -> ResponseStream[FinalT]:
        for _ in self:
            pass
        return self

    def get_final_response(self) -> FinalT:
        """Consume the rest of the stream; the response its last event carries (status
        `completed` or `incomplete`), parsed when the stream came from `text_format`."""
        self.until_done()
        final = _final(self._final)
        return self._finish(final) if self._finish else final  # type: ignore[return-value]


class AsyncResponseStream(Generic[FinalT]):
    """`async for` it (once) for `ResponseStreamEvent`s; `async with` closes it."""

    def __init__(
        self, response: httpx.Response, finish: Callable[[Response], FinalT] | None = None
    ) -> None:
        self.response = response
        self._stream = AsyncStream(response, ResponseStreamEvent, last=_is_last)
        self._finish = finish
        self._final: Response | None = None
        self._iterator = self._events()

    @property
    def request_id(self) -> str | None:
        return self.response.headers.get("x-request-id")

    async def _events(self) -> AsyncIterator[ResponseStreamEvent]:
        async for event in self._stream:
            _raise_failure(self.response, event)
            if _is_last(event):
                self._final = event.response
            yield event

    def __aiter__(self) -> AsyncIterator[ResponseStreamEvent]:
        return self._guarded()

    async def _guarded(self) -> AsyncIterator[ResponseStreamEvent]:
        try:
            async for event in self._iterator:
                yield event
        finally:
            await self.close()

    async def __anext__(self) -> ResponseStreamEvent:
        return await self._iterator.__anext__()

    async def __aenter__(self) -> AsyncResponseStream[FinalT]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._iterator.aclose()
        await self._stream.close()

    async def text_deltas(self) -> AsyncIterator[str]:
        async for event in self:
            if event.type == TEXT_DELTA and event.delta:
                yield event.delta

    async def until_done(self) -> AsyncResponseStream[FinalT]:
        async for _ in self:
            pass
        return self

    async def get_final_response(self) -> FinalT:
        await self.until_done()
        final = _final(self._final)
        return self._finish(final) if self._finish else final  # type: ignore[return-value]


class ResponseStreamManager(Generic[FinalT]):
    """What `responses.stream()` returns: the request is sent on entering the `with` block,
    and the stream closed on leaving it."""

    def __init__(self, open_stream: Callable[[], ResponseStream[FinalT]]) -> None:
        self._open = open_stream
        self._stream: ResponseStream[FinalT] | None = None

    def __enter__(self) -> ResponseStream[FinalT]:
        self._stream = self._open()
        return self._stream

    def __exit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            self._stream.close()


class AsyncResponseStreamManager(Generic[FinalT]):
    """The `async with` twin of `ResponseStreamManager`."""

    def __init__(self, open_stream: Callable[[], Awaitable[AsyncResponseStream[FinalT]]]) -> None:
        self._open = open_stream
        self._stream: AsyncResponseStream[FinalT] | None = None

    async def __aenter__(self) -> AsyncResponseStream[FinalT]:
        self._stream = await self._open()
        return self._stream

    async def __aexit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            await self._stream.close()

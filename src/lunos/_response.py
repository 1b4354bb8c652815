"""`RawResponse`: the HTTP answer behind a call, for what only its headers say.

    raw = client.chat.completions.with_raw_response.create(..., drop_params=True)
    raw.headers.get("x-lunos-dropped-params")   # "seed,frequency_penalty"
    completion = raw.parse()                    # what `create` would have returned

`parse()` builds the result on first call and returns the same object afterwards. For a
stream the result is the `Stream` itself: iterate or close it, or the connection stays open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import httpx

__all__ = ["RawResponse"]

T = TypeVar("T")
U = TypeVar("U")

_UNSET = object()


class RawResponse(Generic[T]):
    def __init__(self, http_response: httpx.Response, parse: Callable[[], T]) -> None:
        self.http_response = http_response
        self._parse = parse
        self._parsed: object = _UNSET

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def request_id(self) -> str | None:
        """The gateway's id for this request (the id of its history row)."""
        return self.http_response.headers.get("x-request-id")

    def parse(self) -> T:
        if self._parsed is _UNSET:
            self._parsed = self._parse()
        return self._parsed  # type: ignore[return-value]

    def _map(self, convert: Callable[[T], U]) -> RawResponse[U]:
        """The same HTTP answer, parsed one step further."""
        return RawResponse(self.http_response, lambda: convert(self.parse()))

    def __repr__(self) -> str:
        return f"<RawResponse [{self.status_code}] request_id={self.request_id!r}>"

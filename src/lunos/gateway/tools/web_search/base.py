"""The search backend interface: one query in, a list of results out.

A backend knows its API's request and response shapes and nothing else. It never raises
anything but `SearchError`: a backend that is down, too slow, answers with an error status
or with something that is not search results is the same failure to the tool loop, which
tells the model and marks the answer (see loop.py). Messages name the backend, never its
URL or key: they reach the model, the client and the history row.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ...http_client import (
    HttpClient,
    Timeouts,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamTimeout,
)

log = logging.getLogger("lunos.search")

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    max_results: int = 5
    allowed_domains: tuple[str, ...] = ()
    excluded_domains: tuple[str, ...] = ()
    context_size: str = "medium"  # low | medium | high (search_context_size)
    snippet_chars: int = 800  # text kept per result


@dataclass(frozen=True, slots=True)
class Result:
    url: str
    title: str
    snippet: str


class SearchError(Exception):
    """The backend gave no usable results; `kind` is unavailable, timeout, status or bad_response."""

    def __init__(self, backend: str, message: str, kind: str) -> None:
        super().__init__(f"{backend} {message}")
        self.backend = backend
        self.kind = kind


class Backend(Protocol):
    name: str

    async def search(self, client: HttpClient, query: Query, timeout: float) -> list[Result]: ...


async def request_json(client: HttpClient, backend: str, method: str, url: str,
                       headers: list[tuple[str, str]], body: bytes, timeout: float) -> Any:
    """Send one request through the gateway's pooled client and decode its JSON answer,
    all within `timeout` seconds."""
    timeouts = Timeouts(connect=timeout, first_byte=timeout, idle=timeout)

    async def exchange() -> tuple[int, bytes]:
        response = await client.request(method, url, headers, body, timeouts=timeouts)
        return response.status, await response.read(limit=MAX_RESPONSE_BYTES)

    try:
        status, raw = await asyncio.wait_for(exchange(), timeout)
    except (asyncio.TimeoutError, UpstreamTimeout):
        raise SearchError(backend, f"did not answer within {timeout:g} s", "timeout") from None
    except UpstreamConnectError as exc:
        log.warning("search backend %s unreachable: %s", backend, exc)
        raise SearchError(backend, "is unreachable", "unavailable") from None
    except UpstreamProtocolError as exc:
        log.warning("search backend %s: %s", backend, exc)
        raise SearchError(backend, "broke off its answer", "bad_response") from None
    except ValueError as exc:  # not an http(s) URL, or a key with a line break
        log.warning("search backend %s is misconfigured: %s", backend, exc)
        raise SearchError(backend, "is misconfigured (its URL or key)", "unavailable") from None
    if status >= 400:
        log.warning("search backend %s answered HTTP %d: %s", backend, status,
                    raw[:300].decode("utf-8", "replace"))
        raise SearchError(backend, f"answered HTTP {status}", "status")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise SearchError(backend, "sent an answer that is not JSON", "bad_response") from None


def results_list(data: Any, backend: str, *path: str) -> list[dict]:
    """`data[path...]` as a list of objects, or a SearchError saying the shape is wrong."""
    value = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, list):
        raise SearchError(backend, "sent an answer without a results list", "bad_response")
    return [item for item in value if isinstance(item, dict)]


def plain(text: Any) -> str:
    """Backend text as plain text: tags removed, entities decoded, whitespace collapsed."""
    if not isinstance(text, str):
        return ""
    return _SPACE.sub(" ", html.unescape(_TAG.sub("", text))).strip()


def result(url: Any, title: Any, *snippets: Any) -> Result | None:
    """A Result from raw backend fields, or None when it has no http(s) URL."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    text = " ".join(s for s in (plain(x) for x in snippets) if s)
    return Result(url, plain(title) or url, text)

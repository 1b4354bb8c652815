"""The request loop shared by `Lunos` and `AsyncLunos`.

One job: send a request, retry what is worth retrying, and turn error answers into typed
errors. Retries happen on connection errors, timeouts and the statuses in `RETRY_STATUSES`,
never on other 4xx, and never once a stream has begun (a stream's status line is the last
point a retry can happen). A server that says `x-should-retry: false` (the gateway does, on
errors it already retried upstream) is believed.

The wait before retry n (0-based) is `Retry-After` when the server sent one within
`MAX_RETRY_AFTER` seconds, else `INITIAL_RETRY_DELAY * 2**n` capped at `MAX_RETRY_DELAY`,
minus up to 25% random jitter. A `Retry-After` beyond the cap is not retried: the caller
gets the error now rather than a request that hangs for minutes.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import platform
import random
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import pydantic

from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    make_status_error,
)

VERSION = "0.1.0"

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({408, 409, 429})  # and every status >= 500

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

# Looked up at call time, so tests can replace them.
_sleep = time.sleep
_async_sleep = asyncio.sleep


def _jitter() -> float:
    return random.random()


def parse_retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, then `retry-after` as seconds
    or as an HTTP date. None when absent or unreadable; never negative."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # RFC 7231 dates are GMT
        return None
    return max(moment.timestamp() - (time.time() if now is None else now), 0.0)


def retry_delay(attempt: int, headers: httpx.Headers | None = None) -> float | None:
    """Seconds to wait before retry number `attempt` (0-based), or None for "do not retry"
    (the server asked for a wait longer than `MAX_RETRY_AFTER`)."""
    if headers is not None:
        asked = parse_retry_after(headers)
        if asked is not None:
            return asked if asked <= MAX_RETRY_AFTER else None
    backoff = min(INITIAL_RETRY_DELAY * 2.0 ** min(attempt, 32), MAX_RETRY_DELAY)
    return backoff * (1.0 - 0.25 * _jitter())


def should_retry(response: httpx.Response) -> bool:
    if response.headers.get("x-should-retry", "").strip().lower() == "false":
        return False
    return response.status_code in RETRY_STATUSES or response.status_code >= 500


def jsonable(value: Any) -> Any:
    """Request bodies may hold SDK results (e.g. an assistant message sent back on the next
    turn): pydantic models become plain dicts, without their unset (None) fields."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", exclude_none=True, by_alias=True)
    if isinstance(value, Mapping):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def decode_body(response: httpx.Response) -> object:
    """An error body as JSON when it is JSON, else as text (None when empty)."""
    try:
        return response.json()
    except ValueError:
        return response.text or None


def validate(cls: type[ModelT], response: httpx.Response) -> ModelT:
    try:
        data = response.json()
    except ValueError as exc:
        raise APIResponseValidationError(
            f"The API answered {response.status_code} with a body that is not JSON.",
            response,
            body=response.text,
        ) from exc
    try:
        return cls.model_validate(data)
    except pydantic.ValidationError as exc:
        raise APIResponseValidationError(
            f"The API answer does not fit {cls.__name__}: {exc}", response, body=data
        ) from exc


def normalize_base_url(url: str) -> str:
    """`http://host:8000`, `http://host:8000/` and `http://host:8000/v1` all mean the API
    root `http://host:8000/v1`."""
    url = url.strip().rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class BaseClient:
    """Configuration and request building; the sync and async loops live below."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        app_id: str | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        default_headers: Mapping[str, str] | None,
    ) -> None:
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ValueError("max_retries must be an integer >= 0")
        self.api_key = api_key
        self.base_url = normalize_base_url(base_url)
        self.app_id = app_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.default_headers = dict(default_headers or {})

    @property
    def user_agent(self) -> str:
        return f"lunos-python/{VERSION} python/{platform.python_version()}"

    def _headers(self, stream: bool, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": self.user_agent,
            "Accept": "text/event-stream" if stream else "application/json",
        }
        if self.app_id:
            headers["X-App-ID"] = self.app_id
        headers.update(self.default_headers)
        headers.update(extra or {})
        return headers

    def _build_request(
        self,
        http: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        *,
        body: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        timeout: float | httpx.Timeout | None,
        stream: bool,
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Request:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        # A multipart body (`files`: uploads) carries the other fields as form fields.
        content: dict[str, Any] = {"json": jsonable(body) if body is not None else None}
        if files:
            content = {"files": files, "data": {k: _form_value(v) for k, v in (body or {}).items()}}
        return http.build_request(
            method,
            f"{self.base_url}/{path.lstrip('/')}",
            **content,
            params=query or None,
            headers=self._headers(stream, headers),
            timeout=self.timeout if timeout is None else timeout,
        )

    def _retry_wait(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before retrying, or None to give up now."""
        if attempt >= self.max_retries:
            return None
        if response is None:
            return retry_delay(attempt)
        if not should_retry(response):
            return None
        return retry_delay(attempt, response.headers)


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))  # Lunos's `models` fallback list
    return str(value)


def connection_error(request: httpx.Request, exc: httpx.TransportError) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(request)
    return APIConnectionError(request, f"Connection error: {exc}" if str(exc) else "Connection error.")


def _retryable_transport_error(exc: httpx.TransportError) -> bool:
    return not isinstance(exc, httpx.UnsupportedProtocol)


class SyncAPIClient(BaseClient):
    def __init__(self, *, http_client: httpx.Client | None, **options: Any) -> None:
        super().__init__(**options)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(follow_redirects=True)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        stream: bool = False,
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send with retries. Returns a 2xx/3xx response (unread when `stream`), or raises."""
        request = self._build_request(
            self._http, method, path, body=body, params=params, headers=headers,
            timeout=timeout, stream=stream, files=files,
        )
        attempt = 0
        while True:
            try:
                response = self._http.send(request, stream=stream)
                if response.status_code < 400:
                    return response
                try:
                    response.read()
                finally:
                    response.close()
            except httpx.TransportError as exc:
                wait = self._retry_wait(attempt, None) if _retryable_transport_error(exc) else None
                if wait is None:
                    raise connection_error(request, exc) from exc
            else:
                wait = self._retry_wait(attempt, response)
                if wait is None:
                    raise make_status_error(response, decode_body(response))
            _sleep(wait)
            attempt += 1

    def close(self) -> None:
        """Close the connection pool (a `http_client` passed in stays the caller's to close)."""
        if self._owns_http:
            self._http.close()


class AsyncAPIClient(BaseClient):
    def __init__(self, *, http_client: httpx.AsyncClient | None, **options: Any) -> None:
        super().__init__(**options)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(follow_redirects=True)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        stream: bool = False,
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        request = self._build_request(
            self._http, method, path, body=body, params=params, headers=headers,
            timeout=timeout, stream=stream, files=files,
        )
        attempt = 0
        while True:
            try:
                response = await self._http.send(request, stream=stream)
                if response.status_code < 400:
                    return response
                try:
                    await response.aread()
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                wait = self._retry_wait(attempt, None) if _retryable_transport_error(exc) else None
                if wait is None:
                    raise connection_error(request, exc) from exc
            else:
                wait = self._retry_wait(attempt, response)
                if wait is None:
                    raise make_status_error(response, decode_body(response))
            await _async_sleep(wait)
            attempt += 1

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

"""The SDK's errors.

    LunosError                      anything the SDK raises on purpose
     ├── APIError                   something went wrong talking to the API
     │    ├── APIStatusError        the API answered with an error (HTTP >= 400, or an
     │    │    │                    error event inside a stream)
     │    │    ├── BadRequestError            400
     │    │    ├── AuthenticationError        401
     │    │    ├── PermissionDeniedError      403
     │    │    ├── NotFoundError              404
     │    │    ├── ConflictError              409
     │    │    ├── UnprocessableEntityError   422
     │    │    ├── RateLimitError             429
     │    │    └── InternalServerError        >= 500
     │    ├── APIConnectionError    no answer at all (DNS, refused, reset...)
     │    │    ├── APITimeoutError  the request timed out
     │    │    └── IncompleteStreamError  a stream ended with neither `[DONE]` nor an error
     │    └── APIResponseValidationError  an answer the SDK cannot read (bad JSON, wrong shape)
     └── StructuredOutputError      `parse()` got no valid object (refusal, truncation, bad JSON)

Other statuses (408, 413, ...) raise `APIStatusError` itself.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "IncompleteStreamError",
    "InternalServerError",
    "LunosError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "StructuredOutputError",
    "UnprocessableEntityError",
]


class LunosError(Exception):
    pass


class APIError(LunosError):
    """`request` is the httpx request; `body` the decoded error body when there was one."""

    def __init__(
        self, message: str, request: httpx.Request | None = None, *, body: object = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body


class APIStatusError(APIError):
    """An error answer. `type`, `param` and `code` come from the `{"error": {...}}` body."""

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: object = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, response.request, body=body)
        self.response = response
        self.status_code = status_code if status_code is not None else response.status_code
        self.request_id: str | None = response.headers.get("x-request-id")
        error = _error_object(body)
        self.type: str | None = _str_or_none(error.get("type"))
        self.param: str | None = _str_or_none(error.get("param"))
        self.code: str | None = _str_or_none(error.get("code"))

    def __str__(self) -> str:
        parts = [f"Error code: {self.status_code} - {self.message}"]
        if self.param:
            parts.append(f"(param: {self.param})")
        if self.request_id:
            parts.append(f"[request_id: {self.request_id}]")
        return " ".join(parts)


class BadRequestError(APIStatusError):
    status_code = 400


class AuthenticationError(APIStatusError):
    status_code = 401


class PermissionDeniedError(APIStatusError):
    status_code = 403


class NotFoundError(APIStatusError):
    status_code = 404


class ConflictError(APIStatusError):
    status_code = 409


class UnprocessableEntityError(APIStatusError):
    status_code = 422


class RateLimitError(APIStatusError):
    status_code = 429


class InternalServerError(APIStatusError):
    pass


class APIConnectionError(APIError):
    def __init__(self, request: httpx.Request, message: str = "Connection error.") -> None:
        super().__init__(message, request)


class APITimeoutError(APIConnectionError):
    def __init__(self, request: httpx.Request) -> None:
        super().__init__(request, "Request timed out.")


class IncompleteStreamError(APIConnectionError):
    """The connection closed mid-stream, cleanly at the HTTP level: the answer is cut short.
    A complete stream ends with `data: [DONE]`, a failed one with an error event."""

    def __init__(self, request: httpx.Request) -> None:
        super().__init__(
            request,
            "The stream ended before `data: [DONE]` and without an error event: "
            "the connection was cut and the answer is incomplete.",
        )


class APIResponseValidationError(APIError):
    def __init__(
        self, message: str, response: httpx.Response | None = None, *, body: object = None
    ) -> None:
        super().__init__(message, response.request if response is not None else None, body=body)
        self.response = response


class StructuredOutputError(LunosError):
    """`completion` is the ChatCompletion that could not be parsed into the model."""

    def __init__(self, message: str, completion: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.completion = completion


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

# Error `type`s the gateway (and OpenAI-compatible servers) use, for errors that arrive
# inside a 200 stream and so have no status of their own.
_STATUS_BY_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "rate_limit_error": 429,
    "internal_error": 500,
    "api_error": 500,
    "server_error": 500,
    "upstream_error": 502,
    "service_unavailable": 503,
    "overloaded_error": 503,
    "timeout_error": 504,
}


def status_error_class(status: int) -> type[APIStatusError]:
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, APIStatusError)


def make_status_error(response: httpx.Response, body: object) -> APIStatusError:
    """The typed error for an error answer whose body has already been read and decoded."""
    message = _str_or_none(_error_object(body).get("message"))
    if message is None:
        message = body if isinstance(body, str) and body else response.reason_phrase
    cls = status_error_class(response.status_code)
    return cls(message or "error", response=response, body=body)


def make_stream_error(response: httpx.Response, body: dict) -> APIError:
    """The typed error for an `{"error": {...}}` event inside a stream.

    The stream itself answered 200, so the status comes from the error object: an integer
    `status` (or numeric `code`) if present, else its `type`. With neither, a plain APIError.
    """
    error = _error_object(body)
    message = _str_or_none(error.get("message")) or "The stream ended with an error."
    status = _status_of(error)
    if status is None:
        return APIError(message, response.request, body=body)
    return status_error_class(status)(message, response=response, body=body, status_code=status)


def _status_of(error: dict) -> int | None:
    for key in ("status", "status_code", "code"):
        value = error.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 400 <= value < 600:
            return value
        if isinstance(value, str) and value.isdigit() and 400 <= int(value) < 600:
            return int(value)
    kind = error.get("type")
    return _STATUS_BY_TYPE.get(kind) if isinstance(kind, str) else None


def _error_object(body: object) -> dict:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return error
    return {}


def _str_or_none(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)

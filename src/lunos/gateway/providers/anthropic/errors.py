"""Anthropic error bodies and stream error events -> `GatewayError`.

Both arrive in one shape: `{"type": "error", "error": {"type": ..., "message": ...},
"request_id"?: ...}`. An HTTP error response carries its status; an `event: error` in a
stream does not (the stream already answered 200), so its status comes from the error
type, as the non-streaming API would have used it (`overloaded_error` is Anthropic's 529).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import GatewayError
from ..common import status_error, upstream_message

ERROR_PATHS = (("error", "message"), ("message",), ("error",))

# Anthropic error type -> the HTTP status Anthropic uses for it.
STATUS_BY_TYPE: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def redact(message: str, api_key: str | None) -> str:
    """Never let the provider key reach a client, even if the upstream echoes it."""
    if api_key and api_key in message:
        return message.replace(api_key, "[redacted]")
    return message


def error_from_response(
    status: int, body: bytes, headers: Mapping[str, str], provider: str, api_key: str | None
) -> GatewayError:
    message = redact(upstream_message(body, *ERROR_PATHS), api_key)
    return status_error(status, message, provider, headers.get("retry-after"))


def error_from_event(data: Any, provider: str, api_key: str | None) -> GatewayError:
    """A mid-stream `error` event (already JSON-decoded)."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        error = {}
    kind = error.get("type") if isinstance(error.get("type"), str) else "api_error"
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    message = redact(message or kind, api_key)
    return status_error(STATUS_BY_TYPE.get(kind, 500), message, provider)

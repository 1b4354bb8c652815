"""Gemini error bodies -> GatewayError.

Gemini answers errors as `{"error": {"code", "message", "status", "details"?}}`, in an HTTP
response or as an event in the middle of a stream. Two of them are about the gateway, not
the caller, whatever their HTTP status: an invalid API key (400 with `API_KEY_INVALID`) and
a refused one (403); both become the 502 "rejected the gateway's credentials". A 429's
`RetryInfo.retryDelay` ("37s") becomes `Retry-After` when the response has no such header.
The configured key is removed from any message before it can reach a client.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from ...errors import GatewayError
from ..common import status_error

_OUR_CREDENTIALS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})


def parse_error(status: int, body: bytes, headers: Mapping[str, str], provider: str,
                api_key: str | None) -> GatewayError:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, list) and payload:  # streamGenerateContent without alt=sse
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        text = body.decode("utf-8", "replace")[:500] or f"HTTP {status} without a body"
        return status_error(status, _redact(text, api_key), provider, headers.get("retry-after"))
    return error_from_payload(error, provider, api_key, status, headers.get("retry-after"))


def error_from_payload(error: Any, provider: str, api_key: str | None, status: int | None = None,
                       retry_after: str | None = None) -> GatewayError:
    """The `error` object of a Gemini error body (or stream event) as a GatewayError."""
    if not isinstance(error, dict):
        return GatewayError(502, f"{provider}: {_redact(str(error), api_key)}", code="upstream_error")
    message = _redact(str(error.get("message") or error.get("status") or "unknown error"), api_key)
    code = error.get("code")
    if status is None:
        status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    reasons = {d.get("reason") for d in _details(error)}
    if reasons & _OUR_CREDENTIALS:
        status = 401
    if status == 429 and not retry_after:
        retry_after = _retry_delay(error)
    return status_error(status, message, provider, retry_after)


def _details(error: dict) -> list[dict]:
    details = error.get("details")
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _retry_delay(error: dict) -> str | None:
    for detail in _details(error):
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return str(max(1, math.ceil(float(delay[:-1]))))
            except ValueError:
                return None
    return None


def _redact(text: str, api_key: str | None) -> str:
    return text.replace(api_key, "[redacted]") if api_key else text

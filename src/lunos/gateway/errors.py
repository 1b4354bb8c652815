"""The gateway's one error type and its wire shape (SPEC §6).

Every failure a client can see is a `GatewayError`; routes and the ASGI app turn it into
`{"error": {"message", "type", "param", "code"}}` with a fitting status.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "internal_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(status, "api_error")
        self.headers = headers or {}
        self.retryable = retryable

    def to_dict(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def __repr__(self) -> str:
        return f"GatewayError({self.status}, {self.message!r}, param={self.param!r})"


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


REDACTED = "[redacted]"
# Credential shapes providers echo back: OpenAI-style `sk-...` (also `sk-proj-`, `sk-ant-`),
# Google's `AIza...`, and a token after `Bearer` (long enough not to be a word).
_KEY_SHAPES = re.compile(
    r"\bsk-[A-Za-z0-9_\-]{6,}|\bAIza[0-9A-Za-z_\-]{20,}|(?i:\bbearer)\s+[A-Za-z0-9._~+/=\-]{16,}"
)


class Redactor:
    """Removes credentials from upstream-derived text before anyone can see it.

    The engine passes every upstream error through one of these: what a provider echoes
    (its 401 naming the key, an error event mid-stream) never reaches a client, a history
    row, a log line or the dashboard. The configured values go first (exactly), then the
    usual key shapes, so a key the gateway does not know is caught as well.
    """

    def __init__(self, credentials: Iterable[str | None] = ()) -> None:
        self.credentials = sorted({c for c in credentials if c and len(c) >= 4}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for credential in self.credentials:
            if credential in text:
                text = text.replace(credential, REDACTED)
        return _KEY_SHAPES.sub(_shape, text)

    def error(self, error: GatewayError) -> GatewayError:
        error.message = self.text(error.message)
        error.args = (error.message,)
        return error


def _shape(match: re.Match) -> str:
    found = match.group(0)
    return f"{found.split()[0]} {REDACTED}" if found[:6].lower() == "bearer" else REDACTED

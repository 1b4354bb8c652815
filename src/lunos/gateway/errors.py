"""The gateway's one error type and its wire shape (SPEC §6).

Every failure a client can see is a `GatewayError`; routes and the ASGI app turn it into
`{"error": {"message", "type", "param", "code"}}` with a fitting status, or on the Messages
door into Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`
(`anthropic_body`).
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
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(status, "api_error")
        self.headers = headers or {}
        self.retryable = retryable
        self.upstream_status = upstream_status  # the provider's own status, when it sent one

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


# Anthropic's error types by status (SPEC §9.1). 529 is kept only where the provider said it.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
    403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
    408: "timeout_error", 413: "request_too_large", 415: "invalid_request_error",
    422: "invalid_request_error", 429: "rate_limit_error", 504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_status(error: GatewayError) -> int:
    """The status to answer with on the Messages door: Anthropic's 529 when the provider
    said it was overloaded, else the gateway's own."""
    return 529 if error.upstream_status == 529 else error.status


def anthropic_body(error: GatewayError) -> dict:
    """The error in Anthropic's shape; the parameter stays named in the message."""
    kind = _ANTHROPIC_TYPES.get(anthropic_status(error), "api_error")
    message = error.message
    if error.param and error.param not in message:
        message = f"{error.param}: {message}"
    return {"type": "error", "error": {"type": kind, "message": message}}


# Every `code` the gateway answers with, and what it means: one vocabulary (a test checks
# that the source uses no other, and docs/errors.md lists the same).
CODES = {
    # 400: the request
    "invalid_json": "the body is not a JSON object",
    "invalid_type": "a parameter has the wrong type",
    "invalid_value": "a parameter's value is out of range or not allowed",
    "missing_required_parameter": "a required parameter is missing",
    "unsupported_parameter": "the chosen model cannot honour a parameter (drop_params drops it)",
    "invalid_schema": "a JSON Schema (tools, response_format) is invalid or too large",
    "invalid_image": "an image could not be read or is of an unsupported type",
    "too_many_images": "more distinct image URLs than one request may name",
    "fetch_refused": "a URL the gateway would fetch is refused by its fetch policy",
    "invalid_http": "the request is not valid HTTP",
    "search_not_configured": "web search was asked for and no backend is configured",
    "provider_not_configured": "the provider has no endpoint or key configured",
    "previous_response_not_found": "previous_response_id names no stored response of this key",
    "unsupported_endpoint": "the model's provider has no API for this route (embeddings, images, audio, completions)",
    "unsupported_content": "the model's provider cannot take a message part (audio on Claude, a file by id)",
    "log_not_traced": "a replay names a request that kept no trace (observability: true)",
    # 401, 403: who is calling
    "missing_api_key": "no key was sent",
    "invalid_api_key": "the key is unknown or revoked",
    "expired_api_key": "the key has expired",
    "master_key_required": "the route needs the master key",
    "model_not_allowed": "the key may not use this model",
    # 404, 405, 408, 413: routes and transport
    "route_not_found": "no such route",
    "method_not_allowed": "the route does not take this method",
    "model_not_found": "the model names no provider, or the provider does not know it",
    "provider_not_found": "the model's prefix names no configured provider",
    "log_not_found": "no history row with this id for this key",
    "key_not_found": "no key with this id",
    "response_not_found": "no stored response with this id for this key",
    "request_timeout": "the client sent its headers or body too slowly",
    "request_too_large": "the body is larger than max_body_bytes",
    "images_too_large": "the request's images add up to more bytes than allowed",
    # 429: limits
    "rpm_exceeded": "the key's requests per minute are used up",
    "tpm_exceeded": "the key's tokens per minute are used up",
    "budget_exceeded": "the key's budget cannot cover this request",
    "price_unknown": "the key has a budget and the model's price is unknown",
    # 5xx: the gateway and its upstreams
    "internal_error": "a fault in the gateway (logged with its traceback)",
    "overloaded": "the gateway is at its concurrency limit",
    "local_model_missing": "the built-in model's weights or libraries are not installed",
    "gateway_shutting_down": "the request was still running when the shutdown grace ended",
    "store_unavailable": "the gateway's database is unreachable",
    "limits_store_unavailable": "the rate-limit store (Redis) is unreachable",
    "cache_unavailable": "the response cache's store (Redis or the database) is unreachable",
    "upstream_error": "the provider failed (its message is included, its credentials never)",
    "upstream_connect_error": "the provider could not be reached",
    "upstream_timeout": "the provider did not answer in time",
    "upstream_bad_response": "the provider's answer could not be read",
    "upstream_incomplete_stream": "the provider's stream ended before its answer did",
    "upstream_auth_failed": "the provider refused the gateway's credentials",
    "upstream_rate_limited": "the provider was still rate-limiting after the gateway's retries",
    "upstream_invalid_request": "the provider refused the request as invalid",
    "upstream_request_too_large": "the provider refused the request as too large",
    "invalid_structured_output": "the answer did not match the schema, even after a retry",
}


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

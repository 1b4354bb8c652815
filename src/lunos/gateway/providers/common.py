"""Small pieces every translating adapter needs: content parts, ids, usage, JSON."""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from ..errors import GatewayError


def text_of(content: Any) -> str:
    """The text of a message's content, whether a string or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def parts_of(content: Any) -> list[dict]:
    """Content as a list of parts (a plain string becomes one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def parse_data_url(url: str) -> tuple[str, str]:
    """`data:image/png;base64,AAAA` -> ("image/png", "AAAA"). Validation checked the form."""
    header, _, data = url.partition(",")
    return header[5:].split(";", 1)[0], data


def new_tool_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def tool_name_by_id(messages: list[dict]) -> dict[str, str]:
    """Map every tool-call id an assistant turn issued to the function it called."""
    names: dict[str, str] = {}
    for m in messages:
        if m.get("role") == "assistant":
            for call in m.get("tool_calls") or ():
                names[call["id"]] = call["function"]["name"]
    return names


def loads_arguments(arguments: str | None, param: str) -> dict:
    """A tool call's JSON `arguments` string as an object (providers want objects)."""
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, f"tool call arguments are not valid JSON: {exc}", param=param) from None
    if not isinstance(value, dict):
        raise GatewayError(400, "tool call arguments must be a JSON object", param=param)
    return value


def upstream_json(raw: str | bytes, provider: str, what: str = "a response") -> Any:
    """Parse what a provider sent; a 502 naming the provider when it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GatewayError(502, f"{provider} sent {what} that is not JSON",
                           code="upstream_bad_response") from None


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_usage(
    prompt: int,
    completion: int,
    *,
    cached: int = 0,
    cache_write: int = 0,
    cache_write_1h: int = 0,
    reasoning: int = 0,
) -> dict:
    """OpenAI-shaped usage. `prompt` already includes cached and cache-write tokens and
    `completion` already includes reasoning tokens (SPEC §5)."""
    details: dict[str, int] = {"cached_tokens": cached}
    if cache_write:
        details["cache_write_tokens"] = cache_write
    if cache_write_1h:  # the part of cache_write_tokens kept for one hour (priced apart)
        details["cache_write_1h_tokens"] = cache_write_1h
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def upstream_message(body: bytes, *paths: tuple[str, ...]) -> str:
    """The provider's own error message from an error body, or the raw text, trimmed."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")[:500] or "no error message"
    for path in paths:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            return value[:2000]
    return body.decode("utf-8", "replace")[:500]


def status_error(status: int, message: str, provider: str, retry_after: str | None = None) -> GatewayError:
    """Map an upstream HTTP status to the gateway's error (SPEC §6).

    The caller's request was bad (400/404/413/422) -> the same class of status; the provider
    is throttling (429) -> 429; the provider refused *our* credentials (401/403) or failed
    (5xx) -> 502; it timed out (408/504) -> 504.
    """
    error = _status_error(status, message, provider, retry_after)
    error.upstream_status = status
    return error


def _status_error(status: int, message: str, provider: str, retry_after: str | None) -> GatewayError:
    text = f"{provider}: {message}"
    if status in (400, 422):
        return GatewayError(400, text, code="upstream_invalid_request")
    if status == 404:
        return GatewayError(404, text, code="model_not_found")
    if status == 413:
        return GatewayError(413, text, code="upstream_request_too_large")
    if status == 429:
        headers = {"retry-after": retry_after} if retry_after else {}
        return GatewayError(429, text, code="upstream_rate_limited", headers=headers, retryable=True)
    if status in (401, 403):
        return GatewayError(502, f"{provider} rejected the gateway's credentials: {message}",
                            code="upstream_auth_failed")
    if status in (408, 504):
        return GatewayError(504, text, code="upstream_timeout", retryable=True)
    return GatewayError(502, text, code="upstream_error", retryable=status >= 500 or status == 409)


def _has_turn(message: dict) -> bool:
    role = message.get("role")
    if role == "tool":
        return True
    if role == "assistant" and message.get("tool_calls"):
        return True
    return role in ("user", "assistant") and _says_something(message.get("content"))


def _says_something(content: Any) -> bool:
    """Content with a part the translators send: a non-empty text, an image, a file or
    audio. Empty text parts and an assistant's refusal parts are left out, so content of
    only those says nothing, as an empty string says nothing."""
    return any(part.get("type") in ("image_url", "file", "input_audio")
               or (part.get("type") == "text" and part.get("text"))
               for part in parts_of(content))


def require_turns(req, provider: str) -> None:
    """APIs that keep the system prompt apart (Anthropic, Gemini) need at least one user or
    assistant message with content; OpenAI accepts system messages alone, or empty ones."""
    if not any(_has_turn(m) for m in req.body["messages"]):
        raise GatewayError(400, f"{provider} needs at least one user or assistant message with "
                           "content besides the system messages", param="messages",
                           code="invalid_value")


class HeldRelay:
    """What every pass-through relay shares: the opening events wait until output begins
    (until then the engine may still retry elsewhere), and a stream that ends before its
    last event is incomplete."""

    __slots__ = ("_held", "_provider", "done", "started")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._held: list[bytes] = []
        self.started = False
        self.done = False

    def release(self, framed: bytes, opening: bool) -> list[bytes]:
        """The events to send now: none while `opening` events arrive before output, then
        everything held with the first event that is output."""
        if self.started:
            return [framed]
        if opening:
            self._held.append(framed)
            return []
        self.started = True
        held, self._held = self._held, []
        return [*held, framed]

    def finish(self) -> list[bytes]:
        if not self.done:
            raise GatewayError(502, f"{self._provider}'s stream ended before its answer did",
                               code="upstream_incomplete_stream", retryable=not self.started)
        held, self._held = self._held, []
        return held

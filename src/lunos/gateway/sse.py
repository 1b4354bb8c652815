"""Chunk dicts -> the SSE bytes a client reads (SPEC §5).

The one place that frames `data:` events, hides the usage chunk from clients that did not
ask for it, ends with `[DONE]`, and turns a failure after the stream started into an error
event (never `[DONE]` after it).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import orjson

from .errors import GatewayError, anthropic_body

log = logging.getLogger("lunos")

DONE = b"data: [DONE]\n\n"


def error_event(error: GatewayError) -> bytes:
    return b"data: " + orjson.dumps(error.to_dict()) + b"\n\n"


def named_event(name: str, data: str | bytes) -> bytes:
    """A named event (`event:` then `data:`), as the Messages and Responses APIs frame them."""
    if isinstance(data, str):
        data = data.encode()
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


def anthropic_error_event(error: GatewayError) -> bytes:
    """A failure after a Messages stream started: Anthropic's `event: error`."""
    return named_event("error", orjson.dumps(anthropic_body(error)))


def encode_batch(batch: list[dict], include_usage: bool) -> bytes:
    out: list[bytes] = []
    for chunk in batch:
        if not include_usage:
            if not chunk.get("choices"):
                continue  # the usage-only chunk
            chunk.pop("usage", None)
        out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    return b"".join(out)


async def relay(first: list[dict], rest: AsyncIterator[list[dict]], include_usage: bool,
                send) -> tuple[bytes, GatewayError | None]:
    """Send `first` (the batch already in hand) and every later batch as SSE body parts;
    return the last part for the caller to send with the end of the body (one write, not
    two) and the failure if there was one: `[DONE]`, or an error event in OpenAI's error
    shape, whatever went wrong (an unexpected exception becomes a 500 `internal_error`),
    so a stream never just stops."""
    try:
        await send({"type": "http.response.body", "body": encode_batch(first, include_usage),
                    "more_body": True})
        async for batch in rest:
            block = encode_batch(batch, include_usage)
            if block:
                await send({"type": "http.response.body", "body": block, "more_body": True})
    except GatewayError as exc:
        return error_event(exc), exc
    except Exception:
        log.exception("a stream failed after it started")
        error = GatewayError(500, "The gateway failed while sending the stream", code="internal_error")
        return error_event(error), error
    return DONE, None

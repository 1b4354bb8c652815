"""Chunk dicts -> the SSE bytes a client reads (SPEC §5).

The one place that frames `data:` events, hides the usage chunk from clients that did not
ask for it, ends with `[DONE]`, and turns a failure after the stream started into an error
event (never `[DONE]` after it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from .errors import GatewayError

DONE = b"data: [DONE]\n\n"


def error_event(error: GatewayError) -> bytes:
    return b"data: " + orjson.dumps(error.to_dict()) + b"\n\n"


def encode_batch(batch: list[dict], include_usage: bool) -> bytes:
    out: list[bytes] = []
    for chunk in batch:
        if not include_usage:
            if not chunk.get("choices"):
                continue  # the usage-only chunk
            chunk.pop("usage", None)
        out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    return b"".join(out)


async def encode(first: list[dict], rest: AsyncIterator[list[dict]], include_usage: bool) -> AsyncIterator[bytes]:
    """`first` is the batch already in hand; errors from `rest` become an error event."""
    yield encode_batch(first, include_usage)
    try:
        async for batch in rest:
            block = encode_batch(batch, include_usage)
            if block:
                yield block
    except GatewayError as exc:
        yield error_event(exc)
        return
    yield DONE

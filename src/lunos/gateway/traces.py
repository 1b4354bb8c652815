"""What an `observability: true` trace keeps, and how it reads back (SPEC §7).

On the request path a trace costs little: the request body is kept as the client sent it
(bytes), and the answer as its output (text, reasoning, tool calls, annotations: what
`usage.completion_output` or a stream's `Output` gives). The request's public shape,
`{"messages", "params"}`, is made when a trace is read, which is rare. Storing the output
rather than the whole completion keeps rows a third smaller, which costs the history
writer less than building the output costs the request.
"""

from __future__ import annotations

from typing import Any

import orjson

from .providers.media import media_summary
from .validation import NOT_FORWARDED

_NOT_PARAMS = NOT_FORWARDED | {"messages"}


def public_request(stored: Any) -> Any:
    """A stored request body as `{"messages": [...], "params": {...}}` (Lunos's own fields
    left out). Rows written as that shape already are returned as they are. A Messages body's
    `system` becomes the first message, as a chat body's would be."""
    if not isinstance(stored, dict) or "model" not in stored:
        return stored
    params = {k: v for k, v in stored.items() if k not in _NOT_PARAMS}
    messages = stored.get("messages", [])
    system = params.pop("system", None)
    if system and isinstance(messages, list):
        messages = [{"role": "system", "content": system}, *messages]
    return {"messages": messages, "params": params}


def without_media(raw: bytes) -> bytes | dict:
    """A chat body as a trace keeps it: as received, unless it holds `file` or `input_audio`
    parts, whose bytes are replaced by their size and SHA-256 (`media_summary`)."""
    if b'"file_data"' not in raw and b'"input_audio"' not in raw:
        return raw
    body = orjson.loads(raw)
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict):
                continue
            file, audio = part.get("file"), part.get("input_audio")
            if isinstance(file, dict) and isinstance(file.get("file_data"), str):
                kind, _, data = file["file_data"].partition(",")
                file["file_data"] = media_summary(data, kind[5:].split(";")[0])
            if isinstance(audio, dict) and isinstance(audio.get("data"), str):
                audio["data"] = media_summary(audio["data"])
    return body

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

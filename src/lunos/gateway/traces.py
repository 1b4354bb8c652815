"""What an `observability: true` trace keeps, and how it reads back (SPEC §7).

On the request path a trace costs nothing but references: the request body as the client
sent it, and the completion bytes as the gateway sent them (a stream keeps the `Output` it
folded). The public shapes — `{"messages", "params"}` and the output's text, tool calls
and annotations — are made when a trace is read, which is rare, not when it is written.
"""

from __future__ import annotations

from typing import Any

from .usage import Output
from .validation import NOT_FORWARDED

_NOT_PARAMS = NOT_FORWARDED | {"messages"}


def public_request(stored: Any) -> Any:
    """A stored request body as `{"messages": [...], "params": {...}}` (Lunos's own fields
    left out). Rows written as that shape already are returned as they are."""
    if not isinstance(stored, dict) or "model" not in stored:
        return stored
    params = {k: v for k, v in stored.items() if k not in _NOT_PARAMS}
    return {"messages": stored.get("messages", []), "params": params}


def public_response(stored: Any) -> Any:
    """A stored completion as the output it carried; an `Output` dict is returned as is."""
    if not isinstance(stored, dict) or "choices" not in stored:
        return stored
    return Output.of_completion(stored).to_dict()

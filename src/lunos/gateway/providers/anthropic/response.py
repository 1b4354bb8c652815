"""Anthropic Messages response -> OpenAI-shaped completion dict.

`text` blocks are the content, `tool_use` blocks the tool calls (ids unchanged), and
`thinking` / `redacted_thinking` blocks the reasoning (`reasoning_content` plus
`reasoning_details`, so a client echoing the message sends them back signed). Server
tool blocks (`server_tool_use`, `web_search_tool_result`, ...) ran on Anthropic's side
and are not client tool calls; they are left out, except that web search citations become
`annotations` and its queries are reported (see search.py).
"""

from __future__ import annotations

from typing import Any

from ..base import PAUSED_KEY
from ..common import dumps, make_usage
from . import search
from .request import REASONING_FORMAT

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if stop_reason else "stop"


def usage_from(usage: dict) -> dict:
    """Anthropic usage -> OpenAI usage. Anthropic's `input_tokens` exclude the cache reads
    and writes; OpenAI's `prompt_tokens` include them."""
    cached = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    details = usage.get("output_tokens_details") or {}
    by_ttl = usage.get("cache_creation")
    hour = (by_ttl.get("ephemeral_1h_input_tokens") or 0) if isinstance(by_ttl, dict) else 0
    return make_usage(
        (usage.get("input_tokens") or 0) + cached + written,
        usage.get("output_tokens") or 0,
        cached=cached,
        cache_write=written,
        cache_write_1h=min(hour, written),
        reasoning=details.get("thinking_tokens") or 0,
    )


def reasoning_text(block: dict, index: int) -> dict:
    return {"type": "reasoning.text", "text": block.get("thinking") or "",
            "signature": block.get("signature") or "", "format": REASONING_FORMAT, "index": index}


def reasoning_encrypted(block: dict, index: int) -> dict:
    return {"type": "reasoning.encrypted", "data": block.get("data") or "",
            "format": REASONING_FORMAT, "index": index}


def to_completion(data: dict) -> dict:
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[dict] = []
    calls: list[dict] = []
    cited: list[dict] = []  # web search citations (engine "native", see search.py)
    queries: list[str] = []
    for block in data.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            cited.extend(search.annotations(block, sum(map(len, texts))))
            texts.append(block.get("text") or "")
        elif kind == "server_tool_use" and search.query(block):
            queries.append(search.query(block))
        elif kind == "tool_use":
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": dumps(block.get("input") or {})}})
        elif kind == "thinking":
            thoughts.append(block.get("thinking") or "")
            details.append(reasoning_text(block, len(details)))
        elif kind == "redacted_thinking":
            details.append(reasoning_encrypted(block, len(details)))
    text = "".join(texts)
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if details:
        message["reasoning_content"] = "".join(thoughts)
        message["reasoning_details"] = details
    if cited:
        message["annotations"] = cited
    completion: dict[str, Any] = {
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(data.get("stop_reason"))}],
    }
    if queries:
        completion[search.QUERIES_KEY] = queries
    if data.get("stop_reason") == "pause_turn":
        completion[PAUSED_KEY] = True
    if isinstance(data.get("usage"), dict):
        completion["usage"] = usage_from(data["usage"])
    return completion

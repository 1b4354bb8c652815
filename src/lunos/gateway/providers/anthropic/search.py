"""Anthropic's own web search (the `web_search` server tool), for web search engine "native".

The gateway's web search layer asks for it with the body field `web_search_options`
(OpenAI's name for the switch); `allowed_domains` / `excluded_domains` in it become the
tool's `allowed_domains` / `blocked_domains`. The answer holds `server_tool_use` blocks (the
searches Anthropic ran: `input.query`), `web_search_tool_result` blocks (their results,
not shown) and `text` blocks whose `citations` (type `web_search_result_location`: `url`,
`title`, `cited_text`) say which sources a passage rests on. Each such citation becomes a
`url_citation` annotation spanning its text block in the message content; the queries go
to the message under `QUERIES_KEY`, which the web search layer moves into the history row.
"""

from __future__ import annotations

from typing import Any

import orjson

TOOL_TYPE = "web_search_20250305"
QUERIES_KEY = "lunos_search_queries"


def tool(options: Any) -> dict:
    out: dict[str, Any] = {"type": TOOL_TYPE, "name": "web_search"}
    if isinstance(options, dict):
        if options.get("allowed_domains"):
            out["allowed_domains"] = list(options["allowed_domains"])
        if options.get("excluded_domains"):
            out["blocked_domains"] = list(options["excluded_domains"])
    return out


def annotation(citation: Any, start: int, end: int) -> dict | None:
    """A text block's citation as a url_citation over [start, end) of the content."""
    if not isinstance(citation, dict) or citation.get("type") != "web_search_result_location":
        return None
    url = citation.get("url")
    if not isinstance(url, str) or not url:
        return None
    return {"type": "url_citation", "url_citation": {
        "url": url, "title": citation.get("title") or url, "content": citation.get("cited_text") or "",
        "start_index": start, "end_index": end}}


def annotations(block: dict, start: int) -> list[dict]:
    end = start + len(block.get("text") or "")
    found = (annotation(c, start, end) for c in block.get("citations") or ())
    return [a for a in found if a is not None]


def query(block: dict) -> str | None:
    """The query of a `server_tool_use` block of the web search tool."""
    if block.get("name") != "web_search":
        return None
    value = (block.get("input") or {}).get("query") if isinstance(block.get("input"), dict) else None
    return value if isinstance(value, str) and value else None


def query_from_json(name: Any, partial_json: str) -> str | None:
    """The query of a streamed `server_tool_use` block, from its input JSON."""
    try:
        value = orjson.loads(partial_json or "{}")
    except orjson.JSONDecodeError:
        return None
    return query({"name": name, "input": value})

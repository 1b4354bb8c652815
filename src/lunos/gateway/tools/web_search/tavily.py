"""Tavily: `POST {TAVILY_BASE_URL}/search` with `Authorization: Bearer <TAVILY_API_KEY>`.

Body: `query`, `max_results` (0..20), `search_depth` (`advanced` for
search_context_size high, else `basic`), `include_domains` / `exclude_domains`.
Answer: `{"query", "results": [{"title", "url", "content", "score", "raw_content"}], ...}`.
"""

from __future__ import annotations

import orjson

from ...http_client import HttpClient
from .base import Query, Result, request_json, result, results_list

DEFAULT_BASE_URL = "https://api.tavily.com"
MAX_QUERY_CHARS = 400


class TavilyBackend:
    name = "tavily"

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/search"
        self.headers = [("content-type", "application/json"), ("accept", "application/json"),
                        ("authorization", f"Bearer {api_key}")]

    async def search(self, client: HttpClient, query: Query, timeout: float) -> list[Result]:
        body: dict = {
            "query": query.text[:MAX_QUERY_CHARS],
            "max_results": min(query.max_results, 20),
            "search_depth": "advanced" if query.context_size == "high" else "basic",
            "include_answer": False,
        }
        if query.allowed_domains:
            body["include_domains"] = list(query.allowed_domains)
        if query.excluded_domains:
            body["exclude_domains"] = list(query.excluded_domains)
        data = await request_json(client, self.name, "POST", self.url, self.headers,
                                  orjson.dumps(body), timeout)
        found = (result(r.get("url"), r.get("title"), r.get("content"))
                 for r in results_list(data, self.name, "results"))
        return [r for r in found if r is not None]

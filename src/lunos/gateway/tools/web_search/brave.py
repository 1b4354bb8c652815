"""Brave Search: `GET {BRAVE_BASE_URL}/web/search?q=...&count=N` with the
`X-Subscription-Token: <BRAVE_API_KEY>` header (base URL `https://api.search.brave.com/res/v1`).

Answer: `{"type": "search", "web": {"results": [{"title", "url", "description",
"extra_snippets"?}]}, ...}`; descriptions carry `<strong>` highlights, removed here. A query
is at most 400 characters and 50 words; `count` at most 20. Brave has no domain
parameters: one allowed domain becomes a `site:` term, and the search service filters.
`extra_snippets` (more text per result) is asked for with search_context_size high.
"""

from __future__ import annotations

from urllib.parse import urlencode

from ...http_client import HttpClient
from .base import Query, Result, request_json, result, results_list

DEFAULT_BASE_URL = "https://api.search.brave.com/res/v1"
MAX_QUERY_CHARS = 400
MAX_QUERY_WORDS = 50


class BraveBackend:
    name = "brave"

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/web/search"
        self.headers = [("accept", "application/json"), ("x-subscription-token", api_key)]

    async def search(self, client: HttpClient, query: Query, timeout: float) -> list[Result]:
        text = query.text
        if len(query.allowed_domains) == 1:
            text = f"{text} site:{query.allowed_domains[0]}"
        text = " ".join(text.split()[:MAX_QUERY_WORDS])[:MAX_QUERY_CHARS]
        filtered = query.allowed_domains or query.excluded_domains
        params = {"q": text, "count": min(query.max_results * (2 if filtered else 1), 20),
                  "result_filter": "web"}
        if query.context_size == "high":
            params["extra_snippets"] = "true"
        data = await request_json(client, self.name, "GET", f"{self.url}?{urlencode(params)}",
                                  self.headers, b"", timeout)
        found = (result(r.get("url"), r.get("title"), r.get("description"),
                        *(r.get("extra_snippets") or ()))
                 for r in results_list(data, self.name, "web", "results"))
        return [r for r in found if r is not None]

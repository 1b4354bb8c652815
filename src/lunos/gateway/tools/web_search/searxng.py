"""SearXNG, self-hosted: `GET {SEARXNG_URL}/search?q=...&format=json`.

The instance must have the JSON format enabled (`search.formats: [html, json]` in its
settings.yml; otherwise it answers 403). SearXNG has no result-count or domain parameters:
a single allowed domain becomes a `site:` term in the query (engines that understand it
narrow their results), and the search service filters and cuts the list either way.
"""

from __future__ import annotations

from urllib.parse import urlencode

from ...http_client import HttpClient
from .base import Query, Result, request_json, result, results_list


class SearxngBackend:
    name = "searxng"

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/search"

    async def search(self, client: HttpClient, query: Query, timeout: float) -> list[Result]:
        text = query.text
        if len(query.allowed_domains) == 1:
            text = f"{text} site:{query.allowed_domains[0]}"
        params = {"q": text, "format": "json"}
        data = await request_json(client, self.name, "GET", f"{self.url}?{urlencode(params)}",
                                  [("accept", "application/json")], b"", timeout)
        found = (result(r.get("url"), r.get("title"), r.get("content"))
                 for r in results_list(data, self.name, "results"))
        return [r for r in found if r is not None]

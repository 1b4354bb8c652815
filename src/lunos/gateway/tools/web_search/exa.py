"""Exa: `POST {EXA_BASE_URL}/search` with the `x-api-key: <EXA_API_KEY>` header.

Body: `query`, `numResults`, `type: "auto"`, `includeDomains` or `excludeDomains` (one of
them: with both, the allowed list is sent and the search service applies the other), and
`contents.text.maxCharacters` so the answer carries page text sized by
search_context_size. Answer: `{"requestId", "results": [{"title", "url", "text",
"highlights"?, "publishedDate"?, ...}], ...}`.
"""

from __future__ import annotations

import orjson

from ...http_client import HttpClient
from .base import Query, Result, request_json, result, results_list

DEFAULT_BASE_URL = "https://api.exa.ai"


class ExaBackend:
    name = "exa"

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/search"
        self.headers = [("content-type", "application/json"), ("accept", "application/json"),
                        ("x-api-key", api_key)]

    async def search(self, client: HttpClient, query: Query, timeout: float) -> list[Result]:
        body: dict = {
            "query": query.text,
            "numResults": query.max_results,
            "type": "auto",
            "contents": {"text": {"maxCharacters": query.snippet_chars}},
        }
        if query.allowed_domains:
            body["includeDomains"] = list(query.allowed_domains)
        elif query.excluded_domains:
            body["excludeDomains"] = list(query.excluded_domains)
        data = await request_json(client, self.name, "POST", self.url, self.headers,
                                  orjson.dumps(body), timeout)
        found = (result(r.get("url"), r.get("title"), r.get("text") or _highlights(r))
                 for r in results_list(data, self.name, "results"))
        return [r for r in found if r is not None]


def _highlights(item: dict) -> str:
    value = item.get("highlights")
    return " ".join(h for h in value if isinstance(h, str)) if isinstance(value, list) else ""

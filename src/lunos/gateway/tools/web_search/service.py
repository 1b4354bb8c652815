"""One search, start to end: ask the backend, keep what the request allows, optionally read
the pages, and never raise for a backend failure (the outcome carries the error instead).

What the request asks is honoured here for every backend alike, whatever the backend
itself supports: `allowed_domains` / `excluded_domains` (a domain admits its subdomains),
`max_results`, and `search_context_size` as the text kept per result. Pages are fetched
only when the configuration says `fetch_pages`, through the gateway's guarded fetch (its
SSRF rules apply to every result URL), within the same search timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

from ...errors import GatewayError
from ...validation import WebSearchOptions
from .base import Backend, Query, Result, SearchError
from .config import CONTEXT_CHARS, SearchConfig

log = logging.getLogger("lunos.search")


@dataclass(slots=True)
class Outcome:
    query: str
    engine: str
    results: list[Result] = field(default_factory=list)
    error: str | None = None
    ms: float = 0.0

    def record(self) -> dict:
        """The history row's entry for this search."""
        entry: dict = {"query": self.query, "engine": self.engine, "results": len(self.results),
                       "ms": round(self.ms, 1)}
        if self.error:
            entry["error"] = self.error
        return entry


class Searcher:
    def __init__(self, backend: Backend, client, fetcher, config: SearchConfig) -> None:
        self.backend = backend
        self.client = client
        self.fetcher = fetcher
        self.config = config

    def query(self, text: str, options: WebSearchOptions) -> Query:
        size = options.search_context_size
        return Query(text.strip(), options.max_results, tuple(map(_domain, options.allowed_domains)),
                     tuple(map(_domain, options.excluded_domains)), size, CONTEXT_CHARS.get(size, 800))

    async def search(self, text: str, options: WebSearchOptions) -> Outcome:
        query = self.query(text, options)
        outcome = Outcome(query.text, self.backend.name)
        started = time.perf_counter()
        try:
            found = await self.backend.search(self.client, query, self.config.timeout)
            outcome.results = refine(found, query)
            if self.config.fetch_pages and outcome.results:
                outcome.results = await self.with_pages(outcome.results)
        except SearchError as exc:
            outcome.error = str(exc)
        except Exception:  # a backend answer nobody foresaw must not become a 500
            log.exception("search backend %s failed", self.backend.name)
            outcome.error = f"{self.backend.name} sent an answer that could not be read"
        outcome.ms = (time.perf_counter() - started) * 1000
        return outcome

    async def with_pages(self, results: list[Result]) -> list[Result]:
        count = min(self.config.pages_per_search, len(results))
        pages = await asyncio.gather(*(self.page(r.url) for r in results[:count]))
        out = []
        for i, r in enumerate(results):
            text = pages[i] if i < count else None
            out.append(Result(r.url, r.title, f"{r.snippet}\n{text}".strip()) if text else r)
        return out

    async def page(self, url: str) -> str | None:
        """The text of a result page, or None when it cannot (or may not) be fetched."""
        try:
            fetched = await asyncio.wait_for(
                self.fetcher.fetch(url, accept="text/html, text/plain;q=0.9"), self.config.timeout)
        except (GatewayError, asyncio.TimeoutError) as exc:
            log.info("result page not fetched: %s", getattr(exc, "message", "timeout"))
            return None
        if fetched.content_type == "text/html":
            text = page_text(fetched.body.decode("utf-8", "replace"))
        elif fetched.content_type == "text/plain":
            text = " ".join(fetched.body.decode("utf-8", "replace").split())
        else:
            return None
        return cut(text, self.config.page_chars) or None


def refine(found: list[Result], query: Query) -> list[Result]:
    """Keep allowed, not excluded, distinct results, with snippets cut to size."""
    out: list[Result] = []
    seen: set[str] = set()
    for r in found:
        host = (urlsplit(r.url).hostname or "").lower()
        if query.allowed_domains and not any(_under(host, d) for d in query.allowed_domains):
            continue
        if any(_under(host, d) for d in query.excluded_domains):
            continue
        if r.url in seen:
            continue
        seen.add(r.url)
        out.append(Result(r.url, r.title, cut(r.snippet, query.snippet_chars)))
        if len(out) >= query.max_results:
            break
    return out


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head) + "…"


def _domain(value: str) -> str:
    """`https://www.Example.com/x` -> `www.example.com`; `example.com` stays."""
    value = value.strip().lower()
    if "//" in value:
        value = urlsplit(value).hostname or value
    return value.split("/", 1)[0].strip(".")


def _under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


class _Text(HTMLParser):
    SKIP = frozenset({"script", "style", "noscript", "template", "head", "svg"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in self.SKIP:
            self.skipping += 1

    def handle_endtag(self, tag) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data) -> None:
        if not self.skipping:
            self.parts.append(data)


def page_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return " ".join(" ".join(parser.parts).split())

"""One search end to end without a network: what the request allows is kept, failures become
outcomes (never exceptions), and result pages go through the fetcher."""

from __future__ import annotations

import asyncio

import pytest

from lunos.gateway.fetch import Fetched, FetchRefused
from lunos.gateway.tools.web_search.base import Query, Result, SearchError
from lunos.gateway.tools.web_search.config import SearchConfig
from lunos.gateway.tools.web_search.service import Searcher, cut, page_text, refine
from lunos.gateway.validation import WebSearchOptions

RESULTS = [Result(f"https://{host}/{i}", f"title {i}", "word " * 400)
           for i, host in enumerate(["a.example.com", "example.com", "b.other.org", "example.com.evil.net",
                                     "c.example.com"])]


class Backend:
    name = "stub"

    def __init__(self, outcome) -> None:
        self.outcome = outcome
        self.queries: list[Query] = []

    async def search(self, client, query: Query, timeout: float):
        self.queries.append(query)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return list(self.outcome)


class Fetcher:
    def __init__(self, pages: dict) -> None:
        self.pages = pages
        self.fetched: list[str] = []

    async def fetch(self, url: str, *, param=None, accept="*/*"):
        self.fetched.append(url)
        page = self.pages.get(url)
        if isinstance(page, BaseException):
            raise page
        if page == "slow":
            await asyncio.sleep(5)
        return page


def searcher(outcome=RESULTS, fetcher=None, **config) -> Searcher:
    return Searcher(Backend(outcome), None, fetcher, SearchConfig(**config))


def test_refine_keeps_allowed_distinct_results_cut_to_size():
    query = Query("q", max_results=2, allowed_domains=("example.com",), excluded_domains=("c.example.com",),
                  snippet_chars=50)
    kept = refine([RESULTS[0], RESULTS[0], *RESULTS[1:]], query)
    assert [r.url for r in kept] == ["https://a.example.com/0", "https://example.com/1"]
    assert all(len(r.snippet) <= 51 and r.snippet.endswith("…") for r in kept)


def test_cut_prefers_a_word_boundary():
    assert cut("alpha beta gamma", 100) == "alpha beta gamma"
    assert cut("alpha beta gamma", 12) == "alpha beta…"


async def test_options_become_the_query():
    s = searcher()
    options = WebSearchOptions(max_results=3, search_context_size="low",
                               allowed_domains=("https://www.Example.com/path",), excluded_domains=("x.org",))
    outcome = await s.search("  what is new  ", options)
    query = s.backend.queries[0]
    assert (query.text, query.max_results, query.allowed_domains, query.excluded_domains) == (
        "what is new", 3, ("www.example.com",), ("x.org",))
    assert (query.context_size, query.snippet_chars) == ("low", 300)
    assert outcome.error is None and outcome.results == []  # nothing is under www.example.com


async def test_backend_errors_and_surprises_become_outcomes():
    failed = await searcher(SearchError("stub", "answered HTTP 500", "status")).search("q", WebSearchOptions())
    assert failed.error == "stub answered HTTP 500" and failed.results == []
    odd = await searcher(TypeError("'int' object is not iterable")).search("q", WebSearchOptions())
    assert odd.error == "stub sent an answer that could not be read"
    assert odd.record() == {"query": "q", "engine": "stub", "results": 0, "ms": odd.record()["ms"],
                            "error": "stub sent an answer that could not be read"}


async def test_pages_are_fetched_only_when_configured():
    fetcher = Fetcher({})
    await searcher(fetcher=fetcher).search("q", WebSearchOptions())
    assert fetcher.fetched == []


async def test_pages_add_their_text_and_failures_keep_the_snippet():
    results = [Result(f"https://p.example/{i}", f"t{i}", f"snippet {i}") for i in range(4)]
    fetcher = Fetcher({
        "https://p.example/0": Fetched("https://p.example/0", "text/html",
                                       b"<html><head><style>x{}</style></head><body><p>Page &amp; text</p>"
                                       b"<script>secret()</script></body></html>"),
        "https://p.example/1": FetchRefused("https://p.example/1", "loopback", None),
        "https://p.example/2": "slow",
    })
    s = searcher(results, fetcher, fetch_pages=True, pages_per_search=3, timeout=0.2)
    outcome = await s.search("q", WebSearchOptions())
    assert fetcher.fetched == ["https://p.example/0", "https://p.example/1", "https://p.example/2"]
    assert [r.snippet for r in outcome.results] == ["snippet 0\nPage & text", "snippet 1", "snippet 2", "snippet 3"]
    assert outcome.error is None


@pytest.mark.parametrize("html, text", [
    ("<p>a</p><p>b</p>", "a b"),
    ("<svg><text>x</text></svg><main>kept</main>", "kept"),
    ("<noscript>n</noscript>ok", "ok"),
])
def test_page_text(html, text):
    assert page_text(html) == text

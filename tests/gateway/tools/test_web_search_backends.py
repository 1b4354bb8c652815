"""Each search backend against its stand-in, through the gateway's own HTTP client: the
request it sends (auth, parameters), the results it reads, and every failure it reports."""

from __future__ import annotations

import pytest

from lunos.gateway.http_client import HttpClient
from lunos.gateway.tools.web_search.base import Query, SearchError
from lunos.gateway.tools.web_search.brave import BraveBackend
from lunos.gateway.tools.web_search.exa import ExaBackend
from lunos.gateway.tools.web_search.searxng import SearxngBackend
from lunos.gateway.tools.web_search.tavily import TavilyBackend
from tests.standins.harness import ServerThread
from tests.standins.search_api import (
    BraveStandIn,
    ExaStandIn,
    SearxngStandIn,
    TavilyStandIn,
    closed_url,
    corpus,
)

STANDINS = {"searxng": SearxngStandIn(), "tavily": TavilyStandIn("tvly-k"), "brave": BraveStandIn("brave-k"),
            "exa": ExaStandIn("exa-k")}


@pytest.fixture(scope="module")
def servers():
    running = {name: ServerThread(app).start() for name, app in STANDINS.items()}
    yield running
    for server in running.values():
        server.stop()


def backend(name: str, servers, key: str | None = None):
    url = servers[name].url
    return {"searxng": lambda: SearxngBackend(url), "tavily": lambda: TavilyBackend(key or "tvly-k", url),
            "brave": lambda: BraveBackend(key or "brave-k", url + "/res/v1"),
            "exa": lambda: ExaBackend(key or "exa-k", url)}[name]()


@pytest.fixture
async def client():
    c = HttpClient()
    yield c
    await c.aclose()


@pytest.fixture(autouse=True)
def fresh():
    for app in STANDINS.values():
        app.reset()


async def test_searxng(servers, client):
    found = await backend("searxng", servers).search(client, Query("lunos news"), 2)
    assert STANDINS["searxng"].queries == [{"q": "lunos news", "format": "json"}]
    expected = corpus("lunos news")
    assert [(r.url, r.title) for r in found] == [(e["url"], e["title"]) for e in expected]
    assert found[0].snippet == expected[0]["content"]  # the service cuts, not the backend


async def test_searxng_sends_one_allowed_domain_as_a_site_term(servers, client):
    found = await backend("searxng", servers).search(client, Query("lunos", allowed_domains=("lunos.dev",)), 2)
    assert STANDINS["searxng"].queries[0]["q"] == "lunos site:lunos.dev"
    assert {r.url.split("/")[2] for r in found} == {"docs.lunos.dev", "lunos.dev"}


async def test_tavily(servers, client):
    query = Query("lunos", max_results=3, allowed_domains=("example.com",), excluded_domains=("news.example.com",),
                  context_size="high")
    found = await backend("tavily", servers).search(client, query, 2)
    assert STANDINS["tavily"].requests[0].headers["authorization"] == "Bearer tvly-k"
    assert STANDINS["tavily"].queries == [{"query": "lunos", "max_results": 3, "search_depth": "advanced",
                                           "include_answer": False, "include_domains": ["example.com"],
                                           "exclude_domains": ["news.example.com"]}]
    assert [r.url.split("/")[2] for r in found] == ["forum.example.com"]


async def test_brave(servers, client):
    long_query = " ".join(f"word{i}" for i in range(80))
    found = await backend("brave", servers).search(
        client, Query(long_query, max_results=4, excluded_domains=("lunos.dev",), context_size="high"), 2)
    rec = STANDINS["brave"].requests[0]
    assert rec.headers["x-subscription-token"] == "brave-k" and rec.headers["accept"] == "application/json"
    params = STANDINS["brave"].queries[0]
    assert len(params["q"].split()) == 50 and params["count"] == "8"  # filtered: ask for more
    assert params["extra_snippets"] == "true" and params["result_filter"] == "web"
    assert "<strong>" not in found[0].snippet and found[0].snippet.startswith("Result 1 about")
    assert len(found) == 8  # the service applies the exclusion


async def test_exa(servers, client):
    query = Query("lunos", max_results=2, allowed_domains=("lunos.dev",), excluded_domains=("x.org",),
                  snippet_chars=120)
    found = await backend("exa", servers).search(client, query, 2)
    assert STANDINS["exa"].requests[0].headers["x-api-key"] == "exa-k"
    assert STANDINS["exa"].queries == [{"query": "lunos", "numResults": 2, "type": "auto",
                                        "contents": {"text": {"maxCharacters": 120}},
                                        "includeDomains": ["lunos.dev"]}]
    assert [r.url.split("/")[2] for r in found] == ["docs.lunos.dev", "lunos.dev"]
    assert all(len(r.snippet) <= 120 for r in found)


@pytest.mark.parametrize("name", ["tavily", "brave", "exa"])
async def test_a_wrong_key_is_a_status_error_that_does_not_name_the_key(servers, client, name):
    with pytest.raises(SearchError) as info:
        await backend(name, servers, key="wrong-secret-key").search(client, Query("lunos"), 2)
    assert info.value.kind == "status" and info.value.backend == name
    assert "wrong-secret-key" not in str(info.value) and "127.0.0.1" not in str(info.value)


@pytest.mark.parametrize("name", list(STANDINS))
@pytest.mark.parametrize("marker, kind, message", [
    ("[[search-garbage]]", "bad_response", "sent an answer that is not JSON"),
    ("[[search-shape]]", "bad_response", "sent an answer without a results list"),
    ("[[search-status:502]]", "status", "answered HTTP 502"),
    ("[[search-delay:3]]", "timeout", "did not answer within 0.3 s"),
])
async def test_failures(servers, client, name, marker, kind, message):
    with pytest.raises(SearchError) as info:
        await backend(name, servers).search(client, Query(f"lunos {marker}"), 0.3)
    assert (info.value.kind, str(info.value)) == (kind, f"{name} {message}")


async def test_a_backend_that_is_down(client):
    with pytest.raises(SearchError) as info:
        await SearxngBackend(closed_url()).search(client, Query("lunos"), 2)
    assert (info.value.kind, str(info.value)) == ("unavailable", "searxng is unreachable")


async def test_a_misconfigured_backend(client):
    with pytest.raises(SearchError) as info:
        await SearxngBackend("searx.local:8080").search(client, Query("lunos"), 2)
    assert str(info.value) == "searxng is misconfigured (its URL or key)"
    with pytest.raises(SearchError) as info:
        await TavilyBackend("key\nx-injected: 1", "http://127.0.0.1:9").search(client, Query("lunos"), 2)
    assert str(info.value) == "tavily is misconfigured (its URL or key)" and "injected" not in str(info.value)


async def test_the_pooled_connection_stays_usable_after_a_timeout(servers, client):
    b = backend("searxng", servers)
    with pytest.raises(SearchError):
        await b.search(client, Query("lunos [[search-delay:2]]"), 0.2)
    assert len(await b.search(client, Query("lunos"), 2)) == 8

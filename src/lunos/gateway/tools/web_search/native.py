"""`engine: "native"`: the provider's own web search instead of the gateway's loop.

The switch reaches the adapters as OpenAI's own body field `web_search_options`, which each
translates:
- OpenAI-compatible providers: passed through, for the models that take it (OpenAI's search
  models, OpenRouter); a model whose catalog entry lacks `web_search_options` is refused.
  Annotations come back in OpenAI's own format.
- anthropic: Anthropic's `web_search` server tool; `allowed_domains` / `excluded_domains` go
  with it (`allowed_domains` / `blocked_domains`). Cited text blocks become annotations.
- google: the `google_search` grounding tool; `groundingMetadata` becomes annotations.
Anywhere else, and for domain filters where the provider has none, the request is refused
with a 400 before anything goes upstream. `max_results` and `search_context_size` are the
provider's to apply (`search_context_size` is passed to OpenAI).

Adapters report the queries the provider ran under `QUERIES_KEY` (on the completion, or in
a delta); this layer moves them into the history row and out of the response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from ...errors import GatewayError
from ...records import CallRecord
from ...validation import ChatOptions, WebSearchOptions

QUERIES_KEY = "lunos_search_queries"


def routes(gw, model: str) -> list:
    """The routes that may answer `model` (none when it cannot be routed: the engine says why)."""
    try:
        found = gw.router.resolve(model)
    except GatewayError:
        return []
    return list(found) if isinstance(found, (list, tuple)) else [found]


def wrap(runner, gw, body: dict, options: ChatOptions):
    search = options.web_search
    for name in [body["model"], *options.models]:
        for route in routes(gw, name):
            check(route, search)
    return NativeSearch(runner, search)


def check(route, search: WebSearchOptions) -> None:
    kind = route.adapter.kind
    where = f"model '{route.model}'"
    if kind == "openai":
        info = route.model_info
        if info is not None and "web_search_options" not in info.supported_parameters:
            raise GatewayError(400, f"{where} has no native web search (it does not take "
                                    "'web_search_options'); use engine 'auto' or a search backend",
                               param="tools", code="unsupported_parameter")
    elif kind not in ("anthropic", "google"):
        raise GatewayError(400, f"engine 'native' is not available for {where}; use engine "
                                "'auto' or a search backend", param="tools", code="unsupported_parameter")
    if (search.allowed_domains or search.excluded_domains) and kind != "anthropic":
        raise GatewayError(400, f"the native web search of {where} cannot be limited to or "
                                "exclude domains; leave out allowed_domains / excluded_domains or "
                                "use a search backend", param="tools", code="unsupported_parameter")


def native_options(search: WebSearchOptions) -> dict:
    out: dict = {"search_context_size": search.search_context_size}
    if search.allowed_domains:
        out["allowed_domains"] = list(search.allowed_domains)
    if search.excluded_domains:
        out["excluded_domains"] = list(search.excluded_domains)
    return out


class NativeSearch:
    def __init__(self, inner, search: WebSearchOptions) -> None:
        self.inner = inner
        self.search = search

    def body(self, body: dict) -> dict:
        return {**body, "web_search_options": native_options(self.search)}

    def summary(self, queries: list[str], cited: bool, record: CallRecord) -> dict:
        status = "ok" if queries or cited else "none"
        record.extra["searches"] = [{"query": q, "engine": "native"} for q in queries]
        record.extra["search_status"] = status
        return {"status": status, "engine": "native", "searches": len(queries)}

    async def complete(self, body: dict, options: ChatOptions, record: CallRecord) -> dict:
        completion = await self.inner.complete(self.body(body), options, record)
        queries: list[str] = completion.pop(QUERIES_KEY, None) or []
        message = completion["choices"][0].setdefault("message", {})
        message.setdefault("annotations", [])
        completion["web_search"] = self.summary(queries, bool(message["annotations"]), record)
        return completion

    async def stream(self, body: dict, options: ChatOptions, record: CallRecord) -> AsyncIterator[list[dict]]:
        queries: list[str] = []
        cited = False
        async with aclosing(self.inner.stream(self.body(body), options, record)) as batches:
            async for batch in batches:
                for chunk in batch:
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        queries += delta.pop(QUERIES_KEY, None) or []
                        cited = cited or bool(delta.get("annotations"))
                        if choice.get("finish_reason") and choice.get("index", 0) == 0:
                            chunk["web_search"] = self.summary(queries, cited, record)
                yield batch
        self.summary(queries, cited, record)

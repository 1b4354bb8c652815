"""`engine: "native"`: the provider's own search, translated by the Anthropic and Gemini
adapters (request tool, citations -> annotations, queries), and the layer over them."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import orjson
import pytest

from lunos._sse import ServerSentEvent
from lunos.gateway.catalog import ModelInfo
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.anthropic import AnthropicAdapter
from lunos.gateway.providers.anthropic import search as anthropic_search
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from lunos.gateway.providers.google import GoogleAdapter
from lunos.gateway.providers.google import search as google_search
from lunos.gateway.records import CallRecord
from lunos.gateway.tools.web_search import native
from lunos.gateway.validation import ChatOptions, WebSearchOptions

URL, TITLE = "https://news.example.com/a", "News"
CITATION = {"type": "web_search_result_location", "url": URL, "title": TITLE, "encrypted_index": "E",
            "cited_text": "Lunos 1.0 is out."}
QUERIES = native.QUERIES_KEY


def test_the_adapters_and_the_layer_agree_on_the_queries_key():
    assert anthropic_search.QUERIES_KEY == google_search.QUERIES_KEY == QUERIES


def req(provider: str, model: str, stream=False, **body) -> ChatRequest:
    return ChatRequest({"model": f"{provider}/{model}", "messages": [{"role": "user", "content": "q"}], **body},
                       f"{provider}/{model}", provider, model, stream=stream)


# ---------------------------------------------------------------- Anthropic
ANTHROPIC = AnthropicAdapter(ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", "k"))
FUNCTION = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def test_anthropic_request_adds_the_server_tool_and_check_accepts_it():
    r = req("anthropic", "claude-haiku-4-5", tools=[FUNCTION],
            web_search_options={"search_context_size": "medium", "allowed_domains": ["a.com"]})
    assert ANTHROPIC.check(r) == []
    sent = orjson.loads(ANTHROPIC.build_request(r).body)
    assert sent["tools"][0]["name"] == "f" and "type" not in sent["tools"][0]
    assert sent["tools"][1] == {"type": "web_search_20250305", "name": "web_search", "allowed_domains": ["a.com"]}
    blocked = anthropic_search.tool({"excluded_domains": ["b.com"]})
    assert blocked == {"type": "web_search_20250305", "name": "web_search", "blocked_domains": ["b.com"]}
    assert "tools" not in orjson.loads(ANTHROPIC.build_request(req("anthropic", "claude-haiku-4-5")).body)


def test_anthropic_citations_become_annotations():
    data = {"content": [
        {"type": "text", "text": "Ich suche. "},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "lunos"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"type": "web_search_result"}]},
        {"type": "text", "text": "Lunos 1.0 ist da.", "citations": [CITATION, {"type": "char_location"}]},
        {"type": "text", "text": " Ende."}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "output_tokens": 7, "server_tool_use": {"web_search_requests": 1}}}
    out = ANTHROPIC.parse_response(req("anthropic", "claude-haiku-4-5"), 200, orjson.dumps(data))
    message = out["choices"][0]["message"]
    assert message["content"] == "Ich suche. Lunos 1.0 ist da. Ende."
    assert message["annotations"] == [{"type": "url_citation", "url_citation": {
        "url": URL, "title": TITLE, "content": "Lunos 1.0 is out.", "start_index": 11, "end_index": 28}}]
    assert message["content"][11:28] == "Lunos 1.0 ist da."
    assert out[QUERIES] == ["lunos"] and "tool_calls" not in message


def sse(kind: str, payload: dict) -> ServerSentEvent:
    return ServerSentEvent(json.dumps({"type": kind, **payload}), kind)


def test_anthropic_stream_citations_become_an_annotations_delta():
    events = [
        sse("message_start", {"message": {"usage": {"input_tokens": 3, "output_tokens": 1}}}),
        sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": "Ünï "}}),
        sse("content_block_stop", {"index": 0}),
        sse("content_block_start", {"index": 1, "content_block": {
            "type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}}),
        sse("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"query": '}}),
        sse("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '"lunos"}'}}),
        sse("content_block_stop", {"index": 1}),
        sse("content_block_start", {"index": 2, "content_block": {
            "type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}}),
        sse("content_block_stop", {"index": 2}),
        sse("content_block_start", {"index": 3, "content_block": {"type": "text", "text": ""}}),
        sse("content_block_delta", {"index": 3, "delta": {"type": "citations_delta", "citation": CITATION}}),
        sse("content_block_delta", {"index": 3, "delta": {"type": "text_delta", "text": "Lunos "}}),
        sse("content_block_delta", {"index": 3, "delta": {"type": "text_delta", "text": "1.0."}}),
        sse("content_block_stop", {"index": 3}),
        sse("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
        sse("message_stop", {}),
    ]
    t = ANTHROPIC.stream_translator(req("anthropic", "claude-haiku-4-5", stream=True))
    out = [c for e in events for c in t.feed(e)] + list(t.finish())
    deltas = [c["choices"][0]["delta"] for c in out if c["choices"]]
    content = "".join(d.get("content") or "" for d in deltas)
    assert content == "Ünï Lunos 1.0."
    (annotated,) = [d for d in deltas if "annotations" in d]
    cite = annotated["annotations"][0]["url_citation"]
    assert content[cite["start_index"]:cite["end_index"]] == "Lunos 1.0."
    assert annotated[QUERIES] == ["lunos"]
    assert deltas.index(annotated) < len(deltas) - 1 and out[-2]["choices"][0]["finish_reason"] == "stop"


# ---------------------------------------------------------------- Gemini
GOOGLE = GoogleAdapter(ProviderConfig("google", "google", "https://gemini.example", "k"))


def grounding(text: str, cited: str, **segment) -> dict:
    start = len(text[:text.index(cited)].encode())  # Gemini counts UTF-8 bytes
    segment = {"startIndex": start, "endIndex": start + len(cited.encode()), "text": cited, **segment}
    return {"webSearchQueries": ["lunos news"], "groundingChunks": [{"web": {"uri": URL, "title": TITLE}},
                                                                     {"web": {"uri": URL + "2", "title": "Two"}}],
            "groundingSupports": [{"segment": segment, "groundingChunkIndices": [0, 1]}]}


def test_gemini_request_adds_google_search_and_check_accepts_it():
    r = req("google", "gemini-2.5-flash", web_search_options={"search_context_size": "low"})
    assert GOOGLE.check(r) == []
    assert orjson.loads(GOOGLE.build_request(r).body)["tools"] == [{"googleSearch": {}}]


def test_gemini_grounding_becomes_annotations_with_character_offsets():
    text = "Grüße! Lunos 1.0 ist da."
    data = {"candidates": [{"content": {"parts": [{"text": "thinking", "thought": True}, {"text": text}],
                                        "role": "model"}, "finishReason": "STOP", "index": 0,
                            "groundingMetadata": grounding(text, "Lunos 1.0 ist da.", partIndex=1)}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5}}
    out = GOOGLE.parse_response(req("google", "gemini-2.5-flash"), 200, orjson.dumps(data))
    message = out["choices"][0]["message"]
    cites = [a["url_citation"] for a in message["annotations"]]
    assert [c["url"] for c in cites] == [URL, URL + "2"]
    assert {text[c["start_index"]:c["end_index"]] for c in cites} == {"Lunos 1.0 ist da."}
    assert cites[0]["content"] == "Lunos 1.0 ist da."
    assert out[QUERIES] == ["lunos news"]


def test_gemini_stream_grounding_comes_before_the_finish():
    text = "Grüße! Lunos 1.0 ist da."
    events = [{"candidates": [{"content": {"parts": [{"text": text[:7]}], "role": "model"}, "index": 0}]},
              {"candidates": [{"content": {"parts": [{"text": text[7:]}], "role": "model"}, "index": 0,
                               "finishReason": "STOP", "groundingMetadata": grounding(text, "Lunos 1.0 ist da.")}],
               "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5}}]
    t = GOOGLE.stream_translator(req("google", "gemini-2.5-flash", stream=True))
    out = [c for e in events for c in t.feed(ServerSentEvent(json.dumps(e)))] + list(t.finish())
    deltas = [c["choices"][0] for c in out if c["choices"]]
    annotated = next(i for i, d in enumerate(deltas) if "annotations" in d["delta"])
    assert deltas[annotated + 1]["finish_reason"] == "stop"
    cites = deltas[annotated]["delta"]["annotations"]
    assert [text[c["url_citation"]["start_index"]:c["url_citation"]["end_index"]] for c in cites] == [
        "Lunos 1.0 ist da."] * 2
    assert deltas[annotated]["delta"][QUERIES] == ["lunos news"]


def test_gemini_without_grounding_is_unchanged():
    data = {"candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}, "finishReason": "STOP"}]}
    out = GOOGLE.parse_response(req("google", "gemini-2.5-flash"), 200, orjson.dumps(data))
    assert "annotations" not in out["choices"][0]["message"] and QUERIES not in out


# ---------------------------------------------------------------- the layer
def route(kind: str, model: str, info: ModelInfo | None = None):
    return SimpleNamespace(adapter=SimpleNamespace(kind=kind), model=model, model_info=info)


def test_check_where_native_search_exists():
    plain = WebSearchOptions(engine="native")
    domains = WebSearchOptions(engine="native", allowed_domains=("a.com",))
    native.check(route("anthropic", "anthropic/x"), domains)
    native.check(route("google", "google/x"), plain)
    native.check(route("openai", "openai/unknown-search-model"), plain)  # not in the catalog: upstream decides
    native.check(route("openai", "openrouter/x", ModelInfo("openrouter/x", "openrouter",
                                                          supported_parameters=frozenset({"web_search_options"}))), plain)
    for r, options in [(route("google", "google/x"), domains),
                       (route("openai", "openai/gpt-4o", ModelInfo("openai/gpt-4o", "openai",
                                                                   supported_parameters=frozenset({"tools"}))), plain),
                       (route("openai", "openai/unknown"), domains)]:
        with pytest.raises(GatewayError) as info:
            native.check(r, options)
        assert info.value.status == 400 and info.value.param == "tools"


class Scripted:
    def __init__(self, answer) -> None:
        self.answer = answer
        self.bodies: list[dict] = []

    async def complete(self, body, options, record):
        self.bodies.append(body)
        return copy.deepcopy(self.answer)

    async def stream(self, body, options, record):
        self.bodies.append(body)
        for chunk in copy.deepcopy(self.answer):
            yield [chunk]


async def test_the_layer_asks_for_native_search_and_records_the_queries():
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}],
              QUERIES: ["a", "b"]}
    inner = Scripted(answer)
    rec = CallRecord("id", None, "app", "m", trace=True)
    out = await native.NativeSearch(inner, WebSearchOptions(engine="native", search_context_size="high")).complete(
        {"model": "m", "messages": []}, ChatOptions(), rec)
    assert inner.bodies[0]["web_search_options"] == {"search_context_size": "high"}
    assert QUERIES not in out and out["choices"][0]["message"]["annotations"] == []
    assert out["web_search"] == {"status": "ok", "engine": "native", "searches": 2}
    assert rec.extra == {"searches": [{"query": "a", "engine": "native"}, {"query": "b", "engine": "native"}],
                         "search_status": "ok"}


async def test_the_layer_in_a_stream():
    cited = [{"type": "url_citation", "url_citation": {"url": URL}}]
    chunks = [{"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]},
              {"choices": [{"index": 0, "delta": {"annotations": cited, QUERIES: ["q"]}, "finish_reason": None}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 1}}]
    rec = CallRecord("id", None, "app", "m")
    out = [c async for batch in native.NativeSearch(Scripted(chunks), WebSearchOptions(engine="native")).stream(
        {"model": "m", "messages": []}, ChatOptions(), rec) for c in batch]
    assert out[1]["choices"][0]["delta"] == {"annotations": cited}
    assert out[2]["web_search"] == {"status": "ok", "engine": "native", "searches": 1}
    assert rec.extra["searches"] == [{"query": "q", "engine": "native"}]

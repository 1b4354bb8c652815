"""The search loop over a scripted runner: what each upstream call is sent, what the caller
sees (JSON and streams), usage, bounds, failures and the history row."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

from lunos.gateway.records import CallRecord
from lunos.gateway.tools.web_search.base import Result
from lunos.gateway.tools.web_search.config import SearchConfig
from lunos.gateway.tools.web_search.loop import SearchLoop
from lunos.gateway.tools.web_search.service import Outcome
from lunos.gateway.usage import TokenCounts
from lunos.gateway.validation import ChatOptions, WebSearchOptions

RESULTS = [Result("https://a.example/1", "Alpha", "alpha snippet"), Result("https://b.example/2", "Beta", "beta")]
STAMP = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "p/m", "provider": "p"}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def usage(prompt: int, completion: int, cost: float = 0.001) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0},
            "cost": cost}


def call(name: str, args: dict, call_id: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def completion(text=None, calls=(), finish=None, u=(10, 5), **message) -> dict:
    msg = {"role": "assistant", "content": text, **message}
    if calls:
        msg["tool_calls"] = list(calls)
    return {"choices": [{"index": 0, "message": msg, "finish_reason": finish or ("tool_calls" if calls else "stop")}],
            "usage": usage(*u)}


def chunk(delta: dict, finish=None) -> dict:
    return {**STAMP, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def chunks(text: str = "", calls=(), u=(10, 5), reasoning_details=None) -> list[dict]:
    out = [chunk({"role": "assistant", "content": ""})]
    if reasoning_details:
        out.append(chunk({"reasoning_details": reasoning_details}))
    out += [chunk({"content": piece}) for piece in text.split("|") if piece]
    for i, c in enumerate(calls):
        head = {"index": i, "id": c["id"], "type": "function", "function": {"name": c["function"]["name"], "arguments": ""}}
        if "extra_content" in c:
            head["extra_content"] = c["extra_content"]
        out.append(chunk({"tool_calls": [head]}))
        out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": c["function"]["arguments"]}}]}))
    out.append(chunk({}, "tool_calls" if calls else "stop"))
    out.append({**STAMP, "choices": [], "usage": usage(*u)})
    return out


class Scripted:
    """The runner below the loop: each call gets the next scripted answer; each adds its
    tokens and cost to the record, as the engine does."""

    def __init__(self, *turns) -> None:
        self.turns = list(turns)
        self.bodies: list[dict] = []

    def _account(self, u: dict, record: CallRecord) -> None:
        record.tokens.add(TokenCounts.of(u))
        record.cost = round((record.cost or 0) + u["cost"], 10)

    async def complete(self, body, options, record):
        self.bodies.append(copy.deepcopy(body))
        turn = copy.deepcopy(self.turns.pop(0))
        self._account(turn["usage"], record)
        return turn

    async def stream(self, body, options, record):
        self.bodies.append(copy.deepcopy(body))
        turn = copy.deepcopy(self.turns.pop(0))
        try:
            for c in turn:
                yield [c]
        finally:
            self._account(turn[-1]["usage"], record)


class Searcher:
    def __init__(self, results=RESULTS, error: str | None = None) -> None:
        self.backend = SimpleNamespace(name="stub")
        self.results, self.error = results, error
        self.queries: list[str] = []

    async def search(self, text: str, options) -> Outcome:
        self.queries.append(text)
        return Outcome(text, "stub", [] if self.error else list(self.results), self.error)


def loop(inner, searcher=None, offer_tool=True, **config) -> SearchLoop:
    return SearchLoop(inner, searcher or Searcher(), WebSearchOptions(), SearchConfig(**config), offer_tool=offer_tool)


def body(text="what is new?", **extra) -> dict:
    return {"model": "p/m", "messages": [{"role": "user", "content": text}], **extra}


def record(trace=True) -> CallRecord:
    return CallRecord("chatcmpl-1", None, "app", "p/m", trace=trace)


SEARCH = call("web_search", {"query": "lunos news"}, "c1")


async def run(runner: SearchLoop, b: dict, rec: CallRecord) -> list[dict]:
    out = []
    async for batch in runner.stream(b, ChatOptions(), rec):
        out.extend(batch)
    return out


def text(chunks_: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks_ if c["choices"])


# ---------------------------------------------------------------- JSON
async def test_search_then_answer():
    inner = Scripted(completion("Let me look.", [SEARCH]), completion("News [1] and more [2].", u=(40, 6)))
    searcher, rec = Searcher(), record()
    out = await loop(inner, searcher).complete(body(), ChatOptions(), rec)
    first, second = inner.bodies
    assert first["tools"][-1]["function"]["name"] == "web_search" and "tool_choice" not in first
    assistant, tool = second["messages"][1:]
    assert assistant == {"role": "assistant", "content": "Let me look.", "tool_calls": [SEARCH]}
    assert tool["role"] == "tool" and tool["tool_call_id"] == "c1" and "[1] Alpha" in tool["content"]
    assert searcher.queries == ["lunos news"]
    message = out["choices"][0]["message"]
    assert message["content"] == "News [1] and more [2]." and "tool_calls" not in message
    assert [(a["url_citation"]["url"], a["url_citation"]["start_index"]) for a in message["annotations"]] == [
        ("https://a.example/1", 5), ("https://b.example/2", 18)]
    assert out["usage"]["prompt_tokens"] == 50 and out["usage"]["completion_tokens"] == 11
    assert out["usage"]["total_tokens"] == 61 and out["usage"]["cost"] == 0.002
    assert out["web_search"] == {"status": "ok", "engine": "stub", "searches": 1}
    assert rec.extra["searches"][0]["query"] == "lunos news" and rec.extra["searches"][0]["results"] == 2
    assert rec.extra["search_status"] == "ok"


async def test_a_turn_calling_a_caller_tool_is_final():
    weather = call("get_weather", {"city": "Paris"}, "c2")
    inner = Scripted(completion(None, [SEARCH, weather]))
    out = await loop(inner).complete(body(tools=[WEATHER]), ChatOptions(), record())
    choice = out["choices"][0]
    assert choice["message"]["tool_calls"] == [weather] and choice["finish_reason"] == "tool_calls"
    assert [t["function"]["name"] for t in inner.bodies[0]["tools"]] == ["get_weather", "web_search"]
    assert out["web_search"]["status"] == "none"


async def test_searches_are_bounded():
    again = [completion(None, [call("web_search", {"query": f"q{i}"}, f"c{i}")]) for i in range(3)]
    inner = Scripted(*again, completion("done"))
    searcher = Searcher()
    out = await loop(inner, searcher, max_searches=2).complete(body(), ChatOptions(), record())
    assert searcher.queries == ["q0", "q1"]
    # Once the searches are spent: tool_choice "none"; a model that calls anyway is told no.
    assert [b.get("tool_choice") for b in inner.bodies] == [None, None, "none", "none"]
    assert inner.bodies[3]["messages"][-1]["content"].startswith("web_search was not run")
    assert out["choices"][0]["message"]["content"] == "done"
    assert out["web_search"]["searches"] == 2


async def test_with_caller_tools_a_search_over_the_bound_is_answered_and_the_loop_ends():
    calls = [completion(None, [call("web_search", {"query": f"q{i}"}, f"c{i}")]) for i in range(4)]
    inner = Scripted(*calls)
    searcher = Searcher()
    out = await loop(inner, searcher, max_searches=1).complete(body(tools=[WEATHER]), ChatOptions(), record())
    assert searcher.queries == ["q0"] and len(inner.bodies) == 3  # max_searches + 1 rounds, then final
    assert "tool_choice" not in inner.bodies[1]
    assert inner.bodies[2]["messages"][-1]["content"].startswith("web_search was not run")
    choice = out["choices"][0]
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]
    assert choice["message"]["content"] == ""


async def test_bad_arguments_are_told_to_the_model():
    bad = call("web_search", {"q": "x"}, "c1")
    inner = Scripted(completion(None, [bad]), completion("ok"))
    searcher = Searcher()
    out = await loop(inner, searcher).complete(body(), ChatOptions(), record())
    assert searcher.queries == []
    assert inner.bodies[1]["messages"][-1]["content"] == 'web_search needs an argument "query": a non-empty string.'
    assert out["web_search"]["status"] == "none"


async def test_a_failed_search_marks_the_answer():
    inner = Scripted(completion(None, [SEARCH]), completion("From memory."))
    rec = record()
    out = await loop(inner, Searcher(error="stub is unreachable")).complete(body(), ChatOptions(), rec)
    assert inner.bodies[1]["messages"][-1]["content"].startswith('web_search failed for "lunos news": stub is unreachable.')
    assert out["web_search"] == {"status": "failed", "engine": "stub", "searches": 1, "error": "stub is unreachable"}
    assert rec.extra["search_status"] == "failed" and rec.extra["searches"][0]["error"] == "stub is unreachable"
    assert out["choices"][0]["message"]["annotations"] == []


async def test_parallel_search_calls_run_together_and_share_numbers():
    two = [call("web_search", {"query": "a"}, "c1"), call("web_search", {"query": "b"}, "c2")]
    inner = Scripted(completion(None, two), completion("[1] [2]"))
    searcher = Searcher()
    out = await loop(inner, searcher).complete(body(), ChatOptions(), record())
    assert searcher.queries == ["a", "b"]
    tools = [m for m in inner.bodies[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tools] == ["c1", "c2"]
    assert "[1] Alpha" in tools[0]["content"] and "[1] Alpha" in tools[1]["content"]  # same URL, same number
    assert out["web_search"]["searches"] == 2 and len(out["choices"][0]["message"]["annotations"]) == 2


async def test_context_mode_searches_the_last_user_message():
    inner = Scripted(completion("Answer [2]."))
    searcher = Searcher()
    b = {"model": "p/m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "old"},
                                      {"role": "assistant", "content": "a"},
                                      {"role": "user", "content": [{"type": "text", "text": "new question"}]}]}
    out = await loop(inner, searcher, offer_tool=False).complete(b, ChatOptions(), record())
    assert searcher.queries == ["new question"]
    sent = inner.bodies[0]
    assert "tools" not in sent
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "system", "user"]
    assert "[2] Beta" in sent["messages"][3]["content"]
    assert [a["url_citation"]["url"] for a in out["choices"][0]["message"]["annotations"]] == ["https://b.example/2"]


# ---------------------------------------------------------------- streams
async def test_stream_hides_the_search_turn_and_streams_the_answer():
    inner = Scripted(chunks("Let me search.", [SEARCH]), chunks("News| [1]| and| [2].", u=(30, 4)))
    rec = record()
    out = await run(loop(inner, stream_hold_chars=20), body(stream=True), rec)
    assert text(out) == "News [1] and [2]."
    assert not any(c["choices"] and c["choices"][0]["delta"].get("tool_calls") for c in out)
    assert out[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum(1 for c in out if c["choices"] and "role" in c["choices"][0]["delta"]) == 1
    annotated, finish, last = out[-3], out[-2], out[-1]
    assert [a["url_citation"]["start_index"] for a in annotated["choices"][0]["delta"]["annotations"]] == [5, 13]
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["web_search"]["status"] == "ok"
    assert last["choices"] == [] and last["usage"]["prompt_tokens"] == 40 and last["usage"]["cost"] == 0.002
    assert all(c["id"] == "chatcmpl-1" for c in out)
    assert rec.response == {"content": "News [1] and [2].", "finish_reason": "stop",
                            "annotations": annotated["choices"][0]["delta"]["annotations"]}


async def test_stream_text_is_held_until_the_turn_shows_what_it_is():
    inner = Scripted(chunks("Short|", [SEARCH]), chunks("A| longer| answer"))
    batches = []
    async for batch in loop(inner, stream_hold_chars=8).stream(body(stream=True), ChatOptions(), record()):
        batches.append(batch)
    first_text = [c["choices"][0]["delta"].get("content") for c in batches[0] if c["choices"]]
    assert first_text[:3] == ["", "A", " longer"]  # held until over 8 characters, then released together
    assert "Short" not in text([c for b in batches for c in b])


async def test_stream_text_shown_before_a_late_search_call_continues_the_stream():
    inner = Scripted(chunks("I will check the very latest sources now.", [SEARCH]), chunks(" Found [1]."))
    out = await run(loop(inner, stream_hold_chars=10), body(stream=True), record())
    assert text(out) == "I will check the very latest sources now. Found [1]."
    cite = out[-3]["choices"][0]["delta"]["annotations"][0]["url_citation"]
    assert text(out)[cite["start_index"]:cite["end_index"]] == "[1]"
    assert [c["choices"][0]["finish_reason"] for c in out if c["choices"] and c["choices"][0]["finish_reason"]] == ["stop"]


async def test_stream_caller_calls_are_renumbered_and_returned():
    weather = call("get_weather", {"city": "Paris"}, "c2")
    inner = Scripted(chunks("", [SEARCH, weather]))
    out = await run(loop(inner), body(stream=True, tools=[WEATHER]), record())
    entries = [e for c in out if c["choices"] for e in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert entries == [{"index": 0, "id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
                       {"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]
    assert out[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_carries_reasoning_and_signatures_into_the_next_turn():
    signed = {**SEARCH, "extra_content": {"google": {"thought_signature": "sig"}}}
    detail = {"type": "reasoning.text", "text": "hm", "signature": "s1", "format": "anthropic-claude-v1", "index": 0}
    inner = Scripted(chunks("", [signed], reasoning_details=[detail]), chunks("ok"))
    await run(loop(inner), body(stream=True), record())
    assistant = inner.bodies[1]["messages"][1]
    assert assistant["reasoning_details"] == [detail]
    assert assistant["tool_calls"] == [signed] and assistant["content"] is None


async def test_stream_failure_marks_the_finish_chunk():
    inner = Scripted(chunks("", [SEARCH]), chunks("From memory."))
    rec = record()
    out = await run(loop(inner, Searcher(error="stub did not answer within 5 s")), body(stream=True), rec)
    assert out[-2]["web_search"]["status"] == "failed"
    assert not any(c["choices"] and c["choices"][0]["delta"].get("annotations") for c in out)
    assert rec.extra["search_status"] == "failed"


async def test_stream_with_the_bound_spent_streams_without_holding():
    inner = Scripted(chunks("", [SEARCH]), chunks("x"))
    batches = []
    async for batch in loop(inner, max_searches=1, stream_hold_chars=1000).stream(body(stream=True), ChatOptions(), record()):
        batches.append(batch)
    assert inner.bodies[1]["tool_choice"] == "none"
    assert len(batches) == 3 and text(batches[1]) == "x"  # streamed through, then the final batch

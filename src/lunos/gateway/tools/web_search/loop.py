"""The server-side search loop (SPEC §4, §5): a runner over the runner below it.

Tool mode (the model can call tools): the model is offered one more function,
`web_search(query)`. When a turn calls it (and nothing else), the gateway runs the searches
(several calls of one turn run together), appends the assistant turn and one tool message
per call holding the fenced results, and asks the model again. The caller sees only the
final turn. Bounds: at most `max_searches` searches per request (config, default 3); once
they are spent, a caller without tools of its own gets `tool_choice: "none"`, and a further
`web_search` call is answered "no more searches"; after `max_searches + 1` search rounds the
last turn is final whatever it asks.

The caller's own function tools stay offered. A turn that calls one of them is final: its
calls go back to the caller as usual (a `web_search` call in the same turn is dropped; the
model can search again when the caller continues the conversation).

Context mode (the catalog says the model has no tool calling, or the caller's
`tool_choice` is "none"): one search on the last user message, added as a system message
before it; one upstream call.

Failures: a search that fails (backend down, slow, or answering garbage; see base.py) is
told to the model as its tool result ("web_search failed ...: answer from your own
knowledge and say the search failed"), so the request still ends with an answer, marked:
the response's `web_search.status` is `failed` (every search failed) or `partial`, and the
history row keeps each search with its error (`extra.searches`, `extra.search_status`).

Streaming: every turn streams from upstream. Chunks of a turn that may still call
`web_search` are held back until the turn shows what it is: a `web_search` call drops them
(the client never sees a search turn), a call of a caller's tool or `stream_hold_chars` of
text releases them and the rest streams through. If a turn whose text was already released
then calls `web_search` anyway, the search runs and the next turn's text continues the same
stream. The finish chunk of the final turn comes last, preceded by one chunk carrying the
`annotations` and followed by the usage chunk, whose usage (like a completion's) is the sum
over every upstream call the loop made; its `cost` is the history row's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import orjson

from ...limits import call_plan
from ...providers.common import make_usage, new_tool_call_id, text_of
from ...records import CallRecord
from ...usage import Output, TokenCounts
from ...validation import ChatOptions, WebSearchOptions
from .citations import annotations
from .config import CONTEXT_CHARS, SearchConfig
from .service import Outcome, Searcher
from .sources import TOOL_DESCRIPTION, TOOL_PARAMETERS, Sources, limit_text

MAX_QUERY_CHARS = 400
# Reservation allowances (tokens): the title, URL and numbering around each result's
# snippet; the short tool messages of one round (failed, refused or surplus calls).
RESULT_FRAME_BYTES = 1024
ROUND_NOTE_TOKENS = 2048
STAMP_KEYS = ("id", "object", "created", "model", "provider", "system_fingerprint")


class SearchLoop:
    def __init__(self, inner, searcher: Searcher, options: WebSearchOptions, config: SearchConfig,
                 *, offer_tool: bool, tool_name: str = "web_search") -> None:
        self.inner = inner
        self.searcher = searcher
        self.options = options
        self.config = config
        self.offer_tool = offer_tool
        self.tool_name = tool_name
        self.tool = {"type": "function", "function": {
            "name": tool_name, "description": TOOL_DESCRIPTION, "parameters": TOOL_PARAMETERS}}
        self.max_rounds = config.max_searches + 1

    def call_plan(self, body: dict, output: int) -> list[int]:
        """What the loop may call upstream (reserved against tpm and budgets). Context mode:
        the calls below, each with one search's results added. Tool mode: up to
        `max_searches + 2` rounds of the calls below, each offered the search tool; round r
        re-sends the r assistant turns before it (each at most `output`), a note per round,
        and at most all the searches' results. Sizes are bytes, a bound on tokens."""
        inner = call_plan(self.inner, body, output)
        results = self.results_bound()
        if not self.offer_tool:
            return [extra + results for extra in inner]
        all_results = self.config.max_searches * results
        offered = len(str(self.tool).encode())  # the web_search tool itself, on every call
        plan = []
        for r in range(self.max_rounds + 1):
            grown = offered + r * (output + ROUND_NOTE_TOKENS) + (all_results if r else 0)
            plan.extend(extra + grown for extra in inner)
        return plan

    def results_bound(self) -> int:
        """Bytes one search's tool message can hold (snippets are cut to characters, at
        most 4 bytes each)."""
        per_result = 4 * CONTEXT_CHARS.get(self.options.search_context_size, 800) + RESULT_FRAME_BYTES
        pages = self.config.pages_per_search * 4 * self.config.page_chars if self.config.fetch_pages else 0
        return 1024 + self.options.max_results * per_result + pages

    # ------------------------------------------------------------------ shared steps
    async def begin(self, body: dict, session: _Session, record: CallRecord) -> list[dict]:
        """The conversation to send first (context mode: with the search added)."""
        messages = list(body["messages"])
        if self.offer_tool:
            return messages
        last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "user"), None)
        text = text_of(messages[last].get("content")).strip() if last is not None else ""
        if not text:
            return messages
        outcome = await self.searcher.search(text[:MAX_QUERY_CHARS], self.options)
        session.note(outcome, record)
        messages.insert(last, session.sources.context_message(outcome))
        return messages

    def turn_body(self, body: dict, messages: list[dict], session: _Session) -> dict:
        out = {**body, "messages": messages}
        if self.offer_tool:
            out["tools"] = [*(body.get("tools") or ()), self.tool]
            if session.searches_left <= 0 and not body.get("tools"):
                out["tool_choice"] = "none"
        return out

    def may_search(self, turn_body: dict) -> bool:
        return self.offer_tool and turn_body.get("tool_choice") != "none"

    def split(self, calls: list[dict] | None) -> tuple[list[dict], list[dict]]:
        """(web_search calls, the caller's own calls)."""
        searches, own = [], []
        for call in calls or ():
            (searches if call["function"]["name"] == self.tool_name else own).append(call)
        return searches, own

    def searches_again(self, searches: list[dict], own: list[dict], session: _Session) -> bool:
        return bool(searches) and not own and session.rounds < self.max_rounds

    def finish(self, session: _Session, record: CallRecord) -> dict:
        """The response's `web_search` summary; the history row gets the same."""
        session.save(record)
        summary: dict[str, Any] = {"status": session.status(), "engine": self.searcher.backend.name,
                                   "searches": len(session.outcomes)}
        errors = [o.error for o in session.outcomes if o.error]
        if errors:
            summary["error"] = errors[0]
        return summary

    # ------------------------------------------------------------------ non-streaming
    async def complete(self, body: dict, options: ChatOptions, record: CallRecord) -> dict:
        session = _Session(self)
        messages = await self.begin(body, session, record)
        while True:
            completion = await self.inner.complete(self.turn_body(body, messages, session), options, record)
            session.usages.append(completion.get("usage"))
            choice = completion["choices"][0]
            message = choice.get("message") or {}
            searches, own = self.split(message.get("tool_calls"))
            if self.searches_again(searches, own, session):
                messages = [*messages, _assistant_turn(message, searches), *await session.run(searches, record)]
                session.rounds += 1
                continue
            message = dict(message)
            if own:
                message["tool_calls"] = own
            else:
                message.pop("tool_calls", None)
                if choice.get("finish_reason") == "tool_calls":
                    choice["finish_reason"] = "stop"
                if message.get("content") is None:
                    message["content"] = ""
            message["annotations"] = annotations(text_of(message.get("content")), session.sources)
            choice["message"] = message
            total = session.total_usage(record)
            if total is not None:
                completion["usage"] = total
            completion["web_search"] = self.finish(session, record)
            return completion

    # ------------------------------------------------------------------ streaming
    async def stream(self, body: dict, options: ChatOptions, record: CallRecord) -> AsyncIterator[list[dict]]:
        session = _Session(self)
        messages = await self.begin(body, session, record)
        client = _ClientStream()
        while True:
            call_body = self.turn_body(body, messages, session)
            hold = self.config.stream_hold_chars if self.may_search(call_body) else None
            turn = _Turn(self.tool_name, hold, client)
            async with aclosing(self.inner.stream(call_body, options, record)) as batches:
                async for batch in batches:
                    out = turn.feed(batch)
                    if out:
                        yield out
            session.usages.extend(turn.usages)
            searches, own = self.split(turn.tool_calls())
            if self.searches_again(searches, own, session):
                messages = [*messages, turn.assistant_turn(searches), *await session.run(searches, record)]
                session.rounds += 1
                continue
            yield self.last_batch(turn, own, session, record, client)
            return

    def last_batch(self, turn: _Turn, own: list[dict], session: _Session, record: CallRecord,
                   client: _ClientStream) -> list[dict]:
        out = client.forward_all(turn.release())
        stamp = turn.stamp
        finish = turn.finish or {**stamp, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        choice = finish["choices"][0]
        if choice.get("finish_reason") == "tool_calls" and not own:
            choice["finish_reason"] = "stop"
        cited = annotations(client.text(), session.sources)
        if cited:
            out.append({**stamp, "choices": [{"index": 0, "delta": {"annotations": cited},
                                              "finish_reason": None}]})
        finish["web_search"] = self.finish(session, record)
        out.extend(client.forward_all([finish]))
        total = session.total_usage(record)
        if total is not None:
            out.append({**stamp, "choices": [], "usage": total})
        if record.trace:
            record.response = Output(content=client.text(), reasoning="".join(turn.reasoning),
                                     tool_calls=own, annotations=cited,
                                     finish_reason=choice.get("finish_reason")).to_dict()
        return out


class _Session:
    """What one request's loop has done so far."""

    def __init__(self, loop: SearchLoop) -> None:
        self.loop = loop
        self.sources = Sources()
        self.outcomes: list[Outcome] = []
        self.usages: list[dict | None] = []
        self.rounds = 0

    @property
    def searches_left(self) -> int:
        return self.loop.config.max_searches - len(self.outcomes)

    def note(self, outcome: Outcome, record: CallRecord) -> None:
        self.outcomes.append(outcome)
        self.save(record)

    def save(self, record: CallRecord) -> None:
        record.extra["searches"] = [o.record() for o in self.outcomes]
        record.extra["search_status"] = self.status()

    def status(self) -> str:
        if not self.outcomes:
            return "none"
        failed = sum(1 for o in self.outcomes if o.error)
        return "ok" if not failed else "failed" if failed == len(self.outcomes) else "partial"

    async def run(self, calls: list[dict], record: CallRecord) -> list[dict]:
        """Run the searches these calls ask for; one tool message per call, in call order."""
        budget = self.searches_left
        texts: list[str | None] = []
        queries: list[str] = []
        for call in calls:
            query = _query_of(call)
            if query is None:
                texts.append('web_search needs an argument "query": a non-empty string.')
            elif budget <= 0:
                texts.append(limit_text())
            else:
                budget -= 1
                texts.append(None)
                queries.append(query)
        outcomes = await asyncio.gather(*(self.loop.searcher.search(q, self.loop.options) for q in queries))
        found = iter(outcomes)
        messages = []
        for call, text in zip(calls, texts, strict=True):
            if text is None:
                outcome = next(found)
                self.note(outcome, record)
                text = self.sources.tool_result(outcome)
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": text})
        return messages

    def total_usage(self, record: CallRecord) -> dict | None:
        """The sum of every call's usage; `cost` as the history row has it."""
        known = [u for u in self.usages if u]
        if not known:
            return None
        total = TokenCounts()
        for usage in known:
            total.add(TokenCounts.of(usage))
        out = make_usage(total.prompt, total.completion, cached=total.cached,
                         cache_write=total.cache_write, cache_write_1h=total.cache_write_1h,
                         reasoning=total.reasoning)
        if record.cost is not None:
            out["cost"] = record.cost
        return out


def _query_of(call: dict) -> str | None:
    try:
        args = orjson.loads(call["function"].get("arguments") or "{}")
    except orjson.JSONDecodeError:
        return None
    query = args.get("query") if isinstance(args, dict) else None
    if not isinstance(query, str) or not query.strip():
        return None
    return query.strip()[:MAX_QUERY_CHARS]


def _assistant_turn(message: dict, calls: list[dict]) -> dict:
    """The assistant message to send back: what the model said, with its search calls."""
    turn: dict[str, Any] = {"role": "assistant", "content": message.get("content") or None,
                            "tool_calls": calls}
    for key in ("reasoning_content", "reasoning_details"):
        if message.get(key):
            turn[key] = message[key]
    return turn


class _ClientStream:
    """What the client has been sent: one role delta first, and the content so far."""

    def __init__(self) -> None:
        self.role_sent = False
        self.content: list[str] = []

    def text(self) -> str:
        return "".join(self.content)

    def forward_all(self, chunks: list[dict]) -> list[dict]:
        out = []
        for chunk in chunks:
            choice = chunk["choices"][0]
            delta = choice.get("delta") or {}
            if self.role_sent:
                delta.pop("role", None)
                if not choice.get("finish_reason") and not any(delta.values()):
                    continue  # a later turn's role chunk
            else:
                delta = {"role": "assistant", **delta}
                self.role_sent = True
            choice["delta"] = delta
            if delta.get("content"):
                self.content.append(delta["content"])
            out.append(chunk)
        return out


class _Turn:
    """One upstream turn of a stream: folds what it says and decides what the client sees.

    `mode`: "hold" (may still turn out to be a search turn: chunks wait in `held`),
    "search" (a web_search call came first: nothing is shown), "show" (streams through,
    web_search call deltas removed and the caller's calls renumbered from 0).
    """

    def __init__(self, tool_name: str, hold: int | None, client: _ClientStream) -> None:
        self.tool_name = tool_name
        self.hold = hold or 0
        self.mode = "hold" if hold is not None else "show"
        self.client = client
        self.held: list[dict] = []
        self.held_chars = 0
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.details: list[dict] = []
        self.calls: dict[int, dict] = {}
        self.own_index: dict[int, int] = {}
        self.finish: dict | None = None
        self.usages: list[dict] = []
        self.stamp: dict = {}

    def feed(self, batch: list[dict]) -> list[dict]:
        shown: list[dict] = []
        for chunk in batch:
            self.stamp = {k: chunk[k] for k in STAMP_KEYS if k in chunk}
            choices = chunk.get("choices")
            if not choices:
                if chunk.get("usage"):
                    self.usages.append(chunk["usage"])
                continue
            choice = choices[0]
            if choice.get("finish_reason"):
                self.finish = {**chunk, "choices": [{**choice, "delta": {}}]}
            visible, searched, own = self._fold(choice.get("delta") or {})
            if own and self.mode != "show":
                shown.extend(self.release())
                self.mode = "show"
            elif searched and self.mode == "hold":
                self.mode, self.held = "search", []
            if visible is None or self.mode == "search":
                continue
            view = {**chunk, "choices": [{**choice, "delta": visible, "finish_reason": None}]}
            if self.mode == "show":
                shown.append(view)
                continue
            self.held.append(view)
            self.held_chars += len(visible.get("content") or "")
            if self.held_chars > self.hold:
                shown.extend(self.release())
        return self.client.forward_all(shown)

    def release(self) -> list[dict]:
        """Stop holding: the held chunks, to send now."""
        held, self.held = self.held, []
        if self.mode == "hold":
            self.mode = "show"
        return held

    def _fold(self, delta: dict) -> tuple[dict | None, bool, bool]:
        """Fold a delta into the turn: (the part the client may see or None,
        whether it called web_search, whether it called a caller's tool)."""
        if delta.get("content"):
            self.text.append(delta["content"])
        if delta.get("reasoning_content"):
            self.reasoning.append(delta["reasoning_content"])
        if delta.get("reasoning_details"):
            self.details.extend(delta["reasoning_details"])
        visible = {k: v for k, v in delta.items() if k != "tool_calls"}
        searched = False
        own = []
        for entry in delta.get("tool_calls") or ():
            index = entry.get("index", 0)
            call = self.calls.setdefault(index, {"id": None, "name": "", "arguments": "", "extra": None})
            if entry.get("id"):
                call["id"] = entry["id"]
            fn = entry.get("function") or {}
            call["name"] += fn.get("name") or ""
            call["arguments"] += fn.get("arguments") or ""
            if entry.get("extra_content"):
                call["extra"] = entry["extra_content"]
            if call["name"] == self.tool_name:
                searched = True
            else:
                own.append({**entry, "index": self.own_index.setdefault(index, len(self.own_index))})
        if own:
            visible["tool_calls"] = own
        if not any(v not in (None, "", [], {}) for v in visible.values()):
            return None, searched, bool(own)
        return visible, searched, bool(own)

    def tool_calls(self) -> list[dict]:
        out = []
        for index in sorted(self.calls):
            call = self.calls[index]
            call["id"] = call["id"] or new_tool_call_id()
            entry = {"id": call["id"], "type": "function",
                     "function": {"name": call["name"], "arguments": call["arguments"]}}
            if call["extra"]:
                entry["extra_content"] = call["extra"]
            out.append(entry)
        return out

    def assistant_turn(self, calls: list[dict]) -> dict:
        message: dict[str, Any] = {"content": "".join(self.text) or None}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.details:
            message["reasoning_details"] = self.details
        return _assistant_turn(message, calls)

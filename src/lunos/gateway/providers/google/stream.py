"""`streamGenerateContent?alt=sse` events -> OpenAI chunks.

Every event is a whole `GenerateContentResponse` holding the next piece of each candidate.
Per candidate (choice index = candidate index): a role delta first; text parts as content
deltas (empty ones skipped: the last event often holds only an empty text part carrying a
signature); thought parts as `reasoning_content`; a signature on a text part as one
`reasoning_details` delta; a function call, which always arrives whole, as two tool-call
deltas (id, name and empty arguments, then the full arguments), indexed 0, 1, ... per
candidate (only the first with `parallel_tool_calls: false`); the finish chunk when `finishReason` arrives (preceded by an `annotations` delta
when the candidate was grounded with Google Search: see search.py).

`usageMetadata` repeats in every event and is cumulative: the last one seen is the usage,
sent as the usage-only chunk by `finish()`. An `{"error": ...}` event raises GatewayError;
so does a stream that ends before every candidate it started has finished.
"""

from __future__ import annotations

from typing import Any

from ...._sse import ServerSentEvent
from ...errors import GatewayError
from ..common import upstream_json
from . import search
from .errors import error_from_payload
from .response import candidates_of, finish_reason, signature_detail, tool_call, usage_of


class _Candidate:
    __slots__ = ("calls", "details", "finished", "grounding", "text")

    def __init__(self) -> None:
        self.calls = 0
        self.details = 0
        self.finished = False
        self.text: list[str] = []  # content so far (grounding offsets count it)
        self.grounding: dict | None = None  # native web search metadata (search.py)


class GoogleStreamTranslator:
    def __init__(self, provider: str, api_key: str | None = None, one_call: bool = False) -> None:
        self._provider = provider
        self._api_key = api_key
        self._one_call = one_call  # parallel_tool_calls: false: the first call only
        self._candidates: dict[int, _Candidate] = {}
        self._usage: dict | None = None

    def feed(self, event: ServerSentEvent) -> list[dict]:
        if not event.data.strip():
            return []
        data = upstream_json(event.data, self._provider, "a stream event")
        if not isinstance(data, dict):
            return []
        if "error" in data:
            raise error_from_payload(data["error"], self._provider, self._api_key)
        if isinstance(data.get("usageMetadata"), dict):
            self._usage = data["usageMetadata"]
        out: list[dict] = []
        candidates = candidates_of(data)
        for candidate in candidates:
            self._candidate(candidate, out)
        if not candidates and (data.get("promptFeedback") or {}).get("blockReason"):
            state = self._start(0, out)
            if not state.finished:
                state.finished = True
                out.append(_chunk(0, {}, "content_filter"))
        return out

    def finish(self) -> list[dict]:
        if not self._candidates or not all(c.finished for c in self._candidates.values()):
            raise GatewayError(502, f"{self._provider} ended the stream before the answer finished",
                               code="upstream_incomplete_stream", retryable=not self._candidates)
        if self._usage is None:
            return []
        return [{"choices": [], "usage": usage_of(self._usage)}]

    def _start(self, index: int, out: list[dict]) -> _Candidate:
        state = self._candidates.get(index)
        if state is None:
            state = self._candidates[index] = _Candidate()
            out.append(_chunk(index, {"role": "assistant", "content": ""}))
        return state

    def _candidate(self, candidate: dict, out: list[dict]) -> None:
        index = candidate.get("index") or 0
        state = self._start(index, out)
        if state.finished:
            return
        for part in (candidate.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                if self._one_call and state.calls:
                    continue
                call = tool_call(part)
                head: dict[str, Any] = {"index": state.calls, "id": call["id"], "type": "function",
                                        "function": {"name": call["function"]["name"], "arguments": ""}}
                if "extra_content" in call:
                    head["extra_content"] = call["extra_content"]
                out.append(_chunk(index, {"tool_calls": [head]}))
                out.append(_chunk(index, {"tool_calls": [
                    {"index": state.calls, "function": {"arguments": call["function"]["arguments"]}}]}))
                state.calls += 1
                continue
            text = part.get("text")
            if text:
                key = "reasoning_content" if part.get("thought") else "content"
                out.append(_chunk(index, {key: text}))
                if key == "content":
                    state.text.append(text)
            if part.get("thoughtSignature"):
                detail = signature_detail(part["thoughtSignature"], state.details)
                state.details += 1
                out.append(_chunk(index, {"reasoning_details": [detail]}))
        state.grounding = search.metadata(candidate) or state.grounding
        reason = candidate.get("finishReason")
        if reason:
            state.finished = True
            if state.grounding is not None:
                out.extend(_grounding(index, state))
            out.append(_chunk(index, {}, finish_reason(reason, state.calls > 0)))


def _grounding(index: int, state: _Candidate) -> list[dict]:
    """Native web search: the annotations (and queries) delta, before the finish chunk."""
    delta: dict[str, Any] = {}
    cited = search.annotations(state.grounding, "".join(state.text))
    if cited:
        delta["annotations"] = cited
    queries = search.queries(state.grounding)
    if queries:
        delta[search.QUERIES_KEY] = queries
    return [_chunk(index, delta)] if delta else []


def _chunk(index: int, delta: dict, finish: str | None = None) -> dict:
    return {"choices": [{"index": index, "delta": delta, "finish_reason": finish}]}

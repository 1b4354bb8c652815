"""Mid-stream failover: what a stream has said so far, and the request that continues it.

When a chat stream breaks after the client got its first chunk (docs/reliability.md), the
engine asks the next candidate to continue the answer: the conversation plus the text
streamed so far as a trailing assistant message (a prefill). Anthropic and Gemini continue
a prefill natively; other providers are also sent `CONTINUE`, a user turn asking for the
rest. Only text goes into the prefill: tool calls (a call broken mid-arguments included)
and reasoning are left out, so a tool call is made again whole, never spliced.

`Resume` holds one stream's state across its attempts; the engine's `_ContinuedPump` uses
it to keep the continuation on the client's stream (no second role chunk, tool calls
numbered after the ones the client saw, usage summed over every attempt).
"""

from __future__ import annotations

import dataclasses

from .providers.base import ChatRequest
from .usage import TokenCounts, cost_of

CONTINUE = ("Your previous message was cut off. Continue it from exactly where it stops: "
            "do not repeat any of it and add no preamble.")
MAX_PAUSES = 4  # Anthropic `pause_turn`s continued in one answer


class Resume:
    """One resumable stream: its text so far (appended by the pumps), the tool calls the
    client saw, and the tokens and cost of the attempts that ended before the answer."""

    __slots__ = ("cost", "first_token_at", "output", "pauses", "stamp", "text", "tokens", "tools", "trim")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tools = 0  # tool calls the client has seen: a continuation's are numbered after
        self.tokens = TokenCounts()
        self.cost: float | None = None
        self.first_token_at: float | None = None
        self.output = None  # the trace's Output, shared by every attempt's pump
        self.stamp: dict | None = None  # the first attempt's: every chunk keeps it
        self.pauses = 0
        self.trim = False  # the prefill lost trailing whitespace the client already has

    def follow(self, pump, first: list[dict]) -> None:
        """Keep the first pump's text from now on, starting with its first batch."""
        for chunk in first:
            choices = chunk.get("choices")
            if choices and (choices[0].get("delta") or {}).get("content"):
                self.text.append(choices[0]["delta"]["content"])
        pump.text = self.text
        self.pausing(pump)

    def pausing(self, pump) -> None:
        """Let the pump's translator leave a `pause_turn` open for a continuation, while
        the bound allows (only Anthropic's translator knows the stop reason)."""
        if hasattr(pump.translator, "pause_turns"):
            pump.translator.pause_turns = self.pauses < MAX_PAUSES

    def take(self, pump) -> None:
        """Keep what a pump that ended early leaves: its usage (what the provider reported
        so far when no usage chunk came), its tool calls, its timing and trace."""
        usage = pump.usage
        if usage is None:
            so_far = getattr(pump.translator, "usage_so_far", None)
            usage = so_far() if so_far is not None else None
        pump.usage = None  # counted here, not again when the pump settles
        tokens = TokenCounts.of(usage)
        self.tokens.add(tokens)
        self.cost = _plus(self.cost, cost_of(tokens, pump.route.model_info))
        if pump.calls:
            self.tools = max(self.tools, 1 + max(index for _, index in pump.calls))
        self.first_token_at = self.first_token_at or pump.first_token_at
        self.stamp = self.stamp or pump.stamp
        self.output = pump.output

    def request(self, req: ChatRequest, continues_prefill: bool) -> ChatRequest:
        """`req` (the next candidate's request for the original conversation) with the
        answer so far as a trailing assistant message; the same request when nothing was
        said yet. Trailing whitespace is left out (Anthropic refuses a prefill ending in it)."""
        said = "".join(self.text)
        prefill = said.rstrip()
        self.trim = len(prefill) < len(said)
        if not prefill:
            return req
        messages = [*req.body["messages"], {"role": "assistant", "content": prefill}]
        if not continues_prefill:
            messages.append({"role": "user", "content": CONTINUE})
        return dataclasses.replace(req, body={**req.body, "messages": messages})

    def total(self, usage: dict) -> dict:
        """A continuation's usage chunk with the earlier attempts' tokens and cost added."""
        return _summed(usage, self.tokens, self.cost)

    def joined(self, earlier: dict, later: dict) -> dict:
        """A paused answer and its continuation as one completion: the texts (and citation
        spans) joined, the continuation's tool calls and finish, the usage of both."""
        said = earlier["choices"][0]["message"].get("content") or ""
        message = dict(later["choices"][0]["message"])
        more = message.get("content") or ""
        if self.trim:
            more = more.lstrip()
        message["content"] = said + more or (None if message.get("tool_calls") else "")
        cited = list(earlier["choices"][0]["message"].get("annotations") or ())
        for note in message.get("annotations") or ():
            span = note.get("url_citation") or {}
            if "start_index" in span:
                shift = len(said) - (len(later["choices"][0]["message"].get("content") or "") - len(more))
                span = {**span, "start_index": span["start_index"] + shift,
                        "end_index": span.get("end_index", 0) + shift}
                note = {**note, "url_citation": span}
            cited.append(note)
        if cited:
            message["annotations"] = cited
        out = {**earlier, **later, "choices": [{**later["choices"][0], "message": message}]}
        if later.get("usage") or earlier.get("usage"):
            out["usage"] = _summed(later.get("usage") or {}, TokenCounts.of(earlier.get("usage")), None)
        return out

    def settle(self, record) -> None:
        """Add the attempts that ended early to the history row (after the last pump settled)."""
        record.tokens.add(self.tokens)
        record.cost = _plus(record.cost, self.cost)


def _summed(usage: dict, earlier: TokenCounts, earlier_cost: float | None) -> dict:
    """`usage` (OpenAI's shape) with `earlier` tokens and cost added."""
    tokens = TokenCounts.of(usage)
    tokens.add(earlier)
    out = {**usage, "prompt_tokens": tokens.prompt, "completion_tokens": tokens.completion,
           "total_tokens": tokens.prompt + tokens.completion}
    if tokens.cached:
        out["prompt_tokens_details"] = {**(usage.get("prompt_tokens_details") or {}),
                                        "cached_tokens": tokens.cached}
    if tokens.reasoning:
        out["completion_tokens_details"] = {**(usage.get("completion_tokens_details") or {}),
                                            "reasoning_tokens": tokens.reasoning}
    cost = _plus(usage.get("cost"), earlier_cost)
    if cost is not None:
        out["cost"] = cost
    return out


def _plus(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else round(a + b, 10)

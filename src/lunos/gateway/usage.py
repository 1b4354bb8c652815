"""Pure folds: from a response or a stream of chunks to usage, cost and the answer's output.

Cost counts each kind of token at its own price: uncached input, cached input (read),
cache writes (Anthropic's 1-hour writes at their own rate), output, and reasoning (inside
output; priced as output unless the catalog gives a reasoning price). A model with
long-context tiers bills the whole request at the tier its prompt reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalog import ModelInfo

MILLION = 1_000_000


@dataclass(slots=True)
class TokenCounts:
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0  # the part of cache_write written for one hour
    reasoning: int = 0

    @classmethod
    def of(cls, usage: dict | None) -> TokenCounts:
        if not usage:
            return cls()
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            prompt=int(usage.get("prompt_tokens") or 0),
            completion=int(usage.get("completion_tokens") or 0),
            cached=int(prompt_details.get("cached_tokens") or 0),
            cache_write=int(prompt_details.get("cache_write_tokens") or 0),
            cache_write_1h=int(prompt_details.get("cache_write_1h_tokens") or 0),
            reasoning=int(completion_details.get("reasoning_tokens") or 0),
        )

    def add(self, other: TokenCounts) -> None:
        self.prompt += other.prompt
        self.completion += other.completion
        self.cached += other.cached
        self.cache_write += other.cache_write
        self.cache_write_1h += other.cache_write_1h
        self.reasoning += other.reasoning


def cost_of(tokens: TokenCounts, info: ModelInfo | None) -> float | None:
    """USD for these tokens at the model's catalog prices; None when the price is unknown."""
    prices = info.prices(tokens.prompt) if info is not None else None
    if prices is None:
        return None
    uncached = max(tokens.prompt - tokens.cached - tokens.cache_write, 0)
    hour = min(tokens.cache_write_1h, tokens.cache_write)
    visible_output = max(tokens.completion - tokens.reasoning, 0)
    total = (
        uncached * prices.input
        + tokens.cached * prices.cached_input
        + (tokens.cache_write - hour) * prices.cache_write
        + hour * prices.cache_write_1h
        + visible_output * prices.output
        + tokens.reasoning * prices.reasoning
    )
    return round(total / MILLION, 10)


@dataclass(slots=True)
class Output:
    """What the answer said, folded from a completion or from stream chunks (for traces)."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)
    finish_reason: str | None = None

    def to_dict(self) -> dict:
        out: dict = {"content": self.content, "finish_reason": self.finish_reason}
        if self.reasoning:
            out["reasoning"] = self.reasoning
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        if self.annotations:
            out["annotations"] = self.annotations
        return out

    def fold_delta(self, delta: dict) -> None:
        """Accumulate one chunk delta of choice 0 (content, reasoning, tool calls)."""
        text = delta.get("content")
        if text:
            self.content += text
        reasoning = delta.get("reasoning_content")
        if reasoning:
            self.reasoning += reasoning
        for call in delta.get("tool_calls") or ():
            index = call.get("index", 0)
            while len(self.tool_calls) <= index:
                self.tool_calls.append({"id": None, "type": "function",
                                        "function": {"name": "", "arguments": ""}})
            slot = self.tool_calls[index]
            if call.get("id"):
                slot["id"] = call["id"]
            fn = call.get("function") or {}
            if fn.get("name"):
                slot["function"]["name"] += fn["name"]
            if fn.get("arguments"):
                slot["function"]["arguments"] += fn["arguments"]
        if delta.get("annotations"):
            self.annotations.extend(delta["annotations"])


def completion_output(completion: dict) -> dict:
    """What a completion said, as `Output.to_dict` shapes it (the trace of a JSON answer).
    Built straight from choice 0, without an `Output` in between: it runs for every traced
    request."""
    choices = completion.get("choices")
    choice = choices[0] if choices else {}
    message = choice.get("message") or {}
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    out = {"content": content or "", "finish_reason": choice.get("finish_reason")}
    if message.get("reasoning_content"):
        out["reasoning"] = message["reasoning_content"]
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    if message.get("annotations"):
        out["annotations"] = message["annotations"]
    return out

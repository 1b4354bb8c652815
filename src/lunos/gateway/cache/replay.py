"""A cached chat completion as stream chunks, and a stream's chunks folded into a completion.

A stream hit is the cached completion replayed as the engine's chunks, so each door
(chat's `sse.relay`, the Messages and Responses stream translators) frames it in its own
wire format exactly as it frames a live stream. A stream that is a miss is folded as it
passes, and stored once it ended well.
"""

from __future__ import annotations


def to_chunks(completion: dict, stamp: dict) -> list[dict]:
    """Chunks that a door turns back into `completion`: per choice its text (and
    reasoning, annotations), one chunk per tool call, the finish; then the usage."""
    chunks: list[dict] = []

    def add(index: int, delta: dict, finish: str | None = None) -> None:
        chunks.append({**stamp, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})

    for choice in completion.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        delta = {"role": "assistant"}
        if message.get("reasoning_content"):
            add(index, {**delta, "reasoning_content": message["reasoning_content"]})
            delta = {}
        delta["content"] = message.get("content") or ""
        if message.get("annotations"):
            delta["annotations"] = message["annotations"]
        if message.get("refusal"):
            delta["refusal"] = message["refusal"]
        add(index, delta)
        for i, call in enumerate(message.get("tool_calls") or ()):
            add(index, {"tool_calls": [{"index": i, "id": call.get("id"), "type": call.get("type", "function"),
                                        "function": call.get("function") or {}}]})
        add(index, {}, choice.get("finish_reason") or "stop")
    if completion.get("usage"):
        chunks.append({**stamp, "choices": [], "usage": completion["usage"]})
    return chunks


class Fold:
    """Chunks in, the completion they add up to out (what a non-streamed request returns)."""

    def __init__(self) -> None:
        self.choices: dict[int, dict] = {}
        self.usage: dict | None = None
        self.head: dict = {}

    def feed(self, batch: list) -> None:
        for chunk in batch:
            if not isinstance(chunk, dict):
                continue
            if not self.head:
                self.head = {k: chunk.get(k) for k in ("id", "created", "model", "provider")}
            if chunk.get("usage"):
                self.usage = dict(chunk["usage"])
            for choice in chunk.get("choices") or ():
                self._fold(choice)

    def _fold(self, choice: dict) -> None:
        index = choice.get("index", 0)
        state = self.choices.setdefault(index, {"content": [], "reasoning": [], "calls": {},
                                                "annotations": [], "finish": None})
        delta = choice.get("delta") or {}
        if delta.get("content"):
            state["content"].append(delta["content"])
        if delta.get("reasoning_content"):
            state["reasoning"].append(delta["reasoning_content"])
        if delta.get("annotations"):
            state["annotations"] += delta["annotations"]
        for call in delta.get("tool_calls") or ():
            slot = state["calls"].setdefault(call.get("index", 0), {"id": None, "type": "function",
                                                                     "name": "", "arguments": []})
            slot["id"] = call.get("id") or slot["id"]
            function = call.get("function") or {}
            slot["name"] += function.get("name") or ""
            if function.get("arguments"):
                slot["arguments"].append(function["arguments"])
        if choice.get("finish_reason"):
            state["finish"] = choice["finish_reason"]

    def completion(self) -> dict:
        choices = []
        for index in sorted(self.choices):
            state = self.choices[index]
            message: dict = {"role": "assistant", "content": "".join(state["content"]) or None}
            if state["reasoning"]:
                message["reasoning_content"] = "".join(state["reasoning"])
            if state["annotations"]:
                message["annotations"] = state["annotations"]
            if state["calls"]:
                message["tool_calls"] = [
                    {"id": slot["id"], "type": slot["type"],
                     "function": {"name": slot["name"], "arguments": "".join(slot["arguments"]) or "{}"}}
                    for _, slot in sorted(state["calls"].items())]
            choices.append({"index": index, "message": message, "finish_reason": state["finish"]})
        out = {**self.head, "object": "chat.completion", "choices": choices}
        if self.usage is not None:
            out["usage"] = self.usage
        return out

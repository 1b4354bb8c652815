"""The Messages front door, outward: the engine's chat completion (or chunks) -> an
Anthropic `message` (or its stream events), for providers other than Anthropic.

- Content, in order: thinking, text, tool_use. Anthropic-format `reasoning_details` become
  `thinking` (signed) and `redacted_thinking` blocks again; any other reasoning (the text of
  `reasoning_content`, another provider's entries, Gemini tool-call signatures) goes in one
  thinking block whose signature the gateway made (`messages_in.carry_signature`), so a
  client echoing the message gives every provider its reasoning back.
- A tool call's `input` is its parsed arguments; arguments that are not a JSON object
  become `{}` (a Messages client cannot take anything else; in streams the arguments go
  out exactly as the provider sent them).
- `stop_reason`: stop -> end_turn (tool_use when the message calls tools), length ->
  max_tokens, tool_calls -> tool_use, content_filter -> refusal. `stop_sequence` stays null:
  chat finish reasons do not say which sequence matched.
- Usage: Anthropic counts cache reads and writes apart from `input_tokens`, so
  `input_tokens` = prompt - cached - cache writes; the gateway's `cost` is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..providers.common import new_tool_call_id
from ..sse import named_event
from .messages_in import ANTHROPIC_FORMAT, carry_signature

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish: Any, called_tools: bool) -> str:
    reason = STOP_REASONS.get(finish, "end_turn")
    return "tool_use" if reason == "end_turn" and called_tools else reason


def usage_of(usage: Any) -> dict:
    """Chat usage -> Messages usage (plus the gateway's `cost` when it has one)."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or 0
    written = details.get("cache_write_tokens") or 0
    out: dict[str, Any] = {
        "input_tokens": max((usage.get("prompt_tokens") or 0) - cached - written, 0),
        "output_tokens": usage.get("completion_tokens") or 0,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }
    if usage.get("cost") is not None:
        out["cost"] = usage["cost"]
    return out


def _arguments(raw: Any) -> dict:
    try:
        value = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _call_signature(call: dict) -> str | None:
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _is_anthropic(entry: dict) -> bool:
    kind = entry.get("type")
    return entry.get("format") == ANTHROPIC_FORMAT and (
        (kind == "reasoning.text" and bool(entry.get("signature")))
        or (kind == "reasoning.encrypted" and bool(entry.get("data"))))


def _anthropic_block(entry: dict) -> dict:
    if entry["type"] == "reasoning.text":
        return {"type": "thinking", "thinking": entry.get("text") or "", "signature": entry["signature"]}
    return {"type": "redacted_thinking", "data": entry["data"]}


def thinking_blocks(message: dict) -> list[dict]:
    details = [e for e in message.get("reasoning_details") or () if isinstance(e, dict)]
    blocks = [_anthropic_block(e) for e in details if _is_anthropic(e)]
    carried = [e for e in details if not _is_anthropic(e)]
    signatures = {c["id"]: s for c in message.get("tool_calls") or () if (s := _call_signature(c))}
    signed_text = any(b["type"] == "thinking" for b in blocks)
    thought = "" if signed_text else message.get("reasoning_content") or ""
    if thought or carried or signatures:
        blocks.append({"type": "thinking", "thinking": thought,
                       "signature": carry_signature(carried, signatures)})
    return blocks


def to_message(completion: dict, model: str, message_id: str) -> dict:
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content = thinking_blocks(message)
    text = message.get("content")
    if isinstance(text, list):  # content parts
        text = "".join(p.get("text") or "" for p in text if isinstance(p, dict))
    text = text or message.get("refusal")
    if text:
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls") or ()
    for call in calls:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or new_tool_call_id(),
                        "name": function.get("name") or "", "input": _arguments(function.get("arguments"))})
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), bool(calls)),
        "stop_sequence": None,
        "usage": usage_of(completion.get("usage")),
    }


def sse_event(name: str, data: dict) -> bytes:
    return named_event(name, orjson.dumps(data))


# ---------------------------------------------------------------- streams


@dataclass(slots=True)
class _Call:
    """One chat tool call (by its `index`) on its way to a tool_use block."""

    id: str
    name: str
    pieces: list[str] = field(default_factory=list)  # arguments not streamed yet
    sent: list[str] = field(default_factory=list)  # arguments streamed
    state: str = "waiting"  # waiting -> open -> closed

    def complete(self) -> bool:
        """Whether the streamed arguments already form a JSON object: then no more can come
        (a prefix of a JSON text is never a whole object) and the next call may start."""
        try:
            return isinstance(orjson.loads("".join(self.sent)), dict)
        except orjson.JSONDecodeError:
            return False


Events = list[tuple[str, dict]]


class MessagesStream:
    """Chat chunks -> Messages stream events: `message_start`, `ping`, per block
    `content_block_start` / `_delta` / `_stop`, `message_delta`, `message_stop`.

    A block closes when a block of another kind (or another tool call) starts. Tool calls
    stream their arguments piece by piece as the provider sent them. Anthropic never
    interleaves blocks, so when a provider interleaves tool calls, a call that starts while
    another is still open waits (buffered) until the open call's arguments form a whole JSON
    object, or until the end. The `message_delta` waits for the usage chunk, which follows
    the finish chunk, or for `finish()`.
    """

    def __init__(self, model: str, message_id: str) -> None:
        self._model = model
        self._id = message_id
        self._started = False
        self._done = False
        self._blocks = 0  # blocks started so far: the next block's index
        self._open: str | None = None  # the open block's kind: text, thinking, tool_use
        self._signed = False  # the open thinking block has its signature
        self._calls: dict[int, _Call] = {}
        self._tool: _Call | None = None  # the open tool_use block's call
        self._queue: list[_Call] = []  # calls waiting for the open one to finish
        self._carried: list[dict] = []  # reasoning entries of other providers
        self._call_signatures: dict[str, str] = {}
        self._stop: str | None = None
        self._usage: dict | None = None

    def feed(self, chunk: dict) -> Events:
        out = self._start()
        if self._done:
            return out
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or (choice.get("index") or 0) != 0 or self._stop:
                continue
            delta = choice.get("delta") or {}
            self._delta(delta, out)
            if choice.get("finish_reason"):
                self._stop = stop_reason(choice["finish_reason"], bool(self._calls))
                self._close_all(out)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        if self._stop and self._usage is not None:
            self._end(out)
        return out

    def finish(self) -> Events:
        out = self._start()
        if not self._done:
            if not self._stop:
                self._stop = stop_reason("stop", bool(self._calls))
                self._close_all(out)
            self._end(out)
        return out

    # ------------------------------------------------------------ deltas

    def _delta(self, delta: dict, out: Events) -> None:
        if delta.get("reasoning_content"):
            self._thinking(delta["reasoning_content"], out)
        for entry in delta.get("reasoning_details") or ():
            if isinstance(entry, dict):
                self._detail(entry, out)
        for key in ("content", "refusal"):
            if isinstance(delta.get(key), str) and delta[key]:
                self._text(delta[key], out)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._tool_piece(call, out)

    def _thinking(self, text: str, out: Events) -> None:
        if self._open != "thinking" or self._signed:
            self._begin({"type": "thinking", "thinking": "", "signature": ""}, out)
        out.append(_delta(self._blocks - 1, {"type": "thinking_delta", "thinking": text}))

    def _detail(self, entry: dict, out: Events) -> None:
        if not _is_anthropic(entry):
            self._carried.append(entry)
            return
        if entry["type"] == "reasoning.encrypted":
            self._begin({"type": "redacted_thinking", "data": entry["data"]}, out)
        else:
            if self._open != "thinking" or self._signed:  # its text was not streamed
                self._begin({"type": "thinking", "thinking": "", "signature": ""}, out)
                if entry.get("text"):
                    out.append(_delta(self._blocks - 1, {"type": "thinking_delta", "thinking": entry["text"]}))
            out.append(_delta(self._blocks - 1, {"type": "signature_delta", "signature": entry["signature"]}))
            self._signed = True
        self._close(out)

    def _text(self, text: str, out: Events) -> None:
        if self._open != "text":
            self._begin({"type": "text", "text": ""}, out)
        out.append(_delta(self._blocks - 1, {"type": "text_delta", "text": text}))

    def _tool_piece(self, piece: dict, out: Events) -> None:
        index = piece.get("index") or 0
        function = piece.get("function") or {}
        call, call_id = self._calls.get(index), piece.get("id") or None
        if call is None or call_id not in (None, call.id):
            # A new id at a known index is a new call (some APIs send whole calls, unindexed).
            call = self._calls[index] = _Call(call_id or new_tool_call_id(), function.get("name") or "")
            signature = _call_signature(piece)
            if signature:
                self._call_signatures[call.id] = signature
            self._queue.append(call)
        arguments = function.get("arguments")
        if call.state == "closed" or not isinstance(arguments, str):
            arguments = ""  # a closed call's arguments were already a whole object
        if arguments:
            call.pieces.append(arguments)
        if call is self._tool:
            self._send_arguments(call, out)
        else:
            self._next_tool(out)

    # ------------------------------------------------------------ blocks

    def _next_tool(self, out: Events, force: bool = False) -> None:
        """Start the waiting calls, in order, while the open call is finished (or `force`)."""
        while self._queue and (force or self._tool is None or self._tool.complete()):
            call = self._queue.pop(0)
            self._begin({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}, out)
            self._tool, call.state = call, "open"
            self._send_arguments(call, out)

    def _send_arguments(self, call: _Call, out: Events) -> None:
        for piece in call.pieces:
            out.append(_delta(self._blocks - 1, {"type": "input_json_delta", "partial_json": piece}))
        call.sent.extend(call.pieces)
        call.pieces.clear()

    def _begin(self, block: dict, out: Events) -> None:
        self._close(out)
        out.append(("content_block_start", {"type": "content_block_start", "index": self._blocks,
                                            "content_block": block}))
        self._open = "tool_use" if block["type"] == "tool_use" else block["type"]
        self._signed = False
        self._blocks += 1

    def _close(self, out: Events) -> None:
        if self._open is None:
            return
        if self._open == "thinking" and not self._signed:  # reasoning text without a signature
            out.append(_delta(self._blocks - 1, {"type": "signature_delta", "signature": carry_signature([], {})}))
        if self._tool is not None:
            self._tool.state = "closed"
            self._tool = None
        out.append(("content_block_stop", {"type": "content_block_stop", "index": self._blocks - 1}))
        self._open = None

    def _close_all(self, out: Events) -> None:
        self._next_tool(out, force=True)
        self._close(out)
        if self._carried or self._call_signatures:
            self._begin({"type": "thinking", "thinking": "", "signature": ""}, out)
            signature = carry_signature(self._carried, self._call_signatures)
            out.append(_delta(self._blocks - 1, {"type": "signature_delta", "signature": signature}))
            self._signed = True
            self._close(out)

    # ------------------------------------------------------------ message

    def _start(self) -> Events:
        if self._started:
            return []
        self._started = True
        message = {"id": self._id, "type": "message", "role": "assistant", "model": self._model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0}}
        return [("message_start", {"type": "message_start", "message": message}),
                ("ping", {"type": "ping"})]

    def _end(self, out: Events) -> None:
        self._done = True
        usage = usage_of(self._usage) if self._usage is not None else {"output_tokens": 0}
        out.append(("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": self._stop, "stop_sequence": None},
                                      "usage": usage}))
        out.append(("message_stop", {"type": "message_stop"}))


def _delta(index: int, delta: dict) -> tuple[str, dict]:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

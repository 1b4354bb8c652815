"""Fold stream chunks into the completion they add up to.

    snapshot = None
    for chunk in stream:
        snapshot = accumulate(snapshot, chunk)

`accumulate` is pure: it never changes its arguments and returns a new snapshot. Text
fields (content, refusal, reasoning_content) and tool-call arguments are concatenated;
tool calls are matched by their `index`, whose id and name come from their first delta;
annotations and reasoning_details are appended; finish_reason, usage, model, provider and
id take the latest value sent.
"""

from __future__ import annotations

import copy
from typing import Any

from .types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    Function,
    ToolCall,
)

__all__ = ["accumulate"]

_TEXT_FIELDS = ("content", "refusal", "reasoning_content")


def accumulate(snapshot: ChatCompletion | None, chunk: ChatCompletionChunk) -> ChatCompletion:
    snap = ChatCompletion() if snapshot is None else snapshot.model_copy(deep=True)
    for name in ("id", "model", "provider", "system_fingerprint"):
        value = getattr(chunk, name)
        if value:
            setattr(snap, name, value)
    if chunk.created and not snap.created:
        snap.created = chunk.created
    if chunk.usage is not None:
        snap.usage = chunk.usage.model_copy(deep=True)
    for key, value in (chunk.model_extra or {}).items():
        if key != "object":
            setattr(snap, key, copy.deepcopy(value))

    for delta_choice in chunk.choices:
        choice = _choice(snap, delta_choice.index)
        _merge_delta(choice.message, delta_choice.delta)
        if delta_choice.finish_reason is not None:
            choice.finish_reason = delta_choice.finish_reason
        if delta_choice.logprobs is not None:
            choice.logprobs = _merge_logprobs(choice.logprobs, delta_choice.logprobs)
    return snap


def _choice(snap: ChatCompletion, index: int) -> Choice:
    for choice in snap.choices:
        if choice.index == index:
            return choice
    choice = Choice(index=index, message=ChatCompletionMessage(role="assistant"))
    snap.choices = sorted([*snap.choices, choice], key=lambda c: c.index)
    return choice


def _merge_delta(message: ChatCompletionMessage, delta: ChoiceDelta) -> None:
    if delta.role:
        message.role = delta.role
    for name in _TEXT_FIELDS:
        piece = getattr(delta, name)
        if piece is not None:
            setattr(message, name, (getattr(message, name) or "") + piece)
    if delta.annotations:
        message.annotations = [
            *(message.annotations or []),
            *(a.model_copy(deep=True) for a in delta.annotations),
        ]
    if delta.reasoning_details:
        message.reasoning_details = [
            *(message.reasoning_details or []),
            *copy.deepcopy(delta.reasoning_details),
        ]
    for call_delta in delta.tool_calls or ():
        _merge_tool_call(message, call_delta)
    for key, value in (delta.model_extra or {}).items():
        setattr(message, key, _merge_value(getattr(message, key, None), value))


def _merge_tool_call(message: ChatCompletionMessage, delta: ChoiceDeltaToolCall) -> None:
    calls = message.tool_calls if message.tool_calls is not None else []
    call = next((c for c in calls if c._index == delta.index), None)
    if call is None:
        call = ToolCall(id="", type="function", function=Function(name="", arguments=""))
        call._index = delta.index
        calls = sorted([*calls, call], key=lambda c: c._index if c._index is not None else -1)
    message.tool_calls = calls
    if delta.id and not call.id:
        call.id = delta.id
    if delta.type:
        call.type = delta.type
    if delta.function is not None:
        if delta.function.name and not call.function.name:
            call.function.name = delta.function.name
        if delta.function.arguments:
            call.function.arguments += delta.function.arguments
        for key, value in (delta.function.model_extra or {}).items():
            setattr(call.function, key, copy.deepcopy(value))
    for key, value in (delta.model_extra or {}).items():  # e.g. Gemini's extra_content
        setattr(call, key, copy.deepcopy(value))


def _merge_value(current: Any, piece: Any) -> Any:
    """Unknown delta fields: strings concatenate, lists append, anything else replaces."""
    if isinstance(piece, str) and isinstance(current, str):
        return current + piece
    if isinstance(piece, list) and isinstance(current, list):
        return [*current, *copy.deepcopy(piece)]
    return copy.deepcopy(piece)


def _merge_logprobs(current: Any, piece: Any) -> Any:
    if isinstance(current, dict) and isinstance(piece, dict):
        merged = dict(current)
        for key, value in piece.items():
            merged[key] = _merge_value(merged.get(key), value)
        return merged
    return copy.deepcopy(piece)

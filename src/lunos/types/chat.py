"""Chat completion results: the completion, its stream chunks, and `parse()` results.

Field names follow OpenAI's Chat Completions API plus what Lunos adds (`provider`,
`usage.cost`, `reasoning_content`, `reasoning_details`, URL-citation `annotations`).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import Field, PrivateAttr

from ._base import BaseModel
from .usage import CompletionUsage

__all__ = [
    "Annotation",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaToolCall",
    "ChoiceDeltaToolCallFunction",
    "ChunkChoice",
    "Function",
    "ParsedChatCompletion",
    "ParsedChatCompletionMessage",
    "ParsedChoice",
    "ToolCall",
    "URLCitation",
]

ContentT = TypeVar("ContentT")


class Function(BaseModel):
    name: str = ""
    arguments: str = ""  # a JSON string, as the model wrote it


class ToolCall(BaseModel):
    id: str = ""
    type: str = "function"
    function: Function = Field(default_factory=Function)
    _index: int | None = PrivateAttr(default=None)  # the stream index it was built from


class URLCitation(BaseModel):
    url: str = ""
    title: str | None = None
    content: str | None = None
    start_index: int | None = None
    end_index: int | None = None


class Annotation(BaseModel):
    type: str = "url_citation"
    url_citation: URLCitation | None = None


class ChatCompletionMessage(BaseModel):
    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    annotations: list[Annotation] | None = None
    reasoning_content: str | None = None
    # Opaque reasoning state (thinking signatures...): send it back unchanged on the next turn.
    reasoning_details: list[dict[str, Any]] | None = None


class Choice(BaseModel):
    index: int = 0
    message: ChatCompletionMessage = Field(default_factory=ChatCompletionMessage)
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletion(BaseModel):
    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    provider: str | None = None
    choices: list[Choice] = []
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class ChoiceDeltaToolCallFunction(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCall(BaseModel):
    index: int = 0
    id: str | None = None
    type: str | None = None
    function: ChoiceDeltaToolCallFunction | None = None


class ChoiceDelta(BaseModel):
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None
    annotations: list[Annotation] | None = None
    reasoning_content: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChoiceDelta = Field(default_factory=ChoiceDelta)
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletionChunk(BaseModel):
    """One stream event. The last one may carry only `usage` (with `choices` empty)."""

    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    provider: str | None = None
    choices: list[ChunkChoice] = []
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class ParsedChatCompletionMessage(ChatCompletionMessage, Generic[ContentT]):
    parsed: ContentT | None = None  # None when the model called a tool instead of answering


class ParsedChoice(Choice, Generic[ContentT]):
    message: ParsedChatCompletionMessage[ContentT] = Field(
        default_factory=ParsedChatCompletionMessage
    )


class ParsedChatCompletion(ChatCompletion, Generic[ContentT]):
    choices: list[ParsedChoice[ContentT]] = []

"""Responses API results (SPEC §9.2): the response, its items, stream events, stored lists.

Field names follow OpenAI's Responses API plus what Lunos adds (`usage.cost`). Items and
content parts are typed by their `type`; a type this SDK does not know yet (a hosted tool's
call, say) is kept as a `ResponseOtherItem` / `ResponseOtherContent` with every field, so a
newer server never breaks an older SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Generic, TypeVar

from pydantic import Discriminator, Tag

from ._base import BaseModel

__all__ = [
    "ParsedResponse",
    "Response",
    "ResponseAnnotation",
    "ResponseContent",
    "ResponseDeleted",
    "ResponseError",
    "ResponseFunctionCall",
    "ResponseFunctionCallOutput",
    "ResponseIncompleteDetails",
    "ResponseInputText",
    "ResponseItem",
    "ResponseItemList",
    "ResponseMessage",
    "ResponseOtherContent",
    "ResponseOtherItem",
    "ResponseOutputText",
    "ResponseReasoning",
    "ResponseReasoningSummary",
    "ResponseRefusal",
    "ResponseStreamEvent",
    "ResponseUsage",
]

ContentT = TypeVar("ContentT")


def _by_type(known: frozenset[str]):
    """A discriminator that sends an unknown `type` to the "other" model."""

    def tag(value: Any) -> str:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return kind if kind in known else "other"

    return Discriminator(tag)


# --- content parts ------------------------------------------------------------------------


class ResponseAnnotation(BaseModel):
    """`url_citation` (web search) carries url, title and the cited span; other kinds keep
    their own fields."""

    type: str = "url_citation"
    url: str | None = None
    title: str | None = None
    start_index: int | None = None
    end_index: int | None = None


class ResponseOutputText(BaseModel):
    type: str = "output_text"
    text: str = ""
    annotations: list[ResponseAnnotation] = []
    logprobs: list[Any] | None = None


class ResponseRefusal(BaseModel):
    type: str = "refusal"
    refusal: str = ""


class ResponseInputText(BaseModel):
    type: str = "input_text"
    text: str = ""


class ResponseOtherContent(BaseModel):
    """A content part of another type (`input_image`, `input_file`, ...), fields as sent."""

    type: str = ""


ResponseContent = Annotated[
    Annotated[ResponseOutputText, Tag("output_text")]
    | Annotated[ResponseRefusal, Tag("refusal")]
    | Annotated[ResponseInputText, Tag("input_text")]
    | Annotated[ResponseOtherContent, Tag("other")],
    _by_type(frozenset({"output_text", "refusal", "input_text"})),
]


# --- items --------------------------------------------------------------------------------


class ResponseMessage(BaseModel):
    """A message: the model's answer in `output`, or an input message in `input_items`."""

    type: str = "message"
    id: str | None = None
    role: str = "assistant"
    status: str | None = None
    content: list[ResponseContent] = []


class ResponseFunctionCall(BaseModel):
    """A call of one of the request's function tools; answer it with a
    `function_call_output` item carrying the same `call_id`."""

    type: str = "function_call"
    id: str | None = None
    call_id: str = ""
    name: str = ""
    arguments: str = ""  # a JSON string, as the model wrote it
    status: str | None = None


class ResponseFunctionCallOutput(BaseModel):
    type: str = "function_call_output"
    id: str | None = None
    call_id: str = ""
    output: Any = None
    status: str | None = None


class ResponseReasoningSummary(BaseModel):
    type: str = "summary_text"
    text: str = ""


class ResponseReasoning(BaseModel):
    """The model's reasoning. `encrypted_content` is opaque state for the next turn
    (`previous_response_id` sends it back by itself)."""

    type: str = "reasoning"
    id: str | None = None
    summary: list[ResponseReasoningSummary] = []
    content: list[Any] | None = None
    encrypted_content: str | None = None
    status: str | None = None


class ResponseOtherItem(BaseModel):
    """An item of another type (`web_search_call`, ...), fields as sent."""

    type: str = ""
    id: str | None = None


_ITEM_TYPES = frozenset({"message", "function_call", "function_call_output", "reasoning"})

ResponseItem = Annotated[
    Annotated[ResponseMessage, Tag("message")]
    | Annotated[ResponseFunctionCall, Tag("function_call")]
    | Annotated[ResponseFunctionCallOutput, Tag("function_call_output")]
    | Annotated[ResponseReasoning, Tag("reasoning")]
    | Annotated[ResponseOtherItem, Tag("other")],
    _by_type(_ITEM_TYPES),
]


# --- the response -------------------------------------------------------------------------


class InputTokensDetails(BaseModel):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int | None = None


class ResponseUsage(BaseModel):
    """`input_tokens` includes cached tokens, `output_tokens` reasoning tokens; `cost` is in
    USD, None when the model's price is unknown."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: InputTokensDetails | None = None
    output_tokens_details: OutputTokensDetails | None = None
    cost: float | None = None


class ResponseIncompleteDetails(BaseModel):
    reason: str | None = None  # max_output_tokens, content_filter


class ResponseError(BaseModel):
    code: str | None = None
    message: str = ""


class Response(BaseModel):
    id: str = ""
    object: str = "response"
    created_at: float = 0
    status: str | None = None  # completed, incomplete, failed, in_progress
    model: str = ""
    output: list[ResponseItem] = []
    usage: ResponseUsage | None = None
    incomplete_details: ResponseIncompleteDetails | None = None
    error: ResponseError | None = None
    instructions: Any = None
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    tools: list[dict[str, Any]] = []
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    store: bool | None = None
    user: str | None = None

    @property
    def output_text(self) -> str:
        """The text of every `output_text` part of the output messages, joined."""
        return "".join(
            part.text
            for item in self.output
            if isinstance(item, ResponseMessage)
            for part in item.content
            if isinstance(part, ResponseOutputText)
        )


class ParsedResponse(Response, Generic[ContentT]):
    """What `responses.parse()` returns: `output_parsed` is the validated instance (None
    when the model called a tool instead of answering)."""

    output_parsed: ContentT | None = None


class ResponseDeleted(BaseModel):
    id: str = ""
    object: str = "response.deleted"
    deleted: bool = False


class ResponseItemList(BaseModel):
    """One page of a stored response's input items; pass `last_id` as `after` for the next."""

    object: str = "list"
    data: list[ResponseItem] = []
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Any:
        return self.data[index]

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        """The items, not pydantic's (field, value) pairs: `for item in page`."""
        return iter(self.data)


# --- stream events ------------------------------------------------------------------------


class ResponseStreamEvent(BaseModel):
    """One stream event; `type` says which fields it carries:

    - `response.created` / `.in_progress` / `.completed` / `.incomplete` / `.failed`:
      `response` (complete on the last three);
    - `response.output_item.added` / `.done`: `output_index`, `item`;
    - `response.content_part.added` / `.done`: `item_id`, `output_index`, `content_index`,
      `part`;
    - `response.output_text.delta` / `.done`: `item_id`, `output_index`, `content_index`,
      `delta` / `text`;
    - `response.function_call_arguments.delta` / `.done`: `item_id`, `output_index`,
      `delta` / `arguments`;
    - `error`: `code`, `message`, `param`.
    """

    type: str = ""
    sequence_number: int | None = None
    response: Response | None = None
    output_index: int | None = None
    item_id: str | None = None
    content_index: int | None = None
    summary_index: int | None = None
    item: ResponseItem | None = None
    part: ResponseContent | None = None
    delta: str | None = None
    text: str | None = None
    arguments: str | None = None
    name: str | None = None
    annotation_index: int | None = None
    annotation: ResponseAnnotation | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None

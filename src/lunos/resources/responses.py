"""`client.responses`: OpenAI's Responses API on the gateway (SPEC §9.2).

`create` (JSON, or with `stream=True` a `ResponseStream` of typed events), `stream` (a
context manager with `get_final_response()`), `parse` (structured outputs into a pydantic
model), `retrieve` and `delete` for stored responses, and `input_items.list`.

Every parameter of the official `openai` SDK's `responses.create` is an explicit keyword (a
test holds this), plus Lunos's own (`observability`, `models`, `fallback_model`,
`drop_params`, `cache`); a parameter left at None is not sent. `extra_body`, `extra_headers`
and `extra_query` add or override, and `with_raw_response` returns `RawResponse`s, as in
`client.chat.completions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from .._base_client import validate
from .._exceptions import StructuredOutputError
from .._response import RawResponse
from .._response_stream import (
    AsyncResponseStream,
    AsyncResponseStreamManager,
    ResponseStream,
    ResponseStreamManager,
)
from ..types.responses import (
    ParsedResponse,
    Response,
    ResponseDeleted,
    ResponseFunctionCall,
    ResponseItemList,
    ResponseMessage,
    ResponseOutputText,
    ResponseRefusal,
)
from .chat import ServiceTier, _result, response_format_for

if TYPE_CHECKING:
    from .._base_client import AsyncAPIClient, SyncAPIClient

__all__ = [
    "RESPONSES_PARAMS",
    "AsyncInputItems",
    "AsyncResponses",
    "InputItems",
    "Responses",
    "parse_response",
]

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

# The body fields `create` sends: OpenAI's Responses parameters, then Lunos's own.
RESPONSES_PARAMS = (
    "model", "input", "access_programs", "background", "background_options",
    "context_management", "conversation", "image", "include", "instructions",
    "max_output_tokens", "max_tool_calls", "metadata", "moderation", "parallel_tool_calls",
    "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_options",
    "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store",
    "stream", "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs",
    "top_p", "truncation", "user",
    "observability", "models", "fallback_model", "drop_params", "cache",
)
REQUEST_OPTIONS = ("extra_headers", "extra_query", "extra_body", "timeout")

Item = Mapping[str, Any] | pydantic.BaseModel


def _body(values: Mapping[str, Any], extra_body: Mapping[str, Any] | None) -> dict[str, Any]:
    body = {name: values[name] for name in RESPONSES_PARAMS if values.get(name) is not None}
    if not isinstance(body.get("input", ""), str):
        body["input"] = list(body["input"])  # items, maybe a generator
    for name in ("tools", "include", "context_management"):
        if name in body:
            body[name] = list(body[name])
    body.update(extra_body or {})
    return body


def _create_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """`parse`'s or `stream`'s arguments as `create`'s: `text.format` is the strict JSON
    schema of `text_format` (when given) and `verbosity` goes into `text`."""
    params = {name: values[name] for name in (*RESPONSES_PARAMS, *REQUEST_OPTIONS) if name in values}
    text = dict(values["text"] or {})
    if values.get("text_format") is not None:
        if "format" in text:
            raise TypeError("give the answer's format as text_format or as text.format, not both")
        text["format"] = text_format_for(values["text_format"])
    if values.get("verbosity") is not None:
        text["verbosity"] = values["verbosity"]
    params["text"] = text or None
    return params


def text_format_for(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The Responses `text.format` for a pydantic model: chat's strict json_schema, flat."""
    if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
        raise TypeError(
            "text_format takes a pydantic model class; use create(text=...) for a format dict"
        )
    return {"type": "json_schema", **response_format_for(model)["json_schema"]}


def _path(response_id: str, *rest: str) -> str:
    if not isinstance(response_id, str) or not response_id:
        raise ValueError("response_id must be a non-empty string")
    return "/".join(("responses", quote(response_id, safe=""), *rest))


def _query(extra: Mapping[str, Any] | None, **params: Any) -> dict[str, Any]:
    return {**{k: v for k, v in params.items() if v is not None}, **(extra or {})}


class Responses:
    def __init__(self, client: SyncAPIClient, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    @cached_property
    def with_raw_response(self) -> Responses:
        """These methods, returning a `RawResponse` to read headers from, then `parse()`."""
        return Responses(self._client, raw=True)

    @cached_property
    def input_items(self) -> InputItems:
        return InputItems(self._client, raw=self._raw)

    def create(
        self,
        *,
        model: str,
        input: str | Iterable[Item],
        access_programs: Mapping[str, Any] | None = None,
        background: bool | None = None,
        background_options: Mapping[str, Any] | None = None,
        context_management: Iterable[Mapping[str, Any]] | None = None,
        conversation: str | Mapping[str, Any] | None = None,
        image: Mapping[str, Any] | None = None,
        include: Iterable[str] | None = None,
        instructions: str | None = None,
        max_output_tokens: int | None = None,
        max_tool_calls: int | None = None,
        metadata: Mapping[str, str] | None = None,
        moderation: Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        previous_response_id: str | None = None,
        prompt: Mapping[str, Any] | None = None,
        prompt_cache_key: str | None = None,
        prompt_cache_options: Mapping[str, Any] | None = None,
        prompt_cache_retention: Literal["in_memory", "24h"] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        safety_identifier: str | None = None,
        service_tier: ServiceTier | None = None,
        store: bool | None = None,
        stream: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        text: Mapping[str, Any] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        truncation: Literal["auto", "disabled"] | None = None,
        user: str | None = None,
        # Lunos's own (SPEC §4, §9)
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        drop_params: bool | None = None,
        cache: bool | Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Response | ResponseStream[Response] | RawResponse[Any]:
        """A response; with `stream=True` a `ResponseStream` of `ResponseStreamEvent`s."""
        body = _body(locals(), extra_body)
        streaming = bool(body.get("stream"))
        response = self._client.request(
            "POST", "responses", body=body, params=extra_query,
            headers=extra_headers, timeout=timeout, stream=streaming,
        )
        if streaming:
            return _result(self._raw, response, lambda: ResponseStream(response))
        return _result(self._raw, response, lambda: validate(Response, response))

    def stream(
        self,
        *,
        model: str,
        input: str | Iterable[Item],
        text_format: type[ModelT] | None = None,
        access_programs: Mapping[str, Any] | None = None,
        background: bool | None = None,
        background_options: Mapping[str, Any] | None = None,
        context_management: Iterable[Mapping[str, Any]] | None = None,
        conversation: str | Mapping[str, Any] | None = None,
        image: Mapping[str, Any] | None = None,
        include: Iterable[str] | None = None,
        instructions: str | None = None,
        max_output_tokens: int | None = None,
        max_tool_calls: int | None = None,
        metadata: Mapping[str, str] | None = None,
        moderation: Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        previous_response_id: str | None = None,
        prompt: Mapping[str, Any] | None = None,
        prompt_cache_key: str | None = None,
        prompt_cache_options: Mapping[str, Any] | None = None,
        prompt_cache_retention: Literal["in_memory", "24h"] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        safety_identifier: str | None = None,
        service_tier: ServiceTier | None = None,
        store: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        text: Mapping[str, Any] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        truncation: Literal["auto", "disabled"] | None = None,
        user: str | None = None,
        # Lunos's own (SPEC §4, §9)
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        drop_params: bool | None = None,
        cache: bool | Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ResponseStreamManager[Any]:
        """`with client.responses.stream(...) as stream:` iterate the events, or
        `stream.text_deltas()`, then `stream.get_final_response()` (a `ParsedResponse` with
        `text_format`). The request is sent on entering the block."""
        params = _create_params(locals())
        params["stream"] = True
        finish = _finisher(text_format)

        def open_stream() -> ResponseStream[Any]:
            body = _body(params, params["extra_body"])
            response = self._client.request(
                "POST", "responses", body=body, params=extra_query,
                headers=extra_headers, timeout=timeout, stream=True,
            )
            return ResponseStream(response, finish)

        return ResponseStreamManager(open_stream)

    def parse(
        self,
        *,
        model: str,
        input: str | Iterable[Item],
        text_format: type[ModelT],
        access_programs: Mapping[str, Any] | None = None,
        background: bool | None = None,
        background_options: Mapping[str, Any] | None = None,
        context_management: Iterable[Mapping[str, Any]] | None = None,
        conversation: str | Mapping[str, Any] | None = None,
        image: Mapping[str, Any] | None = None,
        include: Iterable[str] | None = None,
        instructions: str | None = None,
        max_output_tokens: int | None = None,
        max_tool_calls: int | None = None,
        metadata: Mapping[str, str] | None = None,
        moderation: Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        previous_response_id: str | None = None,
        prompt: Mapping[str, Any] | None = None,
        prompt_cache_key: str | None = None,
        prompt_cache_options: Mapping[str, Any] | None = None,
        prompt_cache_retention: Literal["in_memory", "24h"] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        safety_identifier: str | None = None,
        service_tier: ServiceTier | None = None,
        store: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        text: Mapping[str, Any] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        truncation: Literal["auto", "disabled"] | None = None,
        user: str | None = None,
        verbosity: Literal["low", "medium", "high"] | None = None,
        # Lunos's own (SPEC §4, §9)
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        drop_params: bool | None = None,
        cache: bool | Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ParsedResponse[ModelT] | RawResponse[ParsedResponse[ModelT]]:
        """`create` with `text.format` the strict JSON schema of `text_format` (a pydantic
        model); `.output_parsed` is the validated instance. Does not stream."""
        response = self.create(**_create_params(locals()))
        return _parsed(text_format, response)

    def retrieve(
        self,
        response_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Response | RawResponse[Response]:
        """A stored response (the key that made it sees it; another gets NotFoundError)."""
        response = self._client.request(
            "GET", _path(response_id), params=extra_query, headers=extra_headers, timeout=timeout
        )
        return _result(self._raw, response, lambda: validate(Response, response))

    def delete(
        self,
        response_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ResponseDeleted | RawResponse[ResponseDeleted]:
        response = self._client.request(
            "DELETE", _path(response_id), params=extra_query, headers=extra_headers,
            timeout=timeout,
        )
        return _result(self._raw, response, lambda: validate(ResponseDeleted, response))


class AsyncResponses:
    def __init__(self, client: AsyncAPIClient, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    @cached_property
    def with_raw_response(self) -> AsyncResponses:
        """These methods, returning a `RawResponse` to read headers from, then `parse()`."""
        return AsyncResponses(self._client, raw=True)

    @cached_property
    def input_items(self) -> AsyncInputItems:
        return AsyncInputItems(self._client, raw=self._raw)

    async def create(
        self,
        *,
        model: str,
        input: str | Iterable[Item],
        access_programs: Mapping[str, Any] | None = None,
        background: bool | None = None,
        background_options: Mapping[str, Any] | None = None,
        context_management: Iterable[Mapping[str, Any]] | None = None,
        conversation: str | Mapping[str, Any] | None = None,
        image: Mapping[str, Any] | None = None,
        include: Iterable[str] | None = None,
        instructions: str | None = None,
        max_output_tokens: int | None = None,
        max_tool_calls: int | None = None,
        metadata: Mapping[str, str] | None = None,
        moderation: Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        previous_response_id: str | None = None,
        prompt: Mapping[str, Any] | None = None,
        prompt_cache_key: str | None = None,
        prompt_cache_options: Mapping[str, Any] | None = None,
        prompt_cache_retention: Literal["in_memory", "24h"] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        safety_identifier: str | None = None,
        service_tier: ServiceTier | None = None,
        store: bool | None = None,
        stream: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        text: Mapping[str, Any] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        truncation: Literal["auto", "disabled"] | None = None,
        user: str | None = None,
        # Lunos's own (SPEC §4, §9)
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        drop_params: bool | None = None,
        cache: bool | Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Response | AsyncResponseStream[Response] | RawResponse[Any]:
        """A response; with `stream=True` an `AsyncResponseStream` of events."""
        body = _body(locals(), extra_body)
        streaming = bool(body.get("stream"))
        response = await self._client.request(
            "POST", "responses", body=body, params=extra_query,
            headers=extra_headers, timeout=timeout, stream=streaming,
        )
        if streaming:
            return _result(self._raw, response, lambda: AsyncResponseStream(response))
        return _result(self._raw, response, lambda: validate(Response, response))

    def stream(
        self,
        *,
        model: str,
        input: str | Iterable[Item],
        text_format: type[ModelT] | None = None,
        access_programs: Mapping[str, Any] | None = None,
        background: bool | None = None,
        background_options: Mapping[str, Any] | None = None,
        context_management: Iterable[Mapping[str, Any]] | None = None,
        conversation: str | Mapping[str, Any] | None = None,
        image: Mapping[str, Any] | None = None,
        include: Iterable[str] | None = None,
        instructions: str | None = None,
        max_output_tokens: int | None = None,
        max_tool_calls: int | None = None,
        metadata: Mapping[str, str] | None = None,
        moderation: Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        previous_response_id: str | None = None,
        prompt: Mapping[str, Any] | None = None,
        prompt_cache_key: str | None = None,
        prompt_cache_options: Mapping[str, Any] | None = None,
        prompt_cache_retention: Literal["in_memory", "24h"] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        safety_identifier: str | None = None,
        service_tier: ServiceTier | None = None,
        store: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        text: Mapping[str, Any] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        truncation: Literal["auto", "disabled"] | None = None,
        user: str | None = None,
        # Lunos's own (SPEC §4, §9)
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        drop_params: bool | None = None,
        cache: bool | Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> AsyncResponseStreamManager[Any]:
        """`async with client.responses.stream(...) as stream:` (not awaited)."""
        params = _create_params(locals())
        params["stream"] = True
        finish = _finisher(text_format)

        async def open_stream() -> AsyncResponseStream[Any]:
            body = _body(params, params["extra_body"])
            response = await self._client.request(
                "POST", "responses", body=body, params=extra_query,
                headers=extra_headers, timeout=timeout, stream=True,
            )
            return AsyncResponseStream(response, finish)

        return AsyncResponseStreamManager(open_stream)

    async def parse(
        self,
        *,
        model: str,
        input: str | Iterable[Item],
        text_format: type[ModelT],
        access_programs: Mapping[str, Any] | None = None,
        background: bool | None = None,
        background_options: Mapping[str, Any] | None = None,
        context_management: Iterable[Mapping[str, Any]] | None = None,
        conversation: str | Mapping[str, Any] | None = None,
        image: Mapping[str, Any] | None = None,
        include: Iterable[str] | None = None,
        instructions: str | None = None,
        max_output_tokens: int | None = None,
        max_tool_calls: int | None = None,
        metadata: Mapping[str, str] | None = None,
        moderation: Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        previous_response_id: str | None = None,
        prompt: Mapping[str, Any] | None = None,
        prompt_cache_key: str | None = None,
        prompt_cache_options: Mapping[str, Any] | None = None,
        prompt_cache_retention: Literal["in_memory", "24h"] | None = None,
        reasoning: Mapping[str, Any] | None = None,
        safety_identifier: str | None = None,
        service_tier: ServiceTier | None = None,
        store: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        text: Mapping[str, Any] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        truncation: Literal["auto", "disabled"] | None = None,
        user: str | None = None,
        verbosity: Literal["low", "medium", "high"] | None = None,
        # Lunos's own (SPEC §4, §9)
        observability: bool | None = None,
        models: list[str] | None = None,
        fallback_model: str | None = None,
        drop_params: bool | None = None,
        cache: bool | Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ParsedResponse[ModelT] | RawResponse[ParsedResponse[ModelT]]:
        response = await self.create(**_create_params(locals()))
        return _parsed(text_format, response)

    async def retrieve(
        self,
        response_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Response | RawResponse[Response]:
        response = await self._client.request(
            "GET", _path(response_id), params=extra_query, headers=extra_headers, timeout=timeout
        )
        return _result(self._raw, response, lambda: validate(Response, response))

    async def delete(
        self,
        response_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ResponseDeleted | RawResponse[ResponseDeleted]:
        response = await self._client.request(
            "DELETE", _path(response_id), params=extra_query, headers=extra_headers,
            timeout=timeout,
        )
        return _result(self._raw, response, lambda: validate(ResponseDeleted, response))


class InputItems:
    def __init__(self, client: SyncAPIClient, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    def list(
        self,
        response_id: str,
        *,
        after: str | None = None,
        limit: int | None = None,
        order: Literal["asc", "desc"] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ResponseItemList | RawResponse[ResponseItemList]:
        """One page of the items a stored response was given; pass `last_id` as `after`."""
        response = self._client.request(
            "GET", _path(response_id, "input_items"),
            params=_query(extra_query, after=after, limit=limit, order=order),
            headers=extra_headers, timeout=timeout,
        )
        return _result(self._raw, response, lambda: validate(ResponseItemList, response))


class AsyncInputItems:
    def __init__(self, client: AsyncAPIClient, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    async def list(
        self,
        response_id: str,
        *,
        after: str | None = None,
        limit: int | None = None,
        order: Literal["asc", "desc"] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ResponseItemList | RawResponse[ResponseItemList]:
        response = await self._client.request(
            "GET", _path(response_id, "input_items"),
            params=_query(extra_query, after=after, limit=limit, order=order),
            headers=extra_headers, timeout=timeout,
        )
        return _result(self._raw, response, lambda: validate(ResponseItemList, response))


# --- structured outputs -------------------------------------------------------------------


def _finisher(model: type[ModelT] | None) -> Any:
    return None if model is None else (lambda response: parse_response(model, response))


def _parsed(model: type[ModelT], response: Any) -> Any:
    if isinstance(response, RawResponse):
        return response._map(lambda r: parse_response(model, r))
    return parse_response(model, response)


def parse_response(model: type[ModelT], response: Response) -> ParsedResponse[ModelT]:
    """The response with `output_parsed`: its answer text validated as `model`."""
    data = response.model_dump()
    data["output_parsed"] = _parse_output(model, response)
    return ParsedResponse[model].model_validate(data)  # type: ignore[valid-type]


def _parse_output(model: type[ModelT], response: Response) -> ModelT | None:
    parts = [part for item in response.output if isinstance(item, ResponseMessage)
             for part in item.content]
    for part in parts:
        if isinstance(part, ResponseRefusal):
            raise StructuredOutputError(f"The model refused: {part.refusal}", response)
    texts = [part.text for part in parts if isinstance(part, ResponseOutputText)]
    if not texts and any(isinstance(item, ResponseFunctionCall) for item in response.output):
        return None  # it called a tool instead; nothing to parse yet
    if response.status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        if reason == "content_filter":
            raise StructuredOutputError("The answer was stopped by a content filter.", response)
        raise StructuredOutputError(
            "The answer was cut off before the JSON was complete; raise max_output_tokens.",
            response,
        )
    if not texts:
        raise StructuredOutputError("The answer has no text to parse.", response)
    try:
        return model.model_validate_json("".join(texts))
    except pydantic.ValidationError as exc:
        raise StructuredOutputError(
            f"The answer is not a valid {model.__name__}: {exc}", response
        ) from exc

"""`client.chat.completions`: `create` (JSON or stream) and `parse` (structured outputs).

Every parameter of OpenAI's Chat Completions `create` is an explicit keyword (a test holds
this against the official `openai` SDK), plus Lunos's own (`observability`, `models`,
`fallback_model`, `drop_params`, `cache`); a parameter left at None is not sent.
`extra_body` adds or overrides body fields (send an explicit null this way), `extra_headers`
and `extra_query` do the same for headers and the query string.

`client.chat.completions.with_raw_response` has the same methods, returning a `RawResponse`
(status, headers such as `x-lunos-dropped-params`) whose `parse()` gives the usual result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
import pydantic

from .._base_client import validate
from .._exceptions import StructuredOutputError
from .._response import RawResponse
from .._streaming import AsyncStream, Stream
from ..types.chat import ChatCompletion, ChatCompletionChunk, ParsedChatCompletion

if TYPE_CHECKING:
    from .._base_client import AsyncAPIClient, SyncAPIClient

__all__ = [
    "CHAT_PARAMS",
    "AsyncChat",
    "AsyncCompletions",
    "Chat",
    "Completions",
    "to_strict_json_schema",
]

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)

# The body fields `create` sends: OpenAI's Chat Completions parameters, then Lunos's own.
CHAT_PARAMS = (
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions",
    "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
    "moderation", "n", "parallel_tool_calls", "prediction", "presence_penalty",
    "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention", "reasoning_effort",
    "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
    "verbosity", "web_search_options",
    "observability", "models", "fallback_model", "drop_params", "cache",
)
REQUEST_OPTIONS = ("extra_headers", "extra_query", "extra_body", "timeout")

Message = Mapping[str, Any] | pydantic.BaseModel
# Every value the gateway accepts; a provider without an equivalent refuses it with a 400.
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
ServiceTier = Literal["auto", "default", "flex", "scale", "priority", "fast"]


def _body(values: Mapping[str, Any], extra_body: Mapping[str, Any] | None) -> dict[str, Any]:
    body = {name: values[name] for name in CHAT_PARAMS if values[name] is not None}
    for name in ("messages", "tools", "functions"):  # iterables, maybe generators
        if name in body:
            body[name] = list(body[name])
    body.update(extra_body or {})
    return body


def _parse_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """`parse`'s arguments as `create`'s, with the pydantic model made a JSON schema."""
    params = {name: values[name] for name in (*CHAT_PARAMS, *REQUEST_OPTIONS) if name in values}
    params["response_format"] = response_format_for(values["response_format"])
    return params


class Completions:
    def __init__(self, client: SyncAPIClient, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    @cached_property
    def with_raw_response(self) -> Completions:
        """These methods, returning a `RawResponse` to read headers from, then `parse()`."""
        return Completions(self._client, raw=True)

    def create(
        self,
        *,
        messages: Iterable[Message],
        model: str,
        audio: Mapping[str, Any] | None = None,
        frequency_penalty: float | None = None,
        function_call: str | Mapping[str, Any] | None = None,
        functions: Iterable[Mapping[str, Any]] | None = None,
        logit_bias: Mapping[str, int] | None = None,
        logprobs: bool | None = None,
        max_completion_tokens: int | None = None,
        max_tokens: int | None = None,
        metadata: Mapping[str, str] | None = None,
        modalities: list[Literal["text", "audio"]] | None = None,
        moderation: Mapping[str, Any] | None = None,
        n: int | None = None,
        parallel_tool_calls: bool | None = None,
        prediction: Mapping[str, Any] | None = None,
        presence_penalty: float | None = None,
        prompt_cache_key: str | None = None,
        prompt_cache_options: Mapping[str, Any] | None = None,
        prompt_cache_retention: Literal["in_memory", "24h"] | None = None,
        reasoning_effort: ReasoningEffort | None = None,
        response_format: Mapping[str, Any] | None = None,
        safety_identifier: str | None = None,
        seed: int | None = None,
        service_tier: ServiceTier | None = None,
        stop: str | list[str] | None = None,
        store: bool | None = None,
        stream: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        user: str | None = None,
        verbosity: Literal["low", "medium", "high"] | None = None,
        web_search_options: Mapping[str, Any] | None = None,
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
    ) -> ChatCompletion | Stream[ChatCompletionChunk] | RawResponse[Any]:
        """A chat completion; with `stream=True` a `Stream` of `ChatCompletionChunk`."""
        body = _body(locals(), extra_body)
        streaming = bool(body.get("stream"))
        response = self._client.request(
            "POST", "chat/completions", body=body, params=extra_query,
            headers=extra_headers, timeout=timeout, stream=streaming,
        )
        if streaming:
            return _result(self._raw, response, lambda: Stream(response, ChatCompletionChunk))
        return _result(self._raw, response, lambda: validate(ChatCompletion, response))

    def parse(
        self,
        *,
        messages: Iterable[Message],
        model: str,
        response_format: type[ModelT],
        audio: Mapping[str, Any] | None = None,
        frequency_penalty: float | None = None,
        function_call: str | Mapping[str, Any] | None = None,
        functions: Iterable[Mapping[str, Any]] | None = None,
        logit_bias: Mapping[str, int] | None = None,
        logprobs: bool | None = None,
        max_completion_tokens: int | None = None,
        max_tokens: int | None = None,
        metadata: Mapping[str, str] | None = None,
        modalities: list[Literal["text", "audio"]] | None = None,
        moderation: Mapping[str, Any] | None = None,
        n: int | None = None,
        parallel_tool_calls: bool | None = None,
        prediction: Mapping[str, Any] | None = None,
        presence_penalty: float | None = None,
        prompt_cache_key: str | None = None,
        prompt_cache_options: Mapping[str, Any] | None = None,
        prompt_cache_retention: Literal["in_memory", "24h"] | None = None,
        reasoning_effort: ReasoningEffort | None = None,
        safety_identifier: str | None = None,
        seed: int | None = None,
        service_tier: ServiceTier | None = None,
        stop: str | list[str] | None = None,
        store: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        user: str | None = None,
        verbosity: Literal["low", "medium", "high"] | None = None,
        web_search_options: Mapping[str, Any] | None = None,
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
    ) -> ParsedChatCompletion[ModelT] | RawResponse[ParsedChatCompletion[ModelT]]:
        """`create` with a strict JSON schema built from `response_format` (a pydantic model);
        `.choices[i].message.parsed` is the validated instance. Does not stream."""
        params = _parse_params(locals())
        completion = self.create(**params)
        return _parsed(response_format, completion)


class AsyncCompletions:
    def __init__(self, client: AsyncAPIClient, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    @cached_property
    def with_raw_response(self) -> AsyncCompletions:
        """These methods, returning a `RawResponse` to read headers from, then `parse()`."""
        return AsyncCompletions(self._client, raw=True)

    async def create(
        self,
        *,
        messages: Iterable[Message],
        model: str,
        audio: Mapping[str, Any] | None = None,
        frequency_penalty: float | None = None,
        function_call: str | Mapping[str, Any] | None = None,
        functions: Iterable[Mapping[str, Any]] | None = None,
        logit_bias: Mapping[str, int] | None = None,
        logprobs: bool | None = None,
        max_completion_tokens: int | None = None,
        max_tokens: int | None = None,
        metadata: Mapping[str, str] | None = None,
        modalities: list[Literal["text", "audio"]] | None = None,
        moderation: Mapping[str, Any] | None = None,
        n: int | None = None,
        parallel_tool_calls: bool | None = None,
        prediction: Mapping[str, Any] | None = None,
        presence_penalty: float | None = None,
        prompt_cache_key: str | None = None,
        prompt_cache_options: Mapping[str, Any] | None = None,
        prompt_cache_retention: Literal["in_memory", "24h"] | None = None,
        reasoning_effort: ReasoningEffort | None = None,
        response_format: Mapping[str, Any] | None = None,
        safety_identifier: str | None = None,
        seed: int | None = None,
        service_tier: ServiceTier | None = None,
        stop: str | list[str] | None = None,
        store: bool | None = None,
        stream: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        user: str | None = None,
        verbosity: Literal["low", "medium", "high"] | None = None,
        web_search_options: Mapping[str, Any] | None = None,
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
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk] | RawResponse[Any]:
        """A chat completion; with `stream=True` an `AsyncStream` of `ChatCompletionChunk`."""
        body = _body(locals(), extra_body)
        streaming = bool(body.get("stream"))
        response = await self._client.request(
            "POST", "chat/completions", body=body, params=extra_query,
            headers=extra_headers, timeout=timeout, stream=streaming,
        )
        if streaming:
            return _result(self._raw, response, lambda: AsyncStream(response, ChatCompletionChunk))
        return _result(self._raw, response, lambda: validate(ChatCompletion, response))

    async def parse(
        self,
        *,
        messages: Iterable[Message],
        model: str,
        response_format: type[ModelT],
        audio: Mapping[str, Any] | None = None,
        frequency_penalty: float | None = None,
        function_call: str | Mapping[str, Any] | None = None,
        functions: Iterable[Mapping[str, Any]] | None = None,
        logit_bias: Mapping[str, int] | None = None,
        logprobs: bool | None = None,
        max_completion_tokens: int | None = None,
        max_tokens: int | None = None,
        metadata: Mapping[str, str] | None = None,
        modalities: list[Literal["text", "audio"]] | None = None,
        moderation: Mapping[str, Any] | None = None,
        n: int | None = None,
        parallel_tool_calls: bool | None = None,
        prediction: Mapping[str, Any] | None = None,
        presence_penalty: float | None = None,
        prompt_cache_key: str | None = None,
        prompt_cache_options: Mapping[str, Any] | None = None,
        prompt_cache_retention: Literal["in_memory", "24h"] | None = None,
        reasoning_effort: ReasoningEffort | None = None,
        safety_identifier: str | None = None,
        seed: int | None = None,
        service_tier: ServiceTier | None = None,
        stop: str | list[str] | None = None,
        store: bool | None = None,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        user: str | None = None,
        verbosity: Literal["low", "medium", "high"] | None = None,
        web_search_options: Mapping[str, Any] | None = None,
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
    ) -> ParsedChatCompletion[ModelT] | RawResponse[ParsedChatCompletion[ModelT]]:
        params = _parse_params(locals())
        completion = await self.create(**params)
        return _parsed(response_format, completion)


def _result(raw: bool, response: httpx.Response, convert: Callable[[], Any]) -> Any:
    return RawResponse(response, convert) if raw else convert()


def _parsed(model: type[ModelT], completion: Any) -> Any:
    if isinstance(completion, RawResponse):
        return completion._map(lambda c: parse_completion(model, c))
    assert isinstance(completion, ChatCompletion)
    return parse_completion(model, completion)


class Chat:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    @cached_property
    def completions(self) -> Completions:
        return Completions(self._client)


class AsyncChat:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    @cached_property
    def completions(self) -> AsyncCompletions:
        return AsyncCompletions(self._client)


# --- structured outputs -------------------------------------------------------------------


def response_format_for(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
        raise TypeError(
            "parse() takes a pydantic model class as response_format; "
            "use create() for a response_format dict"
        )
    return {
        "type": "json_schema",
        "json_schema": {
            "name": re.sub(r"[^a-zA-Z0-9_-]", "_", model.__name__)[:64],
            "schema": to_strict_json_schema(model),
            "strict": True,
        },
    }


def to_strict_json_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the strict dialect: every object closed
    (`additionalProperties: false`) with all its properties required (an Optional field is
    required but nullable), no `default`s, and `$ref`s that carry sibling keys inlined."""
    schema = model.model_json_schema()
    return _strict(schema, schema.get("$defs", {}))


def _strict(node: Any, defs: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: value for key, value in node.items() if key != "default"}
    if "$ref" in node and len(node) > 1:
        target = _resolve(node.pop("$ref"), defs)
        return _strict({**target, **node}, defs)
    if len(node.get("allOf", ())) == 1:
        (only,) = node.pop("allOf")
        return _strict({**_resolve_any(only, defs), **node}, defs)
    if "properties" in node:
        node["properties"] = {k: _strict(v, defs) for k, v in node["properties"].items()}
        node["required"] = list(node["properties"])
    if node.get("type") == "object" and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for key in ("$defs", "definitions"):
        if isinstance(node.get(key), dict):
            node[key] = {name: _strict(sub, defs) for name, sub in node[key].items()}
    for key in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "additionalProperties"):
        if isinstance(node.get(key), dict | list):
            node[key] = _strict(node[key], defs)
    return node


def _resolve(ref: str, defs: Mapping[str, Any]) -> dict[str, Any]:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix):] not in defs:
        raise ValueError(f"cannot resolve JSON schema reference {ref!r}")
    return dict(defs[ref[len(prefix):]])


def _resolve_any(node: Any, defs: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(node, dict) and set(node) == {"$ref"}:
        return _resolve(node["$ref"], defs)
    return dict(node)


def parse_completion(
    model: type[ModelT], completion: ChatCompletion
) -> ParsedChatCompletion[ModelT]:
    data = completion.model_dump()
    for choice, choice_data in zip(completion.choices, data["choices"], strict=True):
        choice_data["message"]["parsed"] = _parse_message(model, choice, completion)
    return ParsedChatCompletion[model].model_validate(data)  # type: ignore[valid-type]


def _parse_message(model: type[ModelT], choice: Any, completion: ChatCompletion) -> ModelT | None:
    message = choice.message
    if message.refusal:
        raise StructuredOutputError(f"The model refused: {message.refusal}", completion)
    if message.content is None and message.tool_calls:
        return None  # it called a tool instead; nothing to parse yet
    if choice.finish_reason == "length":
        raise StructuredOutputError(
            "The answer was cut off by the token limit before the JSON was complete; "
            "raise max_tokens.",
            completion,
        )
    if choice.finish_reason == "content_filter":
        raise StructuredOutputError("The answer was stopped by a content filter.", completion)
    if message.content is None:
        raise StructuredOutputError("The answer has no content to parse.", completion)
    try:
        return model.model_validate_json(message.content)
    except pydantic.ValidationError as exc:
        raise StructuredOutputError(
            f"The answer is not a valid {model.__name__}: {exc}", completion
        ) from exc

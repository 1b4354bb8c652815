"""Anthropic's Messages API (`POST {base_url}/v1/messages`).

API version: `anthropic-version: 2023-06-01` unless the provider option
`anthropic_version` says otherwise. The choice is deliberate. Version 2026-10-21 (the
default of Anthropic's current SDKs) removes `temperature`, `top_p` and `top_k` for every
model, rejecting them even at their default values ("temperature: Extra inputs are not
permitted"), and also rejects document blocks in assistant messages and citations on user
text blocks. 2023-06-01 still takes the sampling parameters, within each model's own
limits (temperature 0..1; the Claude 4.5 generation refuses temperature and top_p
together; Opus 4.7+ and Claude 5 refuse all three). Those per-model limits live in the
catalog (`supported_parameters`, `constraints`) and `check_parameters` applies them; with
2026-10-21 configured, `check` reports temperature and top_p as unsupported everywhere.

Anthropic fetches http(s) image URLs itself, so they are passed as `url` image sources.
Requests through the Messages door pass through as they are: see native.py.
`response_format` is native (`output_config.format`) or a response tool: see structured.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import ClassVar

import orjson

from ...catalog import features_of
from ...errors import GatewayError
from ..base import (
    ChatRequest,
    ProviderConfig,
    Unsupported,
    UpstreamRequest,
    check_parameters,
    is_set,
)
from ..common import require_turns, upstream_json
from . import structured
from .errors import error_from_event, error_from_response
from .native import AnthropicRelay, native_body, native_headers, parse_native
from .request import (
    DEFAULT_MAX_TOKENS,
    api_version,
    build_body,
    headers,
    sampling_removed,
    thinking_requested,
)
from .response import to_completion
from .stream import AnthropicStreamTranslator

__all__ = ["AnthropicAdapter", "AnthropicStreamTranslator"]

# The OpenAI parameters the Messages API can honour (translated where the names differ).
PARAMETERS = frozenset({
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "user", "tools",
    "tool_choice", "parallel_tool_calls", "response_format", "stream_options",
    "reasoning_effort", "metadata",
})


class AnthropicAdapter:
    kind: ClassVar[str] = "anthropic"
    parameters: ClassVar[frozenset[str]] = PARAMETERS
    fetches_image_urls: ClassVar[bool] = True
    continues_prefill: ClassVar[bool] = True  # a trailing assistant message is continued
    native_doors: ClassVar[frozenset[str]] = frozenset({"messages"})

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.version = api_version(config)
        self.default_max_tokens = int(config.options.get("default_max_tokens", DEFAULT_MAX_TOKENS))
        self._url = config.base_url.rstrip("/") + "/v1/messages"
        self._headers = headers(config, self.version)

    def build_native_request(self, req: ChatRequest) -> UpstreamRequest:
        return UpstreamRequest("POST", self._url, native_headers(self._headers, req.native.headers),
                               native_body(req))

    def parse_native_response(self, req: ChatRequest, body: bytes) -> tuple[dict, dict | None]:
        return parse_native(req, body, self.config.name, self.config.api_key)

    def native_relay(self, req: ChatRequest, trace: bool = False) -> AnthropicRelay:
        return AnthropicRelay(req, self.config.name, self.config.api_key, trace)

    def count_tokens_request(self, req: ChatRequest) -> UpstreamRequest:
        """Anthropic's own count (`/v1/messages/count_tokens`) of a Messages body."""
        return UpstreamRequest("POST", self._url + "/count_tokens",
                               native_headers(self._headers, req.native.headers), native_body(req))

    def check(self, req: ChatRequest) -> list[Unsupported]:
        require_turns(req, "anthropic")
        # `web_search_options` is set by the gateway itself for native web search (search.py).
        found = check_parameters(req, self.parameters | {"web_search_options"})
        named = {u.param for u in found}
        for item in _messages_api_rules(req, self.version):
            if item.param not in named:
                named.add(item.param)
                found.append(item)
        return found

    def build_request(self, req: ChatRequest) -> UpstreamRequest:
        body = build_body(req, self.version, self.default_max_tokens)
        structured.apply(body, structured.plan(req), req.body)
        return UpstreamRequest("POST", self._url, self._headers, orjson.dumps(body))

    def parse_response(self, req: ChatRequest, status: int, body: bytes) -> dict:
        data = upstream_json(body, self.config.name)
        if isinstance(data, dict) and data.get("type") == "error":
            raise error_from_event(data, self.config.name, self.config.api_key)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise GatewayError(502, f"{self.config.name} sent a response without content",
                               code="upstream_bad_response")
        return structured.to_content(to_completion(data), structured.plan(req))

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        return error_from_response(status, body, headers, self.config.name, self.config.api_key)

    def stream_translator(self, req: ChatRequest) -> AnthropicStreamTranslator | structured.ResponseToolStream:
        translator = AnthropicStreamTranslator(self.config.name, self.config.api_key)
        plan = structured.plan(req)
        return structured.ResponseToolStream(translator, plan) if plan and plan.tool else translator


def _messages_api_rules(req: ChatRequest, version: str) -> Iterator[Unsupported]:
    """Refusals that depend on the API version, the model's features or parameter pairs."""
    body = req.body
    if sampling_removed(version):
        for name in ("temperature", "top_p"):
            if is_set(name, body.get(name)):
                yield Unsupported(name, f"'{name}' is not accepted by Anthropic API version {version}")
    choice = body.get("tool_choice")
    forced = bool(body.get("tools")) and (choice == "required" or isinstance(choice, dict))
    features = features_of(req.model_info)
    if forced and not features.forced_tool_choice:
        yield Unsupported("tool_choice", f"model '{req.model}' does not accept a 'tool_choice' that "
                                         "forces a tool call; use 'auto'")
    elif forced and thinking_requested(body):
        yield Unsupported("reasoning_effort", "'reasoning_effort' cannot be combined with a "
                                              "'tool_choice' that forces a tool call on Anthropic models")
    if body.get("reasoning_effort") == "none" and features.thinking_always_on:
        yield Unsupported("reasoning_effort", f"model '{req.model}' always thinks: "
                                              "'reasoning_effort' cannot be 'none'")
    if thinking_requested(body):
        # Extended thinking accepts temperature 1 only, and top_p from 0.95.
        temperature, top_p = body.get("temperature"), body.get("top_p")
        if is_set("temperature", temperature) and temperature != 1:
            yield Unsupported("temperature", "'temperature' can only be 1 when 'reasoning_effort' is "
                                             "set (Anthropic extended thinking)")
        if is_set("top_p", top_p) and top_p < 0.95:
            yield Unsupported("top_p", "'top_p' must be at least 0.95 when 'reasoning_effort' is set "
                                       "(Anthropic extended thinking)")

"""OpenAI and every OpenAI-compatible API (Groq, Mistral, DeepSeek, vLLM, ...).

The body goes upstream as the client sent it, with only the model id replaced and usage
always requested in streams (the gateway needs it for cost; the engine hides the usage
chunk again when the client did not ask for it). Catalog features rename the few fields a
model spells differently (`max_tokens_field`, `seed_field`); a provider whose API has no
`stream_options` sets `stream_usage: false` in its config (it reports usage unasked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

import orjson

from ..._sse import ServerSentEvent
from ..catalog import COMMON_PARAMETERS, features_of
from ..errors import GatewayError
from .base import (
    ChatRequest,
    ProviderConfig,
    Unsupported,
    UpstreamRequest,
    bearer_headers,
    check_parameters,
)
from .common import status_error, upstream_json, upstream_message
from .embeddings import EmbeddingsRequest
from .media import OPENAI_PATHS, MediaRequest, parse_openai_images, passthrough_request
from .openai_responses import ResponsesRelay, parse_responses, responses_request

_ERROR_PATHS = (("error", "message"), ("message",), ("detail",), ("error",))
# What `check` judges for catalog models: OpenAI's parameters, and `top_k` (Anthropic's and
# Gemini's, which the Messages door maps), taken only where the catalog lists it.
CHECKED = COMMON_PARAMETERS | {"top_k"}


class OpenAIAdapter:
    kind: ClassVar[str] = "openai"
    parameters: ClassVar[frozenset[str]] = COMMON_PARAMETERS
    fetches_image_urls: ClassVar[bool] = True
    continues_prefill: ClassVar[bool] = False  # a trailing assistant message is continued

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        self._headers = bearer_headers(config)
        self._stream_usage = bool(config.options.get("stream_usage", True))
        # Providers with OpenAI's Responses API take the Responses door's body as it is.
        self.native_doors = frozenset({"responses"}) if config.options.get("responses_api") else frozenset()
        self._responses_url = config.base_url.rstrip("/") + "/responses"

    def build_native_request(self, req: ChatRequest) -> UpstreamRequest:
        return responses_request(req, self._responses_url, self._headers)

    def parse_native_response(self, req: ChatRequest, body: bytes) -> tuple[dict, dict | None]:
        return parse_responses(req, body, self.config.name)

    def native_relay(self, req: ChatRequest, trace: bool = False) -> ResponsesRelay:
        return ResponsesRelay(req, self.config.name, trace)

    def check(self, req: ChatRequest) -> list[Unsupported]:
        """Unknown models: the upstream judges. Known ones: the catalog says, for the
        parameters Lunos knows (`CHECKED`); other fields (vendor extensions) pass through."""
        info = req.model_info
        if info is None:
            return []
        found = [u for u in check_parameters(req, self.parameters) if u.param in CHECKED]
        efforts = info.features.reasoning_efforts
        effort = req.body.get("reasoning_effort")
        if effort is not None and efforts and effort not in efforts and "reasoning_effort" not in {
            u.param for u in found
        }:
            found.append(Unsupported("reasoning_effort",
                                     f"'reasoning_effort' {effort!r} is not supported by model "
                                     f"'{req.model}' (it takes {', '.join(efforts)})"))
        return found

    def build_request(self, req: ChatRequest) -> UpstreamRequest:
        body = dict(req.body)
        body["model"] = req.upstream_model
        if req.stream:
            if self._stream_usage:
                body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
            else:
                body.pop("stream_options", None)
        features = features_of(req.model_info)
        _rename(body, "max_tokens", features.max_tokens_field)
        _rename(body, "max_completion_tokens", features.max_tokens_field)
        _rename(body, "seed", features.seed_field)
        return UpstreamRequest("POST", self._url, self._headers, orjson.dumps(body))

    def parse_response(self, req: ChatRequest, status: int, body: bytes) -> dict:
        data = upstream_json(body, self.config.name)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise GatewayError(502, f"{self.config.name} sent a response without choices",
                               code="upstream_bad_response")
        return data

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        return status_error(status, upstream_message(body, *_ERROR_PATHS), self.config.name,
                            headers.get("retry-after"))

    def stream_translator(self, req: ChatRequest) -> OpenAIStreamTranslator:
        return OpenAIStreamTranslator(self.config.name)

    # `POST /embeddings`: the body as the client sent it, only the model renamed.
    def build_embeddings_request(self, req: EmbeddingsRequest) -> UpstreamRequest:
        url = self.config.base_url.rstrip("/") + "/embeddings"
        body = {**req.body, "model": req.upstream_model}
        return UpstreamRequest("POST", url, self._headers, orjson.dumps(body))

    def parse_embeddings_response(self, req: EmbeddingsRequest, body: bytes) -> tuple[list, dict | None]:
        data = upstream_json(body, self.config.name)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) != len(req.body["input"]) or not all(
                isinstance(item, dict) and isinstance(item.get("embedding"), (list, str)) for item in items):
            raise GatewayError(502, f"{self.config.name} sent embeddings that do not match the "
                               "inputs", code="upstream_bad_response")
        items = sorted(items, key=lambda item: item["index"] if isinstance(item.get("index"), int) else 0)
        usage = data.get("usage")
        return [item["embedding"] for item in items], usage if isinstance(usage, dict) else None

    # The media routes (SPEC §9.4): the body as sent, only the model renamed. A compatible
    # provider without one of these routes answers 404, which the client sees as it is.
    media_routes: ClassVar[frozenset[str]] = frozenset(OPENAI_PATHS)

    def build_media_request(self, req: MediaRequest) -> UpstreamRequest:
        if req.kind == "completions" and req.stream and self._stream_usage:
            # Usage always asked for, as for chat: the row needs it (the route hides it
            # from a client that did not ask).
            options = req.body.get("stream_options") or {}
            req = replace(req, body={**req.body, "stream_options": {**options, "include_usage": True}})
        return passthrough_request(req, self.config.base_url, self._headers)

    def parse_images_response(self, req: MediaRequest, body: bytes) -> tuple[list[dict], dict | None]:
        return parse_openai_images(body, self.config.name)


def _rename(body: dict, field: str, to: str | None) -> None:
    if to and to != field and field in body:
        value = body.pop(field)
        body.setdefault(to, value)


class OpenAIStreamTranslator:
    __slots__ = ("_provider", "done")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self.done = False

    def feed(self, event: ServerSentEvent) -> list[dict]:
        data = event.data
        if not data or self.done:
            return []
        if data == "[DONE]":
            self.done = True
            return []
        chunk = upstream_json(data, self._provider, "a stream event")
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk and "choices" not in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise GatewayError(502, f"{self._provider}: {message}", code="upstream_error")
        return [chunk]

    def finish(self) -> list[dict]:
        if not self.done:
            raise GatewayError(502, f"{self._provider} ended the stream before it was complete",
                               code="upstream_incomplete_stream")
        return []

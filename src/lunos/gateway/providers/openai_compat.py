"""OpenAI and every OpenAI-compatible API (Groq, Mistral, DeepSeek, vLLM, ...).

The body goes upstream as the client sent it, with only the model id replaced and usage
always requested in streams (the gateway needs it for cost; the engine hides the usage
chunk again when the client did not ask for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import orjson

from ..._sse import ServerSentEvent
from ..catalog import COMMON_PARAMETERS
from ..errors import GatewayError
from .base import ChatRequest, ProviderConfig, Unsupported, UpstreamRequest, bearer_headers, check_parameters
from .common import status_error, upstream_message

_ERROR_PATHS = (("error", "message"), ("message",), ("detail",), ("error",))


class OpenAIAdapter:
    kind: ClassVar[str] = "openai"
    parameters: ClassVar[frozenset[str]] = COMMON_PARAMETERS
    fetches_image_urls: ClassVar[bool] = True

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        self._headers = bearer_headers(config)

    def check(self, req: ChatRequest) -> list[Unsupported]:
        # Unknown models: let the upstream judge. Known ones: the catalog says.
        if req.model_info is None:
            return []
        return check_parameters(req, self.parameters | set(req.body))

    def build_request(self, req: ChatRequest) -> UpstreamRequest:
        body = req.body
        if body.get("model") != req.upstream_model or (req.stream and not req.include_usage):
            body = dict(body)
            body["model"] = req.upstream_model
            if req.stream:
                body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return UpstreamRequest("POST", self._url, self._headers, orjson.dumps(body))

    def parse_response(self, req: ChatRequest, status: int, body: bytes) -> dict:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise GatewayError(502, f"{self.config.name} sent a response that is not JSON",
                               code="upstream_bad_response") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise GatewayError(502, f"{self.config.name} sent a response without choices",
                               code="upstream_bad_response")
        return data

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        return status_error(status, upstream_message(body, *_ERROR_PATHS), self.config.name,
                            headers.get("retry-after"))

    def stream_translator(self, req: ChatRequest) -> OpenAIStreamTranslator:
        return OpenAIStreamTranslator(self.config.name)


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
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise GatewayError(502, f"{self._provider} sent a stream event that is not JSON",
                               code="upstream_bad_response") from None
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk and "choices" not in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise GatewayError(502, f"{self._provider}: {message}", code="upstream_error")
        return [chunk]

    def finish(self) -> list[dict]:
        return []

"""Google Gemini through its own API (`generateContent` / `streamGenerateContent`, v1beta).

`base_url` has no version (`https://generativelanguage.googleapis.com`). The API key goes in
the `x-goog-api-key` header, never in the URL, so it cannot leak into logs of URLs.

Parameters Gemini cannot honour are refused (or dropped with `drop_params`):
- `user`: Gemini has no end-user field;
- `logprobs`/`top_logprobs`, `logit_bias` and the OpenAI-only extras (`store`, `metadata`, ...);
- `reasoning_effort` on a model without a thinking setting (see request.py).
`parallel_tool_calls: false` has no Gemini counterpart either, but popular clients send it
(LangChain's structured output, the OpenAI Agents SDK), so it is honoured here: only the
first function call of each candidate is returned, streamed or not.
`strict` on a tool has no Gemini counterpart and is ignored (the schema is still sent whole).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

import orjson

from ...errors import GatewayError
from ...tokens import count
from ..base import ChatRequest, ProviderConfig, Unsupported, UpstreamRequest, check_parameters
from ..common import require_turns, upstream_json
from ..embeddings import EmbeddingsRequest, normalized
from ..media import MediaRequest
from .errors import parse_error
from .images import (
    image_request,
    parse_images,
    speech_answer,
    speech_request,
    transcription_answer,
    transcription_request,
)
from .request import build_body, can_stop_thinking, thinking_style
from .response import parse_completion
from .stream import GoogleStreamTranslator

__all__ = ["GoogleAdapter", "GoogleStreamTranslator"]

_REASONS = {
    "user": "Gemini has no end-user field ('user')",
}


class GoogleAdapter:
    kind: ClassVar[str] = "google"
    parameters: ClassVar[frozenset[str]] = frozenset({
        "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop",
        "frequency_penalty", "presence_penalty", "seed", "n", "tools", "tool_choice",
        "response_format", "stream_options", "reasoning_effort", "parallel_tool_calls",
    })
    fetches_image_urls: ClassVar[bool] = False
    continues_prefill: ClassVar[bool] = True  # a trailing assistant message is continued

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._base = config.base_url.rstrip("/")
        headers = [("content-type", "application/json")]
        if config.api_key:
            headers.append(("x-goog-api-key", config.api_key))
        headers.extend(config.headers)
        self._headers = headers

    def check(self, req: ChatRequest) -> list[Unsupported]:
        require_turns(req, "google")
        found = []
        # `web_search_options` is set by the gateway itself for native web search (search.py).
        for item in check_parameters(req, self.parameters | {"web_search_options"}):
            reason = _REASONS.get(item.param)
            found.append(Unsupported(item.param, reason) if reason else item)
        effort = req.body.get("reasoning_effort")
        if effort and not any(u.param == "reasoning_effort" for u in found):
            if thinking_style(req) is None:
                found.append(Unsupported("reasoning_effort",
                                         f"model '{req.model}' has no thinking setting for "
                                         "'reasoning_effort'"))
            elif effort == "none" and not can_stop_thinking(req):
                found.append(Unsupported("reasoning_effort",
                                         f"model '{req.model}' always thinks: 'reasoning_effort' "
                                         "cannot be 'none' (use 'low')"))
        return found

    def build_request(self, req: ChatRequest) -> UpstreamRequest:
        model = req.upstream_model
        if not model.startswith(("models/", "tunedModels/")):
            model = "models/" + model
        method = "streamGenerateContent?alt=sse" if req.stream else "generateContent"
        url = f"{self._base}/v1beta/{quote(model, safe='/-._')}:{method}"
        return UpstreamRequest("POST", url, self._headers, orjson.dumps(build_body(req)))

    def count_tokens_request(self, req: ChatRequest) -> UpstreamRequest:
        """Google's own count (`countTokens`) of the request `build_request` would send."""
        model = req.upstream_model
        if not model.startswith(("models/", "tunedModels/")):
            model = "models/" + model
        url = f"{self._base}/v1beta/{quote(model, safe='/-._')}:countTokens"
        body = {"generateContentRequest": {"model": model, **build_body(req)}}
        return UpstreamRequest("POST", url, self._headers, orjson.dumps(body))

    def parse_response(self, req: ChatRequest, status: int, body: bytes) -> dict:
        completion = parse_completion(body, self.config.name)
        if req.body.get("parallel_tool_calls") is False:
            for choice in completion["choices"]:
                calls = choice["message"].get("tool_calls")
                if calls and len(calls) > 1:
                    del calls[1:]
        return completion

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        return parse_error(status, body, headers, self.config.name, self.config.api_key)

    # Embeddings: `batchEmbedContents`, one request per input. `dimensions` is
    # `outputDimensionality`; Gemini normalises only its full-size vectors, so every vector
    # is normalised here, as OpenAI's are. `user` has no Gemini counterpart and is not sent.
    MAX_EMBEDDING_INPUTS = 100  # per batchEmbedContents call

    def build_embeddings_request(self, req: EmbeddingsRequest) -> UpstreamRequest:
        inputs = req.body["input"]
        if not all(isinstance(text, str) for text in inputs):
            raise GatewayError(400, f"{req.model} takes text only: 'input' must be a string or "
                               "an array of strings, not token arrays", param="input",
                               code="invalid_type")
        if len(inputs) > self.MAX_EMBEDDING_INPUTS:
            raise GatewayError(400, f"{req.model} takes at most {self.MAX_EMBEDDING_INPUTS} inputs "
                               f"per request, got {len(inputs)}", param="input")
        model = req.upstream_model
        if not model.startswith(("models/", "tunedModels/")):
            model = "models/" + model
        one = {"model": model}
        if req.body.get("dimensions") is not None:
            one["outputDimensionality"] = req.body["dimensions"]
        body = {"requests": [{**one, "content": {"parts": [{"text": text}]}} for text in inputs]}
        url = f"{self._base}/v1beta/{quote(model, safe='/-._')}:batchEmbedContents"
        return UpstreamRequest("POST", url, self._headers, orjson.dumps(body))

    # Image generation (`POST /v1/images/generations`: generateContent asked for images),
    # transcription (`POST /v1/audio/transcriptions`: the audio inline, asked for its text).
    # Speech on the TTS models: generateContent asked for audio, the PCM wrapped as WAV.
    media_routes: ClassVar[frozenset[str]] = frozenset({"images", "transcriptions", "speech"})

    def build_media_request(self, req: MediaRequest) -> UpstreamRequest:
        build = {"transcriptions": transcription_request, "speech": speech_request}.get(req.kind, image_request)
        return build(req, self._base, self._headers)

    def speech_answer(self, req: MediaRequest, body: bytes) -> tuple[bytes, str, dict]:
        return speech_answer(body, self.config.name, req.body.get("response_format"))

    def transcription_answer(self, req: MediaRequest, body: bytes) -> tuple[bytes, str, dict]:
        return transcription_answer(body, self.config.name, req.body.get("response_format"))

    def parse_images_response(self, req: MediaRequest, body: bytes) -> tuple[list[dict], dict | None]:
        return parse_images(body, self.config.name)

    def parse_embeddings_response(self, req: EmbeddingsRequest, body: bytes) -> tuple[list, dict | None]:
        data = upstream_json(body, self.config.name)
        items = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) != len(req.body["input"]) or not all(
                isinstance(item, dict) and isinstance(item.get("values"), list) for item in items):
            raise GatewayError(502, f"{self.config.name} sent embeddings that do not match the "
                               "inputs", code="upstream_bad_response")
        vectors = [normalized([float(x) for x in item["values"]]) for item in items]
        metadata = data.get("usageMetadata") or {}
        tokens = metadata.get("promptTokenCount") if isinstance(metadata, dict) else None
        if not isinstance(tokens, int):  # Gemini's answer says no count: a tokenizer's estimate
            tokens = sum(count(text) for text in req.body["input"])
        return vectors, {"prompt_tokens": tokens, "total_tokens": tokens}

    def stream_translator(self, req: ChatRequest) -> GoogleStreamTranslator:
        return GoogleStreamTranslator(self.config.name, self.config.api_key,
                                      one_call=req.body.get("parallel_tool_calls") is False)

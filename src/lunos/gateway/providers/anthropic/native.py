"""Messages in, Messages out: the pass-through for clients of the Messages door.

The client's body goes upstream as it was sent, with only `model` renamed to the upstream
id (the route has already taken Lunos's own fields out), so `cache_control`, thinking blocks
and their signatures, documents, citations, server tools and fields Lunos has never heard
of reach Anthropic unchanged. The client's `anthropic-version` and `anthropic-beta` headers
go with it. The answer comes back as Anthropic sent it, `model` renamed to the Lunos id.

Streams are relayed event by event: only `message_start` (the model's name, the input usage)
and `message_delta` (the final usage) are decoded; every other event is re-framed from its
data as it came. Until the first content block starts, `message_start` and `ping` are held,
so an `overloaded_error` right after `message_start` can still be retried elsewhere.
"""

from __future__ import annotations

import orjson

from ...._sse import ServerSentEvent
from ...errors import GatewayError
from ...sse import named_event
from ...usage import Output
from ..base import ChatRequest
from ..common import HeldRelay, upstream_json
from .errors import error_from_event
from .response import to_completion, usage_from
from .stream import AnthropicStreamTranslator

# Client headers that go upstream with a pass-through body.
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def native_headers(base: list[tuple[str, str]], client: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The adapter's headers with the client's version and betas: the client's version
    wins; betas from both are sent, the client's first."""
    given = dict(client)
    out = []
    for name, value in base:
        if name == "anthropic-version" and "anthropic-version" in given:
            value = given["anthropic-version"]
        elif name == "anthropic-beta" and "anthropic-beta" in given:
            value = f"{given.pop('anthropic-beta')},{value}"
        out.append((name, value))
    if "anthropic-beta" in given:
        out.append(("anthropic-beta", given["anthropic-beta"]))
    return out


def native_body(req: ChatRequest) -> bytes:
    body = req.native.body
    if body.get("model") == req.upstream_model:
        return orjson.dumps(body)
    return orjson.dumps({**body, "model": req.upstream_model})


def parse_native(req: ChatRequest, raw: bytes, provider: str, api_key: str | None) -> tuple[dict, dict | None]:
    """Anthropic's message, `model` renamed, and its usage OpenAI-shaped (for the row)."""
    data = upstream_json(raw, provider)
    if isinstance(data, dict) and data.get("type") == "error":
        raise error_from_event(data, provider, api_key)
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise GatewayError(502, f"{provider} sent a response without content", code="upstream_bad_response")
    data["model"] = req.model
    usage = data.get("usage")
    return data, usage_from(usage) if isinstance(usage, dict) else None


def native_output(message: dict) -> dict:
    """What a pass-through answer said, for its trace."""
    completion = to_completion(message)
    choice = completion["choices"][0]
    output = Output(finish_reason=choice.get("finish_reason"))
    output.fold_delta(choice["message"])
    return output.to_dict()


class AnthropicRelay(HeldRelay):
    """One pass-through stream (see the module docstring). With `trace`, the same events
    also go through the chat translator, whose deltas fold into `output`."""

    __slots__ = ("_api_key", "_model", "_shadow", "_usage", "output")

    def __init__(self, req: ChatRequest, provider: str, api_key: str | None, trace: bool) -> None:
        super().__init__(provider)
        self._model = req.model
        self._api_key = api_key
        self._usage: dict = {}
        self._shadow = AnthropicStreamTranslator(provider, api_key) if trace else None
        self.output = Output() if trace else None

    @property
    def usage(self) -> dict | None:
        return usage_from(self._usage) if self._usage else None

    def feed(self, event: ServerSentEvent) -> list[bytes]:
        name = event.event or "message"
        if name == "error":
            raise error_from_event(upstream_json(event.data, self._provider, "a stream event"),
                                   self._provider, self._api_key)
        if self._shadow is not None:
            self._trace(event)
        if name == "message_start":
            data = upstream_json(event.data, self._provider, "a stream event")
            message = data.get("message") if isinstance(data, dict) else None
            if isinstance(message, dict):
                message["model"] = self._model
                self._note_usage(message.get("usage"))
            return self.release(named_event(name, orjson.dumps(data)), opening=True)
        if name == "message_delta":
            data = upstream_json(event.data, self._provider, "a stream event")
            if isinstance(data, dict):
                self._note_usage(data.get("usage"))
        elif name == "message_stop":
            self.done = True
        return self.release(named_event(name, event.data), opening=name == "ping")

    def _note_usage(self, usage) -> None:
        if isinstance(usage, dict):
            self._usage.update((k, v) for k, v in usage.items() if v is not None)

    def _trace(self, event: ServerSentEvent) -> None:
        for chunk in self._shadow.feed(event):
            for choice in chunk.get("choices") or ():
                self.output.fold_delta(choice.get("delta") or {})
                if choice.get("finish_reason"):
                    self.output.finish_reason = choice["finish_reason"]

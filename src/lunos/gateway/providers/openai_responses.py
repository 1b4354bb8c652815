"""Responses in, Responses out: OpenAI's own Responses API for clients of the Responses door.

A provider whose API has `POST /responses` (preset option `responses_api`: OpenAI, xAI,
Groq, OpenRouter) gets the client's body as the door built it: `model` renamed, the whole
conversation as `input` (Lunos keeps conversations itself, so the upstream never stores
anything nor sees a `previous_response_id`). The answer comes back as the provider sent it,
with the response's `id` and `model` replaced by Lunos's.

Streams are relayed event by event; only the events that carry the whole response
(`response.created`, `.in_progress`, `.completed`, `.incomplete`, `.failed`) are decoded, to
rename it and to read the usage. Until the first output item is added, the opening events
are held, so a failure before any output can still be retried elsewhere. The relay leaves
the final response, and the last `sequence_number`, in the request's `NativeBody.state`
for the door (to store the response, and to number a failure event after the last one).
"""

from __future__ import annotations

import orjson

from ..._sse import ServerSentEvent
from ..errors import GatewayError
from ..sse import named_event
from .base import ChatRequest, UpstreamRequest
from .common import HeldRelay, make_usage, status_error, upstream_json

# Events whose data carries the whole response object.
_WHOLE = frozenset({"response.created", "response.in_progress", "response.completed",
                    "response.incomplete", "response.failed", "response.queued"})
_FINAL = frozenset({"response.completed", "response.incomplete"})


def responses_request(req: ChatRequest, url: str, headers: list[tuple[str, str]]) -> UpstreamRequest:
    body = req.native.body
    return UpstreamRequest("POST", url, headers, orjson.dumps({**body, "model": req.upstream_model}))


def usage_of(usage: dict | None) -> dict | None:
    """Responses usage -> chat usage (for cost and the history row)."""
    if not isinstance(usage, dict):
        return None
    input_details = usage.get("input_tokens_details") or {}
    output_details = usage.get("output_tokens_details") or {}
    return make_usage(usage.get("input_tokens") or 0, usage.get("output_tokens") or 0,
                      cached=input_details.get("cached_tokens") or 0,
                      reasoning=output_details.get("reasoning_tokens") or 0)


def _rename(response: dict, req: ChatRequest) -> dict:
    state = req.native.state
    response["id"] = state["id"]
    response["model"] = req.model
    response.update(state.get("echo") or ())  # what the client asked, not what went upstream
    return response


def parse_responses(req: ChatRequest, raw: bytes, provider: str) -> tuple[dict, dict | None]:
    data = upstream_json(raw, provider)
    if not isinstance(data, dict) or not isinstance(data.get("output"), list):
        raise GatewayError(502, f"{provider} sent a response without output", code="upstream_bad_response")
    if data.get("status") == "failed":
        raise _failed(data, provider)
    return _rename(data, req), usage_of(data.get("usage"))


def _failed(response: dict, provider: str) -> GatewayError:
    error = response.get("error") if isinstance(response.get("error"), dict) else {}
    message = error.get("message") or "the response failed"
    status = 429 if error.get("code") == "rate_limit_exceeded" else 500
    return status_error(status, str(message), provider)


class ResponsesRelay(HeldRelay):
    """One pass-through Responses stream (see the module docstring)."""

    __slots__ = ("_req", "_usage", "output")

    def __init__(self, req: ChatRequest, provider: str, trace: bool) -> None:
        super().__init__(provider)
        self._req = req
        self._usage: dict | None = None
        self.output = None  # traces read the stored final response instead

    @property
    def usage(self) -> dict | None:
        return self._usage

    def feed(self, event: ServerSentEvent) -> list[bytes]:
        data_text = event.data
        name = event.event
        if name is None or name in _WHOLE or name == "error":
            data = upstream_json(data_text, self._provider, "a stream event")
            name = name or (data.get("type") if isinstance(data, dict) else None) or "message"
            if name == "error":
                message = data.get("message") if isinstance(data, dict) else None
                raise status_error(500, str(message or "stream error"), self._provider)
            if name in _WHOLE and isinstance(data, dict) and isinstance(data.get("response"), dict):
                response = _rename(data["response"], self._req)
                if name == "response.failed":
                    raise _failed(response, self._provider)
                if name in _FINAL:
                    self._usage = usage_of(response.get("usage"))
                    self._req.native.state["response"] = response
                    self.done = True
                data_text = orjson.dumps(data)
            self._note_sequence(data)
        else:
            self._note_sequence_fast(data_text)
        return self.release(named_event(name, data_text), opening=name in _WHOLE and not self.done)

    def _note_sequence(self, data) -> None:
        if isinstance(data, dict) and isinstance(data.get("sequence_number"), int):
            self._req.native.state["sequence"] = data["sequence_number"]

    def _note_sequence_fast(self, text: str) -> None:
        """The sequence number of an event not otherwise decoded, read without parsing it
        (OpenAI writes it as `"sequence_number":N`)."""
        at = text.rfind('"sequence_number":')
        if at >= 0:
            digits = text[at + 18:].lstrip().split(",", 1)[0].split("}", 1)[0].strip()
            if digits.isdigit():
                self._req.native.state["sequence"] = int(digits)

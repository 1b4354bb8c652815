"""The Responses pass-through (providers/openai_responses.py): events relayed as the provider
sent them, the response renamed to Lunos's id and model, usage read, the final response and
the last sequence number left for the door, failures raised."""

from __future__ import annotations

import orjson
import pytest

from lunos._sse import SSEDecoder
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.base import ChatRequest, NativeBody, ProviderConfig
from lunos.gateway.providers.openai_compat import OpenAIAdapter

ADAPTER = OpenAIAdapter(ProviderConfig("openai", "openai", "https://api.openai.test/v1", "sk-secret",
                                       options={"responses_api": True}))
USAGE = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 9,
         "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 21}


def _response(status: str, output: list, usage: dict | None = None) -> dict:
    return {"id": "resp_upstream", "object": "response", "created_at": 1, "status": status,
            "model": "gpt-5", "output": output, "usage": usage}


MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": "Hi there", "annotations": []}]}
EVENTS = [
    ("response.created", {"response": _response("in_progress", [])}),
    ("response.in_progress", {"response": _response("in_progress", [])}),
    ("response.output_item.added", {"output_index": 0, "item": {**MESSAGE, "status": "in_progress", "content": []}}),
    ("response.content_part.added", {"item_id": "msg_1", "output_index": 0, "content_index": 0,
                                     "part": {"type": "output_text", "text": "", "annotations": []}}),
    ("response.output_text.delta", {"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Hi"}),
    ("response.output_text.delta", {"item_id": "msg_1", "output_index": 0, "content_index": 0,
                                    "delta": ' there "sequence_number":99'}),
    ("response.output_text.done", {"item_id": "msg_1", "output_index": 0, "content_index": 0, "text": "Hi there"}),
    ("response.output_item.done", {"output_index": 0, "item": MESSAGE}),
    ("response.completed", {"response": _response("completed", [MESSAGE], USAGE)}),
]


def _stream(events=EVENTS) -> bytes:
    return b"".join(b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps({"type": name, "sequence_number": i, **data}))
                    for i, (name, data) in enumerate(events))


def _req() -> ChatRequest:
    body = {"model": "openai/gpt-5", "input": [], "store": False}
    return ChatRequest(body, "openai/gpt-5", "openai", "gpt-5", native=NativeBody("responses", body, state={"id": "resp_lunos"}))


def _decode(raw: bytes) -> list:
    decoder = SSEDecoder()
    return [*decoder.feed(raw), *decoder.flush()]


def _relay(raw: bytes):
    req = _req()
    relay = ADAPTER.native_relay(req)
    out: list[bytes] = []
    for event in _decode(raw):
        out += relay.feed(event)
    out += relay.finish()
    return req, relay, _decode(b"".join(out))


def test_events_are_relayed_as_sent_with_the_response_renamed():
    req, relay, relayed = _relay(_stream())
    sent = _decode(_stream())
    assert [e.event for e in relayed] == [e.event for e in sent]
    for before, after in zip(sent, relayed, strict=True):
        data = orjson.loads(before.data)
        if "response" in data:
            data["response"].update(id="resp_lunos", model="openai/gpt-5")
            assert orjson.loads(after.data) == data
        else:
            assert after.data == before.data
    assert req.native.state["sequence"] == len(EVENTS) - 1  # not fooled by the text
    assert req.native.state["response"]["id"] == "resp_lunos"
    assert req.native.state["response"]["output"] == [MESSAGE]
    assert relay.usage["prompt_tokens"] == 12 and relay.usage["completion_tokens"] == 9
    assert relay.usage["prompt_tokens_details"]["cached_tokens"] == 4


def test_opening_events_wait_for_the_first_output():
    req = _req()
    relay = ADAPTER.native_relay(req)
    events = _decode(_stream())
    assert relay.feed(events[0]) == [] and relay.feed(events[1]) == []
    first = _decode(b"".join(relay.feed(events[2])))
    assert [e.event for e in first] == ["response.created", "response.in_progress", "response.output_item.added"]


def test_a_failed_response_raises():
    failed = _response("failed", [])
    failed["error"] = {"code": "server_error", "message": "boom"}
    raw = _stream([EVENTS[0], ("response.failed", {"response": failed})])
    relay = ADAPTER.native_relay(_req())
    with pytest.raises(GatewayError) as exc:
        for event in _decode(raw):
            relay.feed(event)
    assert "boom" in exc.value.message and exc.value.status == 502


def test_a_cut_stream_is_incomplete():
    relay = ADAPTER.native_relay(_req())
    for event in _decode(_stream(EVENTS[:5])):
        relay.feed(event)
    with pytest.raises(GatewayError) as exc:
        relay.finish()
    assert exc.value.code == "upstream_incomplete_stream" and not exc.value.retryable


def test_the_body_goes_to_the_responses_endpoint_with_the_model_renamed():
    up = ADAPTER.build_native_request(_req())
    assert up.url == "https://api.openai.test/v1/responses"
    assert orjson.loads(up.body) == {"model": "gpt-5", "input": [], "store": False}
    assert ("authorization", "Bearer sk-secret") in up.headers


def test_a_json_answer_is_renamed_and_its_usage_read():
    answer, usage = ADAPTER.parse_native_response(_req(), orjson.dumps(_response("completed", [MESSAGE], USAGE)))
    assert answer["id"] == "resp_lunos" and answer["model"] == "openai/gpt-5"
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 3


def test_only_providers_with_the_responses_api_take_the_door():
    plain = OpenAIAdapter(ProviderConfig("mistral", "openai", "https://mistral.test/v1", "k"))
    assert ADAPTER.native_doors == {"responses"} and plain.native_doors == frozenset()

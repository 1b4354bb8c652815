"""Chat completions and chunks -> OpenAI Responses objects and stream events.

Streams are read by the official `openai` SDK through its own stream machinery
(`responses.stream(...).get_final_response()`, which runs `ResponseStreamState`) over an
in-process transport, from the bytes `sse_event` writes. Recorded transcripts
(tests/fixtures/, /work/shared/fixtures/) go through the real provider stream translators
first, as they do in the gateway.
"""

from __future__ import annotations

import json

import httpx2 as httpx
import openai
import pytest
from openai.types.responses import Response

from lunos.gateway.doors.messages_in import SIGNATURE_PREFIX, read_signature
from lunos.gateway.doors.responses_in import input_items, to_chat, validate_responses
from lunos.gateway.doors.responses_out import ResponsesStream, sse_event, to_response
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from lunos.gateway.providers.google import GoogleAdapter

from .test_messages_out import (
    ANTHROPIC_STREAMS,
    FIXTURES,
    GEMINI_STREAMS,
    chunk,
    fold,
    replay_anthropic,
    replay_gemini,
    usage_chunk,
)

REQUEST = {"model": "google/gemini-3-pro-preview", "input": "go"}
WEATHER = {"type": "function", "name": "weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def read_events(raw: bytes) -> list[tuple[str, dict]]:
    """Framed events read back, each exactly `event: NAME` then `data: JSON` then a blank line."""
    events = []
    for block in raw.split(b"\n\n")[:-1]:
        event, data = block.split(b"\n")
        assert event.startswith(b"event: ") and data.startswith(b"data: ")
        events.append((event[7:].decode(), json.loads(data[6:])))
    assert raw.endswith(b"\n\n") or raw == b""
    return events


class Translator(ResponsesStream):
    """The stream translator with what it writes read back as (name, data) pairs."""

    def feed(self, chunk: dict) -> list[tuple[str, dict]]:
        return read_events(super().feed(chunk))

    def finish(self) -> list[tuple[str, dict]]:
        return read_events(super().finish())

    def fail(self, error: GatewayError) -> list[tuple[str, dict]]:
        return read_events(super().fail(error))


def run(chunks: list[dict], request: dict | None = None) -> tuple[ResponsesStream, list[tuple[str, dict]]]:
    stream = Translator("resp_1", "google/gemini-3-pro-preview", 1_700_000_000, request or REQUEST)
    events = []
    for c in chunks:
        events.extend(stream.feed(c))
    events.extend(stream.finish())
    return stream, events


def client(raw: bytes, status: int = 200, content_type: str = "text/event-stream") -> openai.OpenAI:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"content-type": content_type}, content=raw)

    return openai.OpenAI(api_key="test", base_url="http://gateway.test/v1",
                         http_client=httpx.Client(transport=httpx.MockTransport(answer)))


def sdk_final(events: list[tuple[str, dict]], request: dict | None = None):
    """The openai SDK reading the events as a streamed /v1/responses answer: (its final
    response, the events it handed out)."""
    numbers = [d["sequence_number"] for _, d in events]
    assert numbers == list(range(len(events)))
    assert all(d["type"] == n for n, d in events)
    raw = b"".join(sse_event(n, d) for n, d in events)
    request = request or REQUEST
    with client(raw).responses.stream(model=request["model"], input=request["input"],
                                      tools=request.get("tools", openai.omit)) as s:
        seen = list(s)
        # An incomplete response ends with `response.incomplete`, which the SDK hands out
        # with the output it accumulated; only a completed one has a final response.
        final = seen[-1].response if seen[-1].type == "response.incomplete" else s.get_final_response()
    assert unparsed(final.to_dict()) == Response.model_validate(events[-1][1]["response"]).to_dict()
    return final, seen


def unparsed(value):
    """A parsed response without the fields the SDK's parse step adds."""
    if isinstance(value, dict):
        return {k: unparsed(v) for k, v in value.items() if k not in ("parsed", "parsed_arguments")}
    if isinstance(value, list):
        return [unparsed(v) for v in value]
    return value


def echo(response: dict, outputs: dict[str, str] | None = None) -> dict:
    """What a client sends next: the output echoed, each call answered -> the chat
    assistant turn it becomes."""
    items = input_items({"input": [{"role": "user", "content": "go"}, *response["output"]]})
    items += [{"type": "function_call_output", "call_id": c, "output": o} for c, o in (outputs or {}).items()]
    items += input_items({"input": "next"})
    body = {"model": "anthropic/claude-x", "input": "next"}
    validate_responses({**body, "input": items})
    chat, dropped = to_chat(body, items, drop=False)
    assert dropped == []
    return chat["messages"][1]


# ---------------------------------------------------------------- recorded streams


@pytest.mark.parametrize("path", [p for p in GEMINI_STREAMS if "error" not in p.name], ids=lambda p: p.name)
def test_gemini_transcripts_build_the_same_response_in_the_sdk_and_keep_every_signature(path):
    chunks = replay_gemini(path)
    folded = fold(chunks)
    stream, events = run(chunks)
    final, _ = sdk_final(events)
    assert stream.response == events[-1][1]["response"]
    assert final.id == "resp_1" and final.model == "google/gemini-3-pro-preview"
    assert final.output_text == folded["content"]
    calls = [o for o in final.output if o.type == "function_call"]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in folded["tool_calls"]]
    finish = next(c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    assert final.status == ("incomplete" if finish in ("length", "content_filter") else "completed")
    usage = next(c["usage"] for c in reversed(chunks) if c.get("usage"))
    assert final.usage.input_tokens == usage["prompt_tokens"]
    assert final.usage.output_tokens == usage["completion_tokens"]
    assert final.usage.output_tokens_details.reasoning_tokens == usage["completion_tokens_details"]["reasoning_tokens"]
    summary = "".join(s.text for o in final.output if o.type == "reasoning" for s in o.summary)
    assert summary == folded["reasoning_content"]
    # Round trip: the echoed output gives Gemini back every signature it sent.
    back = echo(final.to_dict(), {c.call_id: "done" for c in calls})
    assert back.get("reasoning_details", []) == folded["reasoning_details"]
    assert back.get("reasoning_content", "") == folded["reasoning_content"]
    assert [c.get("extra_content") for c in back.get("tool_calls", [])] == [
        c.get("extra_content") for c in folded["tool_calls"]]


@pytest.mark.parametrize("path", [p for p in ANTHROPIC_STREAMS if "error" not in p.name], ids=lambda p: p.name)
def test_anthropic_transcripts_build_the_same_response_in_the_sdk_and_keep_thinking_signed(path):
    chunks = replay_anthropic(path)
    folded = fold(chunks)
    _, events = run(chunks)
    final, _ = sdk_final(events)
    assert final.output_text == folded["content"]
    calls = [o for o in final.output if o.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in folded["tool_calls"]]
    back = echo(final.to_dict(), {c.call_id: "ok" for c in calls})
    assert back.get("reasoning_details", []) == folded["reasoning_details"]
    cited = [a for c in chunks for ch in c.get("choices") or () for a in ch["delta"].get("annotations") or ()]
    got = [a for o in final.output if o.type == "message" for p in o.content for a in p.annotations]
    assert [(a.url, a.start_index, a.end_index) for a in got] == [
        (a["url_citation"]["url"], a["url_citation"]["start_index"], a["url_citation"]["end_index"]) for a in cited]


# ---------------------------------------------------------------- events


ARGUMENT_PIECES = ['{"loc', 'ation": "Par', "is", '"', ', "unit": "c"}']


def test_arguments_stream_piece_by_piece_and_the_sdk_builds_the_call():
    stream = Translator("resp_1", "m", 1, {"model": "m", "input": "go", "tools": [WEATHER]})
    head = stream.feed(chunk({"role": "assistant", "content": ""}))
    assert [n for n, _ in head] == ["response.created", "response.in_progress"]
    added = stream.feed(chunk({"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function",
                                               "function": {"name": "weather", "arguments": ""}}]}))
    assert [n for n, _ in added] == ["response.output_item.added"]
    item = added[0][1]["item"]
    assert item["call_id"] == "toolu_1" and item["id"].startswith("fc_") and item["status"] == "in_progress"
    pieces = []
    for piece in ARGUMENT_PIECES:
        events = stream.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        assert [(n, d["delta"], d["item_id"], d["output_index"]) for n, d in events] == [
            ("response.function_call_arguments.delta", piece, item["id"], 0)]
        pieces += events
    end = stream.feed(chunk({}, "tool_calls"))
    assert [n for n, _ in end] == ["response.function_call_arguments.done", "response.output_item.done"]
    assert end[0][1]["arguments"] == "".join(ARGUMENT_PIECES)
    tail = stream.feed(usage_chunk())
    assert [n for n, _ in tail] == ["response.completed"]
    final, seen = sdk_final([*head, *added, *pieces, *end, *tail], {"model": "m", "input": "go", "tools": [WEATHER]})
    call = final.output[0]
    assert (call.call_id, call.name, json.loads(call.arguments)) == ("toolu_1", "weather", {"location": "Paris", "unit": "c"})
    assert [e.delta for e in seen if e.type == "response.function_call_arguments.delta"] == ARGUMENT_PIECES


def test_text_events_in_openais_order_and_usage_waits_for_its_chunk():
    stream = Translator("resp_1", "m", 1, {"model": "m", "input": "go"})
    events = stream.feed(chunk({"content": "Hel"})) + stream.feed(chunk({"content": "lo"}))
    held = stream.feed(chunk({}, "stop"))
    assert [n for n, _ in events + held] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done"]
    done = stream.feed(usage_chunk(prompt=100, completion=7, cached=60, written=30, cost=0.0012))
    assert [n for n, _ in done] == ["response.completed"]
    assert done[0][1]["response"]["usage"] == {
        "input_tokens": 100, "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30},
        "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 107, "cost": 0.0012}
    assert stream.finish() == []
    delta = events[4][1]
    assert delta == {"type": "response.output_text.delta", "sequence_number": 4, "item_id": delta["item_id"],
                     "output_index": 0, "content_index": 0, "delta": "Hel", "logprobs": []}
    final, seen = sdk_final(events + held + done, {"model": "m", "input": "go"})
    assert final.output_text == "Hello" and final.status == "completed"
    assert [e.snapshot for e in seen if e.type == "response.output_text.delta"] == ["Hel", "Hello"]


def test_length_is_incomplete_with_its_reason():
    _, events = run([chunk({"content": "cut"}), chunk({}, "length"), usage_chunk()])
    name, data = events[-1]
    assert name == "response.incomplete"
    response = Response.model_validate(data["response"])
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete" and response.output_text == "cut"


def test_reasoning_streams_as_a_summary_and_carries_its_signature():
    entry = {"type": "reasoning.text", "text": "Let me think.", "signature": "sig", "format": "anthropic-claude-v1",
             "index": 0}
    _, events = run([chunk({"reasoning_content": "Let me "}), chunk({"reasoning_content": "think."}),
                          chunk({"reasoning_details": [entry]}), chunk({"content": "42"}), chunk({}, "stop"),
                          usage_chunk()])
    names = [n for n, _ in events]
    assert names[2:6] == ["response.output_item.added", "response.reasoning_summary_part.added",
                          "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta"]
    assert names[6:9] == ["response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
                          "response.output_item.done"]
    final, _ = sdk_final(events)
    reasoning, message = final.output
    assert [s.text for s in reasoning.summary] == ["Let me think."]
    assert read_signature(reasoning.encrypted_content) == ([entry], {})
    assert message.content[0].text == "42"
    back = echo(final.to_dict())
    assert back == {"role": "assistant", "content": "42", "reasoning_content": "Let me think.",
                    "reasoning_details": [entry]}


def test_reasoning_state_that_comes_late_gets_its_own_item_at_the_end():
    entry = {"type": "reasoning.encrypted", "data": "sig", "format": "google-gemini-v1", "index": 0}
    _, events = run([chunk({"content": "a"}), chunk({"reasoning_details": [entry]}), chunk({}, "stop")])
    final, _ = sdk_final(events)
    assert [o.type for o in final.output] == ["message", "reasoning"]
    assert final.output[1].summary == [] and read_signature(final.output[1].encrypted_content) == ([entry], {})


def test_interleaved_calls_stream_under_their_own_output_index():
    pieces = [(0, "a", "f", '{"x"'), (1, "b", "g", '{"y"'), (0, None, None, ": 1}"), (1, None, None, ": 2}")]
    chunks = []
    for index, call_id, name, args in pieces:
        piece = {"index": index, "function": {"arguments": args}}
        if call_id:
            piece |= {"id": call_id, "type": "function"}
            piece["function"]["name"] = name
        chunks.append(chunk({"tool_calls": [piece]}))
    _, events = run([*chunks, chunk({}, "tool_calls"), usage_chunk()])
    final, _ = sdk_final(events)
    assert [(o.call_id, o.name, json.loads(o.arguments)) for o in final.output] == [("a", "f", {"x": 1}), ("b", "g", {"y": 2})]
    deltas = [(d["output_index"], d["delta"]) for n, d in events if n == "response.function_call_arguments.delta"]
    assert deltas == [(0, '{"x"'), (1, '{"y"'), (0, ": 1}"), (1, ": 2}")]


def test_text_after_a_call_is_a_new_message_item():
    _, events = run([chunk({"content": "Checking."}),
                     chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]}),
                     chunk({"content": "More."}), chunk({}, "tool_calls")])
    final, _ = sdk_final(events)
    assert [o.type for o in final.output] == ["message", "function_call", "message"]
    assert final.output_text == "Checking.More."


def test_web_search_annotations_are_added_to_the_open_text():
    cite = {"type": "url_citation", "url_citation": {"url": "https://example.com/a", "title": "A", "content": "snip",
                                                      "start_index": 6, "end_index": 9}}
    _, events = run([chunk({"content": "Found "}), chunk({"content": "[1]"}), chunk({"annotations": [cite]}),
                     chunk({}, "stop"), usage_chunk()])
    added = [d for n, d in events if n == "response.output_text.annotation.added"]
    flat = {"type": "url_citation", "start_index": 6, "end_index": 9, "url": "https://example.com/a", "title": "A"}
    assert [(d["annotation_index"], d["annotation"]) for d in added] == [(0, flat)]
    final, _ = sdk_final(events)
    assert final.output[0].content[0].annotations[0].to_dict() == flat


def test_a_namespaced_call_gets_its_namespace_back():
    request = {"model": "m", "input": "go", "tools": [
        {"type": "namespace", "name": "crm", "description": "CRM", "tools": [WEATHER]}]}
    _, events = run([chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "crm__weather",
                                                                               "arguments": "{}"}}]}),
                     chunk({}, "tool_calls")], request)
    item = events[-1][1]["response"]["output"][0]
    assert (item["namespace"], item["name"]) == ("crm", "weather")


def test_a_refusal_is_a_refusal_part():
    _, events = run([chunk({"refusal": "I can't"}), chunk({"refusal": " help."}), chunk({}, "stop")])
    names = [n for n, _ in events]
    assert "response.refusal.delta" in names and "response.refusal.done" in names
    final, _ = sdk_final(events)
    assert final.output[0].content[0].to_dict() == {"type": "refusal", "refusal": "I can't help."}


def test_text_deltas_are_framed_exactly_as_every_other_event():
    """Text deltas, most of a stream, are framed from pieces made once per content part;
    the bytes are the ones the generic framing writes for the same event."""
    stream = ResponsesStream("resp_1", "m", 1, {"model": "m", "input": "go"})
    stream.feed(chunk({"content": "first"}))
    for text in ("plain", 'quote " and \\ backslash', "üñí 😀", "line\nbreak\u2028", "</script>"):
        raw = stream.feed(chunk({"content": text}))
        name, data = read_events(raw)[0]
        assert data["delta"] == text
        assert raw == sse_event(name, data)


def test_failure_after_the_start_is_response_failed():
    stream = Translator("resp_1", "m", 1, {"model": "m", "input": "go"})
    started = stream.feed(chunk({"content": "par"}))
    failed = stream.fail(GatewayError(502, "the provider failed", code="upstream_error"))
    assert [n for n, _ in failed] == ["response.failed"]
    data = failed[0][1]
    assert data["sequence_number"] == started[-1][1]["sequence_number"] + 1
    response = Response.model_validate(data["response"])
    assert response.status == "failed" and response.error.code == "server_error"
    assert response.error.message == "the provider failed"
    assert stream.response == data["response"] and stream.finish() == []
    limited = Translator("r", "m", 1, {"model": "m", "input": "go"}).fail(GatewayError(429, "slow down"))
    assert limited[-1][1]["response"]["error"]["code"] == "rate_limit_exceeded"


def test_an_empty_stream_is_still_a_whole_response():
    _, events = run([])
    final, _ = sdk_final(events)
    assert final.output == [] and final.status == "completed"


# ---------------------------------------------------------------- non-streamed


def completion(message: dict, finish="stop", usage=None) -> dict:
    return {"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assistant", **message},
                                             "finish_reason": finish}],
            "usage": usage or usage_chunk()["usage"]}


def test_to_response_orders_reasoning_text_calls_and_echoes_the_request():
    details = [{"type": "reasoning.text", "text": "hmm", "signature": "sig1", "format": "anthropic-claude-v1", "index": 0}]
    request = {"model": "anthropic/claude-x", "input": "go", "instructions": "Be brief.", "tools": [WEATHER],
               "max_output_tokens": 500, "temperature": 0.2, "metadata": {"k": "v"}, "store": False,
               "reasoning": {"effort": "high"}, "text": {"format": {"type": "text"}}, "previous_response_id": "resp_0"}
    response = to_response(completion({
        "content": "Sure.", "reasoning_content": "hmm", "reasoning_details": details,
        "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}}]},
        "tool_calls", usage_chunk(prompt=50, completion=9, cached=20, cost=0.5)["usage"]),
        response_id="resp_9", model="anthropic/claude-x", created_at=123, request=request)
    parsed = Response.model_validate(response)
    assert parsed.output_text == "Sure."
    reasoning, message, call = parsed.output
    assert reasoning.id.startswith("rs_") and reasoning.summary[0].text == "hmm"
    assert reasoning.encrypted_content.startswith(SIGNATURE_PREFIX)
    assert message.id.startswith("msg_") and message.status == "completed" and message.role == "assistant"
    assert (call.id[:3], call.call_id, call.name, call.arguments, call.status) == (
        "fc_", "toolu_1", "weather", '{"city": "Rome"}', "completed")
    assert (parsed.id, parsed.created_at, parsed.status, parsed.error, parsed.incomplete_details) == (
        "resp_9", 123, "completed", None, None)
    assert (parsed.instructions, parsed.max_output_tokens, parsed.temperature, parsed.metadata, parsed.store,
            parsed.previous_response_id, parsed.reasoning.effort) == (
        "Be brief.", 500, 0.2, {"k": "v"}, False, "resp_0", "high")
    assert parsed.tools[0].name == "weather" and parsed.tool_choice == "auto" and parsed.parallel_tool_calls
    assert response["usage"] == {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 0},
                                 "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 0},
                                 "total_tokens": 59, "cost": 0.5}
    back = echo(response, {"toolu_1": "sunny"})
    assert back["reasoning_details"] == details and back["tool_calls"][0]["id"] == "toolu_1"


@pytest.mark.parametrize(("finish", "status", "reason"), [
    ("stop", "completed", None), ("tool_calls", "completed", None), ("length", "incomplete", "max_output_tokens"),
    ("content_filter", "incomplete", "content_filter"), (None, "completed", None)])
def test_statuses(finish, status, reason):
    response = to_response(completion({"content": "x"}, finish), response_id="r", model="m", created_at=1,
                           request={"model": "m", "input": "x"})
    assert response["status"] == status
    assert response["incomplete_details"] == ({"reason": reason} if reason else None)


def test_web_search_citations_become_flat_annotations():
    cite = {"type": "url_citation", "url_citation": {"url": "https://e.com", "title": "E", "content": "c",
                                                      "start_index": 0, "end_index": 3}}
    response = to_response(completion({"content": "[1] ok", "annotations": [cite]}), response_id="r", model="m",
                           created_at=1, request={"model": "m", "input": "x"})
    assert response["output"][0]["content"][0]["annotations"] == [
        {"type": "url_citation", "start_index": 0, "end_index": 3, "url": "https://e.com", "title": "E"}]


def test_the_sdk_reads_a_json_response_and_its_output_text():
    response = to_response(completion({"content": "Hello there."}), response_id="resp_x", model="m", created_at=5,
                           request={"model": "m", "input": "hi"})
    got = client(json.dumps(response).encode(), content_type="application/json").responses.create(model="m", input="hi")
    assert got.output_text == "Hello there." and got.id == "resp_x"


def test_a_gemini_completion_round_trips_its_signatures_through_the_items():
    body = (FIXTURES / "gemini" / "parallel_calls.json").read_bytes()
    req = ChatRequest({"model": "google/gemini-3-flash-preview", "messages": [{"role": "user", "content": "x"}]},
                      "google/gemini-3-flash-preview", "google", "gemini-3-flash-preview")
    done = GoogleAdapter(ProviderConfig("google", "google", "https://g.example", "k")).parse_response(req, 200, body)
    original = json.loads(json.dumps(done["choices"][0]["message"]))
    response = to_response(done, response_id="r", model="m", created_at=1, request={"model": "m", "input": "x"})
    calls = [o for o in response["output"] if o["type"] == "function_call"]
    back = echo(response, {c["call_id"]: "ok" for c in calls})
    assert back["tool_calls"] == original["tool_calls"]
    assert back.get("reasoning_details") == original.get("reasoning_details")

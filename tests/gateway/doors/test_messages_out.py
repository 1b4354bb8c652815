"""Chat completions and chunks -> Anthropic messages and stream events.

Streams are checked twice: by the event grammar Anthropic documents (`assert_well_formed`)
and by the official `anthropic` SDK, which reads the bytes `sse_event` writes through its
own stream machinery (`messages.stream(...).get_final_message()`) over an in-process
transport. Recorded transcripts (tests/fixtures/, /work/shared/fixtures/) go through the
real provider stream translators first, as they do in the gateway.
"""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import httpx2 as httpx
import orjson
import pytest

from lunos._sse import SSEDecoder
from lunos.gateway.doors.messages_in import SIGNATURE_PREFIX, read_signature, to_chat
from lunos.gateway.doors.messages_out import MessagesStream, sse_event, to_message
from lunos.gateway.providers.anthropic import AnthropicAdapter
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from lunos.gateway.providers.google import GoogleAdapter

FIXTURES = Path(__file__).parents[2] / "fixtures"
SHARED = Path("/work/shared/fixtures/gemini")
GEMINI_STREAMS = sorted(FIXTURES.glob("gemini/*.chunks.jsonl")) + sorted(SHARED.glob("*.chunks.jsonl"))
ANTHROPIC_STREAMS = sorted(FIXTURES.glob("anthropic/*.sse"))


# ---------------------------------------------------------------- helpers


def chunk(delta: dict, finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def usage_chunk(prompt=10, completion=5, cached=0, written=0, cost=None) -> dict:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
             "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
             "completion_tokens_details": {"reasoning_tokens": 0}}
    if cost is not None:
        usage["cost"] = cost
    return {"choices": [], "usage": usage}


def run(chunks: list[dict], model="openai/gpt-x", message_id="msg_test") -> list[tuple[str, dict]]:
    stream = MessagesStream(model, message_id)
    events = []
    for c in chunks:
        events.extend(stream.feed(c))
    events.extend(stream.finish())
    return events


def assert_well_formed(events: list[tuple[str, dict]]) -> None:
    """Anthropic's event grammar: message_start, ping, blocks one at a time with indexes
    0, 1, ... and deltas of their own kind, then message_delta and message_stop."""
    names = [n for n, _ in events]
    assert names[:2] == ["message_start", "ping"], names
    assert names[-2:] == ["message_delta", "message_stop"], names
    assert names.count("message_start") == names.count("message_delta") == names.count("message_stop") == 1
    kinds = {"text": {"text_delta"}, "tool_use": {"input_json_delta"},
             "thinking": {"thinking_delta", "signature_delta"}, "redacted_thinking": set()}
    open_block, expected = None, 0
    for name, data in events:
        assert data["type"] == name
        if name == "content_block_start":
            assert open_block is None, "a block started inside another"
            assert data["index"] == expected
            open_block = data["content_block"]["type"]
        elif name == "content_block_delta":
            assert open_block is not None and data["index"] == expected
            assert data["delta"]["type"] in kinds[open_block], (open_block, data)
        elif name == "content_block_stop":
            assert open_block is not None and data["index"] == expected
            open_block, expected = None, expected + 1
        elif name in ("message_delta", "message_stop"):
            assert open_block is None


def sdk_stream(raw: bytes):
    """The anthropic SDK reading `raw` as the body of a streamed /v1/messages answer:
    (its final message, the events it parsed)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    client = anthropic.Anthropic(api_key="test", base_url="http://gateway.test",
                                 http_client=httpx.Client(transport=httpx.MockTransport(answer)))
    with client.messages.stream(model="m", max_tokens=100, messages=[{"role": "user", "content": "x"}]) as s:
        seen = list(s)
        return s.get_final_message(), seen


def sdk_final(events: list[tuple[str, dict]]):
    assert_well_formed(events)
    return sdk_stream(b"".join(sse_event(n, d) for n, d in events))


def replay_gemini(path: Path) -> list[dict]:
    req = ChatRequest({"model": "google/gemini-3-pro-preview", "messages": [{"role": "user", "content": "x"}],
                       "stream": True}, "google/gemini-3-pro-preview", "google", "gemini-3-pro-preview", stream=True)
    t = GoogleAdapter(ProviderConfig("google", "google", "https://gemini.example", "k")).stream_translator(req)
    decoder, out = SSEDecoder(), []
    for line in path.read_text().splitlines():
        for event in decoder.feed(b"data: " + line.encode() + b"\n\n"):
            out.extend(t.feed(event))
    out.extend(t.finish())
    return out


def replay_anthropic(path: Path) -> list[dict]:
    req = ChatRequest({"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}],
                       "stream": True}, "anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", stream=True)
    adapter = AnthropicAdapter(ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", "k"))
    t, decoder, out = adapter.stream_translator(req), SSEDecoder(), []
    for event in decoder.feed(path.read_bytes()):
        out.extend(t.feed(event))
    for event in decoder.flush():
        out.extend(t.feed(event))
    out.extend(t.finish())
    return out


def fold(chunks: list[dict]) -> dict:
    """Chat chunks -> the assistant message they add up to (as a client would fold them)."""
    message: dict = {"role": "assistant", "content": "", "reasoning_content": "", "reasoning_details": []}
    calls: dict[int, dict] = {}
    for c in chunks:
        for choice in c.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            d = choice["delta"]
            message["content"] += d.get("content") or ""
            message["reasoning_content"] += d.get("reasoning_content") or ""
            message["reasoning_details"] += d.get("reasoning_details") or []
            for piece in d.get("tool_calls") or ():
                call = calls.setdefault(piece["index"], {"id": None, "type": "function",
                                                         "function": {"name": "", "arguments": ""}})
                call["id"] = piece.get("id") or call["id"]
                call["function"]["name"] += (piece.get("function") or {}).get("name") or ""
                call["function"]["arguments"] += (piece.get("function") or {}).get("arguments") or ""
                if piece.get("extra_content"):
                    call["extra_content"] = piece["extra_content"]
    message["tool_calls"] = [calls[k] for k in sorted(calls)]
    return message


def echo(final_content: list[dict], tool_ids: list[str]) -> dict:
    """What an agent sends next: the answer echoed, each tool answered."""
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "content": final_content}]
    if tool_ids:
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": i, "content": "done"} for i in tool_ids]})
    else:
        messages.append({"role": "user", "content": "next"})
    chat, dropped = to_chat({"model": "m", "max_tokens": 64, "messages": messages}, drop=False)
    assert dropped == []
    return chat["messages"][1]


# ---------------------------------------------------------------- recorded streams


@pytest.mark.parametrize("path", [p for p in GEMINI_STREAMS if "error" not in p.name], ids=lambda p: p.name)
def test_gemini_transcripts_build_the_same_message_in_the_sdk_and_keep_every_signature(path):
    chunks = replay_gemini(path)
    folded = fold(chunks)
    final, _ = sdk_final(run(chunks, "google/gemini-3-pro-preview", "msg_g"))
    assert final.id == "msg_g" and final.model == "google/gemini-3-pro-preview"
    assert "".join(b.text for b in final.content if b.type == "text") == folded["content"]
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [(u.id, u.name, u.input) for u in uses] == [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in folded["tool_calls"]]
    finish = next(c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    assert final.stop_reason == {"stop": "end_turn", "tool_calls": "tool_use", "content_filter": "refusal",
                                 "length": "max_tokens"}[finish]
    usage = next(c["usage"] for c in reversed(chunks) if c.get("usage"))
    assert final.usage.input_tokens == usage["prompt_tokens"] - usage["prompt_tokens_details"]["cached_tokens"]
    assert final.usage.output_tokens == usage["completion_tokens"]
    # Round trip: the echoed message gives Gemini back every signature it sent.
    back = echo([b.to_dict() for b in final.content], [u.id for u in uses])
    assert back.get("reasoning_details", []) == folded["reasoning_details"]
    assert back.get("reasoning_content", "") == folded["reasoning_content"]
    assert [c.get("extra_content") for c in back.get("tool_calls", [])] == [
        c.get("extra_content") for c in folded["tool_calls"]]


# missing_usage_response.sse has no usage in message_start, which the SDK itself cannot read.
@pytest.mark.parametrize("path", [p for p in ANTHROPIC_STREAMS if "error" not in p.name and "missing_usage" not in p.name],
                         ids=lambda p: p.name)
def test_anthropic_transcripts_translated_and_back_match_what_the_sdk_read_from_the_original(path):
    original, _ = sdk_stream(path.read_bytes())
    final, _ = sdk_final(run(replay_anthropic(path)))
    kept = [b.to_dict() for b in original.content if b.type in ("text", "tool_use", "thinking", "redacted_thinking")]
    kept = [b for b in kept if b["type"] != "text" or b["text"]]  # chat has no empty text blocks
    ours = [b.to_dict() for b in final.content]
    for block in kept:
        block.pop("citations", None)  # web search citations become chat annotations, not blocks
        block.pop("caller", None)  # who called a tool: no chat counterpart
    if any(b["type"] == "text" for b in kept):  # chat joins a message's text blocks into one
        text = "".join(b["text"] for b in kept if b["type"] == "text")
        first = next(i for i, b in enumerate(kept) if b["type"] == "text")
        kept = [b for b in kept if b["type"] != "text"]
        kept.insert(first, {"type": "text", "text": text})
    for block in ours:
        block.pop("citations", None)
    assert ours == kept
    assert final.stop_reason == original.stop_reason
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        assert (getattr(final.usage, name) or 0) == (getattr(original.usage, name) or 0), name


def test_usage_that_comes_only_at_the_end_reaches_the_sdk():
    path = FIXTURES / "anthropic" / "missing_usage_response.sse"
    delta = next(json.loads(line[6:]) for line in path.read_text().splitlines()
                 if line.startswith("data: ") and '"message_delta"' in line)
    final, _ = sdk_final(run(replay_anthropic(path)))
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        assert getattr(final.usage, name) == (delta["usage"].get(name) or 0), name


# ---------------------------------------------------------------- tool calls


ARGUMENT_PIECES = ['{"loc', 'ation": "Par', "is", '"', ', "unit": "c"}']


def test_tool_arguments_stream_piece_by_piece_as_they_arrive():
    stream = MessagesStream("m", "msg_1")
    stream.feed(chunk({"role": "assistant", "content": ""}))
    head = stream.feed(chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                              "function": {"name": "weather", "arguments": ""}}]}))
    assert [n for n, _ in head] == ["content_block_start"]
    assert head[0][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "weather", "input": {}}
    for piece in ARGUMENT_PIECES:
        events = stream.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        assert events == [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "input_json_delta", "partial_json": piece}})]
    events = stream.feed(chunk({}, "tool_calls")) + stream.feed(usage_chunk()) + stream.finish()
    final, seen = sdk_final([*MessagesStream("m", "msg_1")._start(), *head, *[
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": p}}) for p in ARGUMENT_PIECES],
        *events])
    assert final.content[0].input == {"location": "Paris", "unit": "c"}
    assert final.stop_reason == "tool_use"
    assert [e.delta.partial_json for e in seen if e.type == "content_block_delta"] == ARGUMENT_PIECES


def test_sequential_calls_each_stream_live_as_openai_sends_them():
    stream = MessagesStream("m", "msg_1")
    stream.feed(chunk({"content": "Checking."}))
    first = stream.feed(chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x":'}}]}))
    more = stream.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}))
    second = stream.feed(chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}]}))
    assert [n for n, _ in first] == ["content_block_stop", "content_block_start", "content_block_delta"]
    assert more[0][1]["delta"]["partial_json"] == " 1}"
    assert [n for n, _ in second] == ["content_block_stop", "content_block_start", "content_block_delta"]
    assert second[1][1]["content_block"]["id"] == "b" and second[1][1]["index"] == 2


def test_interleaved_calls_become_whole_blocks_in_order():
    pieces = [(0, "a", "f", '{"x"'), (1, "b", "g", '{"y"'), (0, None, None, ": 1"), (1, None, None, ": 2}"),
              (2, "c", "h", "{}"), (0, None, None, "}")]
    chunks = []
    for index, call_id, name, args in pieces:
        piece = {"index": index, "function": {"arguments": args}}
        if call_id:
            piece |= {"id": call_id, "type": "function"}
            piece["function"]["name"] = name
        chunks.append(chunk({"tool_calls": [piece]}))
    events = run([*chunks, chunk({}, "tool_calls"), usage_chunk()])
    final, _ = sdk_final(events)
    assert [(b.id, b.name, b.input) for b in final.content] == [
        ("a", "f", {"x": 1}), ("b", "g", {"y": 2}), ("c", "h", {})]
    # The first call streamed live; the others waited only until it was whole.
    starts = [i for i, (n, _) in enumerate(events) if n == "content_block_start"]
    assert events[starts[0] + 1][1]["delta"]["partial_json"] == '{"x"'


def test_whole_calls_sent_without_an_index_stay_apart():
    calls = [{"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
             {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]
    final, _ = sdk_final(run([chunk({"tool_calls": calls}), chunk({}, "tool_calls")]))
    assert [(b.id, b.input) for b in final.content] == [("a", {"x": 1}), ("b", {})]


def test_a_call_whose_arguments_never_close_holds_the_next_until_the_end():
    events = run([chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x": '}}]}),
                  chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
                  chunk({}, "tool_calls")])
    assert_well_formed(events)
    starts = [d["content_block"]["id"] for n, d in events if n == "content_block_start"]
    assert starts == ["a", "b"]


# ---------------------------------------------------------------- message_delta and usage


def test_message_delta_waits_for_the_usage_chunk_and_maps_cache_tokens_and_cost():
    stream = MessagesStream("m", "msg_1")
    stream.feed(chunk({"content": "hi"}))
    held = stream.feed(chunk({}, "stop"))
    assert [n for n, _ in held] == ["content_block_stop"]
    done = stream.feed(usage_chunk(prompt=100, completion=7, cached=60, written=30, cost=0.0012))
    assert [n for n, _ in done] == ["message_delta", "message_stop"]
    assert done[0][1]["usage"] == {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 60,
                                   "cache_creation_input_tokens": 30, "cost": 0.0012}
    assert done[0][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert stream.finish() == []


def test_finish_without_usage_still_ends_the_message():
    events = run([chunk({"content": "hi"}), chunk({}, "length")])
    final, _ = sdk_final(events)
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 0
    assert final.content[0].text == "hi"


def test_usage_on_the_finish_chunk_itself_ends_at_once():
    stream = MessagesStream("m", "msg_1")
    last = chunk({"content": "x"}, "stop") | {"usage": usage_chunk()["usage"]}
    events = stream.feed(last)
    assert [n for n, _ in events][-2:] == ["message_delta", "message_stop"]


def test_an_empty_stream_is_still_a_whole_message():
    final, _ = sdk_final(run([]))
    assert final.content == [] and final.stop_reason == "end_turn"


# ---------------------------------------------------------------- reasoning in streams


def test_reasoning_text_without_signature_gets_a_gateway_signature_and_comes_back():
    events = run([chunk({"reasoning_content": "Let me "}), chunk({"reasoning_content": "think."}),
                  chunk({"content": "42"}), chunk({}, "stop"), usage_chunk()])
    final, _ = sdk_final(events)
    thinking, text = final.content
    assert thinking.thinking == "Let me think." and thinking.signature.startswith(SIGNATURE_PREFIX)
    assert text.text == "42"
    back = echo([b.to_dict() for b in final.content], [])
    assert back["reasoning_content"] == "Let me think." and "reasoning_details" not in back


def test_other_providers_reasoning_entries_travel_in_one_thinking_block_at_the_end():
    entry = {"type": "reasoning.summary", "summary": "s", "format": "openai-responses-v1", "index": 0}
    events = run([chunk({"content": "a"}), chunk({"reasoning_details": [entry]}), chunk({}, "stop")])
    final, _ = sdk_final(events)
    assert [b.type for b in final.content] == ["text", "thinking"]
    assert read_signature(final.content[1].signature) == ([entry], {})


# ---------------------------------------------------------------- non-streamed


def completion(message: dict, finish="stop", usage=None) -> dict:
    return {"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assistant", **message},
                                             "finish_reason": finish}],
            "usage": usage or usage_chunk()["usage"]}


def test_to_message_orders_thinking_text_tools_and_maps_usage():
    details = [{"type": "reasoning.text", "text": "hmm", "signature": "sig1", "format": "anthropic-claude-v1", "index": 0},
               {"type": "reasoning.encrypted", "data": "enc", "format": "anthropic-claude-v1", "index": 1}]
    message = to_message(completion({
        "content": "Sure.", "reasoning_content": "hmm", "reasoning_details": details,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": [1]}'}},
                       {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "not json"}}]},
        "tool_calls", usage_chunk(prompt=50, completion=9, cached=20, written=5, cost=0.5)["usage"]),
        "openai/gpt-x", "msg_9")
    assert message == {
        "id": "msg_9", "type": "message", "role": "assistant", "model": "openai/gpt-x",
        "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig1"},
                    {"type": "redacted_thinking", "data": "enc"},
                    {"type": "text", "text": "Sure."},
                    {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": [1]}},
                    {"type": "tool_use", "id": "call_2", "name": "g", "input": {}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 9, "cache_read_input_tokens": 20,
                  "cache_creation_input_tokens": 5, "cost": 0.5},
    }
    # What the SDK's own types make of it.
    parsed = anthropic.types.Message.model_validate(message)
    assert parsed.content[3].input == {"a": [1]}
    back = echo(message["content"], ["call_1", "call_2"])
    assert back["reasoning_details"] == details


@pytest.mark.parametrize(("finish", "calls", "reason"), [
    ("stop", False, "end_turn"), ("length", False, "max_tokens"), ("tool_calls", True, "tool_use"),
    ("content_filter", False, "refusal"), ("stop", True, "tool_use"), (None, False, "end_turn")])
def test_stop_reasons(finish, calls, reason):
    message = {"content": "x"}
    if calls:
        message["tool_calls"] = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    assert to_message(completion(message, finish), "m", "id")["stop_reason"] == reason


def test_a_refusal_is_the_text():
    out = to_message(completion({"content": None, "refusal": "I can't help."}, "content_filter"), "m", "id")
    assert out["content"] == [{"type": "text", "text": "I can't help."}] and out["stop_reason"] == "refusal"


def test_a_gemini_completion_round_trips_its_signatures_through_the_message():
    body = (FIXTURES / "gemini" / "parallel_calls.json").read_bytes()
    req = ChatRequest({"model": "google/gemini-3-flash-preview", "messages": [{"role": "user", "content": "x"}]},
                      "google/gemini-3-flash-preview", "google", "gemini-3-flash-preview")
    done = GoogleAdapter(ProviderConfig("google", "google", "https://g.example", "k")).parse_response(req, 200, body)
    original = done["choices"][0]["message"]
    message = to_message(done, "google/gemini-3-flash-preview", "msg_1")
    assert message["content"][0]["type"] == "thinking"
    assert message["content"][0]["signature"].startswith(SIGNATURE_PREFIX)
    calls = [b for b in message["content"] if b["type"] == "tool_use"]
    back = echo(message["content"], [c["id"] for c in calls])
    assert back["tool_calls"] == original["tool_calls"]
    assert back.get("reasoning_details") == original.get("reasoning_details")


def test_sse_event_bytes():
    assert sse_event("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert orjson.loads(sse_event("x", {"a": "é"}).split(b"data: ")[1]) == {"a": "é"}

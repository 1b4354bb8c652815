"""The Messages door (SPEC §9.1) judged by the official `anthropic` SDK against a running
gateway, on every built-in provider the stand-ins cover: Anthropic behind it passes through
untouched, OpenAI and Gemini are translated both ways.

Upstream requests are read back from the stand-ins (`upstreams.<provider>.requests`), and
what the SDK itself sent is caught by an httpx event hook, so pass-through is compared with
what really left the client, not with what the test meant to send.
"""

from __future__ import annotations

import base64
import json
import time

import anthropic
import httpx
import pytest

from tests.conftest import ANTHROPIC_KEY
from tests.gateway.doors.test_messages_standins import (
    CLAUDE_CODE_BETAS,
    DOCUMENT,
    WEATHER,
    claude_code_body,
    events,
)
from tests.gateway_process import MASTER_KEY
from tests.standins.harness import send_json
from tests.standins.images import PNG_1X1

ANTHROPIC = "anthropic/claude-sonnet-4-5"
PROVIDERS = [  # (Lunos model id, the stand-in that answers for it)
    pytest.param(ANTHROPIC, "anthropic", id="anthropic"),
    pytest.param("openai/gpt-4o", "openai", id="openai"),
    pytest.param("google/gemini-2.5-flash", "gemini", id="google"),
]
# Gemini 3 signs its function calls; the signature must survive the Messages round trip.
TOOL_PROVIDERS = [*PROVIDERS, pytest.param("google/gemini-3.5-flash", "gemini", id="google-3")]
# Gemini 2.5 thinks unasked (16 tokens in the stand-in), and bills the thoughts as output.
THOUGHTS = {"anthropic": 0, "openai": 0, "gemini": 16}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 60).decode()  # 68 bytes
ASK_WEATHER = [{"role": "user", "content": "What is the weather? Use get_weather"}]
MASTER = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def client(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0)


class Sent:
    """The requests an SDK client really sent (an event hook of its HTTP client)."""

    def __init__(self) -> None:
        self.requests: list = []

    def __call__(self, request) -> None:
        request.read()
        self.requests.append(request)

    @property
    def last_json(self) -> dict:
        return json.loads(self.requests[-1].content)


@pytest.fixture
def watched(gateway) -> tuple[anthropic.Anthropic, Sent]:
    sent = Sent()
    http = anthropic.DefaultHttpxClient(event_hooks={"request": [sent]}, timeout=30)
    yield anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, http_client=http), sent
    http.close()


def without_model(body: dict) -> str:
    """The body as ordered JSON text without `model` (order matters to a pass-through)."""
    return json.dumps({k: v for k, v in body.items() if k != "model"})


def text_of(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def wait_for_row(base: str, row_id: str) -> dict:
    deadline = time.monotonic() + 2
    while True:
        r = httpx.get(f"{base}/v1/logs/{row_id}", headers=MASTER, timeout=5)
        if r.status_code == 200 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            return r.json()
        time.sleep(0.02)


# ---------------------------------------------------------------- text, streams, images

@pytest.mark.parametrize(("model", "standin"), PROVIDERS)
def test_text_with_a_system_prompt(client, upstreams, model, standin):
    message = client.messages.create(model=model, max_tokens=200, system="Be brief.",
                                     messages=[{"role": "user", "content": "hello there"}])
    assert (message.type, message.role, message.model) == ("message", "assistant", model)
    assert text_of(message) == "You said: hello there"
    assert message.stop_reason == "end_turn"
    # The system prompt reached the model: 2 words of it, 2 of the question, 1 for the turn.
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 4 + THOUGHTS[standin])
    assert len(getattr(upstreams, standin).requests) == 1


@pytest.mark.parametrize(("model", "standin"), PROVIDERS)
def test_system_blocks_and_max_tokens(client, upstreams, model, standin):
    message = client.messages.create(
        model=model, max_tokens=2, system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello there"}]}])
    assert text_of(message) == "You said:"
    assert message.stop_reason == "max_tokens"
    assert message.usage.input_tokens == 4 + 2 + 1


@pytest.mark.parametrize(("model", "standin"), PROVIDERS)
def test_stream_with_text_stream_and_the_final_message(client, upstreams, model, standin):
    with client.messages.stream(model=model, max_tokens=200, system="Be brief.",
                                messages=[{"role": "user", "content": "hello there"}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "You said: hello there" and len(pieces) > 1
    assert text_of(final) == "You said: hello there"
    assert final.model == model and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 4 + THOUGHTS[standin])


def test_a_stream_has_the_whole_event_sequence(gateway, upstreams):
    """Raw events, as Claude Code reads them: message_start first, a ping, message_stop last."""
    for model in ("openai/gpt-4o", "google/gemini-2.5-flash", ANTHROPIC):
        r = httpx.post(f"{gateway.url}/v1/messages", timeout=30,
                       headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
                       json={"model": model, "max_tokens": 100, "stream": True,
                             "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
        names = [name for name, _ in events(r.text)]
        assert names[0] == "message_start" and names[-1] == "message_stop", (model, names)
        assert "ping" in names and names[-2] == "message_delta", (model, names)
        assert names.count("content_block_start") == names.count("content_block_stop") == 1, (model, names)


@pytest.mark.parametrize(("model", "standin"), PROVIDERS)
def test_a_base64_image(client, upstreams, model, standin):
    message = client.messages.create(model=model, max_tokens=200, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "What is this?"}]}])
    assert text_of(message) == "I see 1 image: image/png 68 bytes"


@pytest.mark.parametrize(("model", "standin"), PROVIDERS)
def test_an_image_by_url(client, upstreams, model, standin):
    url = upstreams.image_server.url + "/pixel.png"
    message = client.messages.create(model=model, max_tokens=200, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": url}}, {"type": "text", "text": "What is this?"}]}])
    if standin == "gemini":  # Gemini wants bytes: the gateway fetched them, guarded
        assert text_of(message) == f"I see 1 image: image/png {len(PNG_1X1)} bytes"
        assert upstreams.images.hits == ["/pixel.png"]
    else:  # Anthropic and OpenAI fetch URLs themselves
        assert text_of(message) == f"I see 1 image: url {url}"
        assert upstreams.images.hits == []


def test_a_bare_anthropic_model_id(client, upstreams):
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=100,
                                     messages=[{"role": "user", "content": "hi"}])
    assert text_of(message) == "You said: hi"
    assert message.model.endswith("claude-sonnet-4-5")
    assert upstreams.anthropic.last.json["model"] == "claude-sonnet-4-5"
    count = client.messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}])
    assert count.input_tokens == 2
    assert upstreams.anthropic.last.json["model"] == "claude-haiku-4-5"


def test_bearer_auth_works_like_x_api_key(gateway, upstreams):
    bearer = anthropic.Anthropic(base_url=gateway.url, auth_token=MASTER_KEY, max_retries=0)
    message = bearer.messages.create(model="openai/gpt-4o", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert text_of(message) == "You said: hi"


STOP_FIELD = {"anthropic": lambda b: b["stop_sequences"], "openai": lambda b: b["stop"],
              "gemini": lambda b: b["generationConfig"]["stopSequences"]}


@pytest.mark.parametrize(("model", "standin"), PROVIDERS)
def test_stop_sequences(client, upstreams, model, standin):
    message = client.messages.create(model=model, max_tokens=100, stop_sequences=["there"],
                                     messages=[{"role": "user", "content": "hello there friend"}])
    assert text_of(message) == "You said: hello "
    assert STOP_FIELD[standin](getattr(upstreams, standin).last.json) == ["there"]
    if standin == "anthropic":  # the others do not say which sequence stopped them
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "there")


@pytest.mark.parametrize(("model", "standin", "sent"), [
    ("openai/gpt-5", "openai", lambda b: b["reasoning_effort"]),
    ("google/gemini-2.5-flash", "gemini", lambda b: b["generationConfig"]["thinkingConfig"]["thinkingBudget"]),
])
def test_thinking_becomes_the_providers_reasoning(client, upstreams, model, standin, sent):
    small = client.messages.create(model=model, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024},
                                   messages=[{"role": "user", "content": "hi"}])
    low = sent(getattr(upstreams, standin).last.json)
    large = client.messages.create(model=model, max_tokens=20000, thinking={"type": "enabled", "budget_tokens": 16000},
                                   messages=[{"role": "user", "content": "hi"}])
    high = sent(getattr(upstreams, standin).last.json)
    assert text_of(small) == text_of(large) == "You said: hi"
    order = ["minimal", "low", "medium", "high", "xhigh"]
    assert (order.index(low) < order.index(high)) if standin == "openai" else (low < high)


# ---------------------------------------------------------------- tools

def _call(message):
    (call,) = [b for b in message.content if b.type == "tool_use"]
    return call


@pytest.mark.parametrize(("model", "standin"), TOOL_PROVIDERS)
def test_a_tool_round_trip(client, upstreams, model, standin):
    first = client.messages.create(model=model, max_tokens=300, tools=[WEATHER], messages=ASK_WEATHER)
    assert first.stop_reason == "tool_use"
    call = _call(first)
    assert (call.name, call.input) == ("get_weather", {"location": "Paris"})
    assert call.id
    history = [*ASK_WEATHER, {"role": "assistant", "content": first.content},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]}]
    final = client.messages.create(model=model, max_tokens=300, tools=[WEATHER], messages=history)
    assert text_of(final) == "Tool results: get_weather=18C"
    assert final.stop_reason == "end_turn"
    assert len(getattr(upstreams, standin).requests) == 2


@pytest.mark.parametrize(("model", "standin"), TOOL_PROVIDERS)
def test_a_streamed_tool_round_trip(client, upstreams, model, standin):
    with client.messages.stream(model=model, max_tokens=300, tools=[WEATHER], messages=ASK_WEATHER) as stream:
        raw = list(stream)
        first = stream.get_final_message()
    call = _call(first)
    assert (call.name, call.input) == ("get_weather", {"location": "Paris"})
    assert first.stop_reason == "tool_use"
    index = first.content.index(call)
    pieces = [e.delta.partial_json for e in raw
              if e.type == "content_block_delta" and e.delta.type == "input_json_delta" and e.index == index]
    assert json.loads("".join(pieces)) == {"location": "Paris"}
    if standin == "openai":  # as OpenAI streamed the arguments: 7 characters at a time
        assert [p for p in pieces if p] == ['{"locat', 'ion":"P', 'aris"}']
    elif standin == "anthropic":
        assert len([p for p in pieces if p]) > 1
    else:  # Gemini sends a function call whole
        assert len([p for p in pieces if p]) >= 1
    history = [*ASK_WEATHER, {"role": "assistant", "content": first.content},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                             "content": [{"type": "text", "text": "18C"}]}]}]
    with client.messages.stream(model=model, max_tokens=300, tools=[WEATHER], messages=history) as stream:
        text = "".join(stream.text_stream)
    assert text == "Tool results: get_weather=18C"


@pytest.mark.parametrize(("model", "standin"), PROVIDERS)
def test_tool_choice_forces_a_tool(client, upstreams, model, standin):
    message = client.messages.create(model=model, max_tokens=300, tools=[WEATHER],
                                     tool_choice={"type": "tool", "name": "get_weather"},
                                     messages=[{"role": "user", "content": "hello"}])
    assert message.stop_reason == "tool_use" and _call(message).name == "get_weather"


# ---------------------------------------------------------------- Anthropic pass-through fidelity

SYSTEM_CACHED = [{"type": "text", "text": "You are a careful assistant."},
                 {"type": "text", "text": "Here is a long shared context to cache.",
                  "cache_control": {"type": "ephemeral"}}]


def test_pass_through_sends_the_body_and_headers_as_the_client_sent_them(watched, upstreams):
    client, sent = watched
    message = client.beta.messages.create(
        model=ANTHROPIC, max_tokens=2048, system=SYSTEM_CACHED, metadata={"user_id": "user-42"},
        thinking={"type": "enabled", "budget_tokens": 1024}, betas=["context-management-2025-06-27"],
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello there", "cache_control": {"type": "ephemeral"}}]}])
    up = upstreams.anthropic.last
    assert up.json["model"] == "claude-sonnet-4-5"
    assert without_model(up.json) == without_model(sent.last_json)
    assert up.headers["anthropic-beta"] == "context-management-2025-06-27"
    assert up.headers["anthropic-version"] == sent.requests[-1].headers["anthropic-version"]
    assert up.headers["x-api-key"] == ANTHROPIC_KEY
    assert MASTER_KEY not in json.dumps(up.headers)
    # The answer as Anthropic sent it, model renamed.
    assert message.model == ANTHROPIC
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].signature == upstreams.anthropic.sign(message.content[0].thinking)
    assert message.context_management.applied_edits == []
    # Everything up to the last breakpoint (the question) was written to the cache.
    assert message.usage.cache_creation_input_tokens == 5 + 8 + 2 and message.usage.cache_read_input_tokens == 0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_cache_tokens_come_back(client, upstreams, stream):
    body = {"model": ANTHROPIC, "max_tokens": 100, "system": SYSTEM_CACHED,
            "messages": [{"role": "user", "content": "hello there"}]}

    def usage():
        if not stream:
            return client.messages.create(**body).usage
        with client.messages.stream(**body) as s:
            return s.get_final_message().usage

    first, second = usage(), usage()
    cached = 5 + 8  # the two system blocks
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (cached, 0)
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, cached)
    assert first.input_tokens == second.input_tokens == 3  # the question, after the cached prefix
    assert first.cache_creation.ephemeral_5m_input_tokens == cached


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_thinking_signatures_survive_a_tool_loop(watched, upstreams, stream):
    client, sent = watched
    body = {"model": ANTHROPIC, "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [WEATHER], "messages": ASK_WEATHER}
    if stream:
        with client.messages.stream(**body) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(**body)
    thinking, call = first.content[0], _call(first)
    assert thinking.type == "thinking" and thinking.signature == upstreams.anthropic.sign(thinking.thinking)
    history = [*ASK_WEATHER, {"role": "assistant", "content": first.content},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]}]
    final = client.messages.create(**{**body, "messages": history})  # the stand-in checks the signature
    assert text_of(final) == "Tool results: get_weather=18C"
    assert without_model(upstreams.anthropic.last.json) == without_model(sent.last_json)


def test_server_tools_and_citations_pass_through(watched, upstreams):
    client, sent = watched
    message = client.messages.create(
        model=ANTHROPIC, max_tokens=500, tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
        messages=[{"role": "user", "content": "search the latest lunos news"}])
    assert without_model(upstreams.anthropic.last.json) == without_model(sent.last_json)
    assert [b.type for b in message.content] == ["server_tool_use", "web_search_tool_result", "text", "text"]
    assert message.content[3].citations[0].type == "web_search_result_location"
    assert message.usage.server_tool_use.web_search_requests == 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_documents_and_citations_pass_through(watched, upstreams, stream):
    client, sent = watched
    body = {"model": ANTHROPIC, "max_tokens": 200,
            "messages": [{"role": "user", "content": [DOCUMENT, {"type": "text", "text": "What is Lunos?"}]}]}
    if stream:
        with client.messages.stream(**body) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**body)
    assert without_model(upstreams.anthropic.last.json) == without_model(sent.last_json)
    assert text_of(message) == "According to the document: Lunos is a gateway."
    (citation,) = message.content[1].citations
    assert (citation.type, citation.cited_text, citation.document_title) == (
        "char_location", "Lunos is a gateway.", "Lunos notes")


def test_claude_codes_requests_pass_through(gateway, upstreams):
    """Claude Code's captured request shape, with `?beta=true` and its betas, on an Anthropic
    model: the upstream gets it byte for byte but the model, and the betas as sent."""
    headers = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01", "anthropic-beta": CLAUDE_CODE_BETAS}
    body = claude_code_body("claude-sonnet-4-5", [{"role": "user", "content": "Use Write to create hello.txt"}])
    r = httpx.post(f"{gateway.url}/v1/messages?beta=true", headers=headers, json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert upstreams.anthropic.last.json["model"] == "claude-sonnet-4-5"
    assert without_model(upstreams.anthropic.last.json) == without_model(body)
    assert upstreams.anthropic.last.headers["anthropic-beta"] == CLAUDE_CODE_BETAS
    names = [name for name, _ in events(r.text)]
    assert names[0] == "message_start" and names[-1] == "message_stop"


@pytest.mark.parametrize(("model", "standin"), PROVIDERS[1:])
def test_claude_codes_requests_are_translated(client, upstreams, model, standin):
    """Claude Code's captured request shape on other providers: what only steers Anthropic's
    servers (betas, context management, cache_control, defer_loading, thinking display) is
    dropped, never refused, and a mid-conversation system message becomes a system turn.
    The answer goes back as Claude Code sends it: the streamed content as it came, and the
    system message again, now as a string."""
    betas = [*CLAUDE_CODE_BETAS.split(","), "mid-conversation-tool-changes-2026-07-01", "effort-2025-11-24"]
    ask = {"role": "user", "content": [{"type": "text", "text": "<system-reminder>careful</system-reminder>"},
                                       {"type": "text", "text": "Use Write to create hello.txt"}]}
    environment = {"role": "system", "content": [{"type": "text", "text": "# Environment: linux",
                                                  "cache_control": {"type": "ephemeral"}}]}

    def turn(messages):
        params = {k: v for k, v in claude_code_body(model, messages).items() if k != "stream"}
        with client.beta.messages.stream(**params, betas=betas) as stream:
            return stream.get_final_message()

    first = turn([ask, environment])
    assert "Environment" in json.dumps(getattr(upstreams, standin).last.json)
    assert first.stop_reason == "tool_use"
    call = _call(first)
    assert (call.name, call.input) == ("Write", {"file_path": "test", "content": "test"})
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "File created",
                                           "cache_control": {"type": "ephemeral"}}]}
    final = turn([ask, {"role": "system", "content": "# Environment: linux"},
                  {"role": "assistant", "content": first.content}, result])
    assert text_of(final) == "Tool results: Write=File created"


# ---------------------------------------------------------------- errors

def _error(exc, kind: str) -> None:
    body = exc.value.body
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    assert body["error"]["message"]


@pytest.mark.parametrize(("model", "standin"), PROVIDERS)
def test_a_bad_body_is_a_bad_request(client, upstreams, model, standin):
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.create(model=model, max_tokens=100, messages=[{"role": "tool", "content": "x"}])
    _error(exc, "invalid_request_error")
    with pytest.raises(anthropic.BadRequestError) as exc:  # (messages.create insists on max_tokens)
        client.post("/v1/messages", cast_to=anthropic.types.Message,
                    body={"model": model, "messages": [{"role": "user", "content": "hi"}]})
    _error(exc, "invalid_request_error")
    assert "max_tokens" in exc.value.body["error"]["message"]
    assert getattr(upstreams, standin).requests == []


def test_a_bad_key_and_an_unknown_provider(gateway, client, upstreams):
    wrong = anthropic.Anthropic(base_url=gateway.url, api_key="sk-lunos-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as exc:
        wrong.messages.create(model=ANTHROPIC, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    _error(exc, "authentication_error")
    assert "sk-lunos-wrong" not in json.dumps(exc.value.body)
    with pytest.raises(anthropic.AuthenticationError):
        wrong.messages.count_tokens(model=ANTHROPIC, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.NotFoundError) as exc:
        client.messages.create(model="nope/x", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    _error(exc, "not_found_error")
    assert upstreams.anthropic.requests == []


def test_anthropics_own_refusal_comes_back_in_its_shape(client, upstreams):
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.create(model=ANTHROPIC, max_tokens=100, messages=ASK_WEATHER,
                               thinking={"type": "enabled", "budget_tokens": 10})
    _error(exc, "invalid_request_error")
    assert "budget_tokens" in exc.value.body["error"]["message"]


def test_an_overloaded_anthropic_is_an_overloaded_error(client, upstreams):
    with pytest.raises(anthropic.OverloadedError) as exc:
        client.messages.create(model=ANTHROPIC, max_tokens=100,
                               messages=[{"role": "user", "content": "hi [[stream-error:overloaded_error]]"}])
    _error(exc, "overloaded_error")


# ---------------------------------------------------------------- failures mid-stream

def _stream_until_it_fails(client, model: str, text: str) -> tuple[str, pytest.ExceptionInfo]:
    """The text received before the stream failed, and the error. The stream opens without
    an error: it must fail while being read."""
    received = []
    with (client.messages.stream(model=model, max_tokens=100, messages=[{"role": "user", "content": text}]) as stream,
          pytest.raises(anthropic.APIStatusError) as exc):
        received.extend(stream.text_stream)
    return "".join(received), exc


def test_an_anthropic_error_event_mid_stream_raises(client, upstreams):
    received, exc = _stream_until_it_fails(client, ANTHROPIC, "tell me [[stream-error:overloaded_error]]")
    assert received == "You"
    _error(exc, "overloaded_error")


def test_a_cut_openai_stream_raises(client, upstreams):
    received, exc = _stream_until_it_fails(client, "openai/gpt-4o", "one two three [[cut:2]]")
    assert "You said:".startswith(received)
    _error(exc, "api_error")


# ---------------------------------------------------------------- history and traces

@pytest.mark.parametrize(("model", "standin"), PROVIDERS)
def test_history_row_app_id_and_a_trace_by_header(gateway, client, upstreams, model, standin):
    traced = client.messages.with_raw_response.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "traced prompt"}],
        extra_headers={"X-App-ID": "messages-e2e", "x-lunos-observability": "true"})
    assert text_of(traced.parse()) == "You said: traced prompt"
    row = wait_for_row(gateway.url, traced.headers["x-request-id"])
    assert (row["endpoint"], row["app_id"], row["model"], row["status"]) == ("messages", "messages-e2e", model, 200)
    assert row["trace"] is True and "traced prompt" in json.dumps(row["request"])
    assert "You said: traced prompt" in json.dumps(row["response"])
    plain = client.messages.with_raw_response.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "plain prompt"}])
    row = wait_for_row(gateway.url, plain.headers["x-request-id"])
    assert row["endpoint"] == "messages" and row["trace"] is False and row["request"] is None
    assert row["usage"]["prompt_tokens"] == 3


def test_a_streamed_request_gets_its_row_too(gateway, client, upstreams):
    with client.messages.with_streaming_response.create(
            model=ANTHROPIC, max_tokens=100, stream=True, messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-lunos-observability": "true"}) as r:
        r.read()
        row_id = r.headers["x-request-id"]
    row = wait_for_row(gateway.url, row_id)
    assert (row["endpoint"], row["status"], row["trace"]) == ("messages", 200, True)
    assert "You said: hi" in json.dumps(row["response"])
    listed = httpx.get(f"{gateway.url}/v1/logs", headers=MASTER, params={"endpoint": "messages", "limit": 500}).json()
    assert row_id in [r["id"] for r in listed["data"]]


# ---------------------------------------------------------------- count_tokens

COUNTED = {"system": "You are terse.", "messages": [{"role": "user", "content": "what is the weather in Paris today"}]}


def test_count_tokens_passes_anthropics_count_through(watched, upstreams):
    client, sent = watched
    count = client.messages.count_tokens(model=ANTHROPIC, tools=[WEATHER], **COUNTED)
    assert count.input_tokens == 3 + 7 + 1  # the stand-in's own count
    up = upstreams.anthropic.last
    assert up.path == "/v1/messages/count_tokens"
    assert without_model(up.json) == without_model(sent.last_json) and up.json["model"] == "claude-sonnet-4-5"
    answered = client.messages.create(model=ANTHROPIC, max_tokens=100, tools=[WEATHER], **COUNTED)
    assert answered.usage.input_tokens == count.input_tokens


def test_count_tokens_on_gemini_is_geminis_count(client, upstreams):
    count = client.messages.count_tokens(model="google/gemini-2.5-flash", **COUNTED)
    assert count.input_tokens == 3 + 7 + 1
    assert upstreams.gemini.last.path.endswith(":countTokens")
    answered = client.messages.create(model="google/gemini-2.5-flash", max_tokens=100, **COUNTED)
    assert answered.usage.input_tokens == count.input_tokens


def test_count_tokens_elsewhere_is_a_sane_estimate(client, upstreams):
    text = ("The quick brown fox jumps over the lazy dog while the gateway counts every token "
            "of this sentence twice to be sure that nothing is lost along the way.")
    words = len(text.split())
    count = client.messages.count_tokens(model="openai/gpt-4o", messages=[{"role": "user", "content": text}])
    assert words / 2 <= count.input_tokens <= words * 2
    longer = client.messages.count_tokens(model="openai/gpt-4o", messages=[{"role": "user", "content": text + " " + text}])
    assert longer.input_tokens > count.input_tokens
    assert upstreams.openai.requests == []  # an estimate, made without the provider


def test_count_tokens_checks_its_body(client, upstreams):
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.count_tokens(model=ANTHROPIC, messages=[{"role": "robot", "content": "hi"}])
    _error(exc, "invalid_request_error")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="nope/x", messages=[{"role": "user", "content": "hi"}])


# ---------------------------------------------------------------- Lunos options by header

def test_fallback_models_by_header(client, upstreams):
    message = client.messages.create(model="xai/grok-4.7", max_tokens=100, messages=[{"role": "user", "content": "hi"}],
                                     extra_headers={"x-lunos-fallback-models": "google/gemini-2.5-flash"})
    assert message.model == "google/gemini-2.5-flash" and text_of(message) == "You said: hi"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_failing_anthropic_falls_back_to_a_translated_provider(client, upstreams, stream):
    async def overloaded(rec, send):
        await send_json(send, 529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    upstreams.anthropic.scripted += [overloaded] * 10
    body = {"model": ANTHROPIC, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
            "extra_headers": {"x-lunos-fallback-models": "openai/gpt-4o,google/gemini-2.5-flash"}}
    if stream:
        with client.messages.stream(**body) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**body)
    assert message.model == "openai/gpt-4o" and text_of(message) == "You said: hi"
    assert upstreams.anthropic.requests and len(upstreams.openai.requests) == 1


def test_fallbacks_in_the_body_do_not_reach_anthropic(client, upstreams):
    message = client.messages.create(model=ANTHROPIC, max_tokens=100, messages=[{"role": "user", "content": "hi"}],
                                     extra_body={"models": ["openai/gpt-4o"], "observability": True})
    assert text_of(message) == "You said: hi" and message.model == ANTHROPIC
    assert "models" not in upstreams.anthropic.last.json and "observability" not in upstreams.anthropic.last.json


def test_drop_params_by_header(client, upstreams):
    # top_k is a Messages field up to API version 2026-10-21 (the SDK's default): ask for an older one.
    body = {"model": "openai/gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
            "extra_body": {"top_k": 5}, "extra_headers": {"anthropic-version": "2023-06-01"}}
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.create(**body)
    _error(exc, "invalid_request_error")
    assert "top_k" in exc.value.body["error"]["message"]
    message = client.messages.create(**{**body, "extra_headers": {**body["extra_headers"], "x-lunos-drop-params": "true"}})
    assert text_of(message) == "You said: hi"
    assert "top_k" not in upstreams.openai.last.json

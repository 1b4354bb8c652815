"""Mid-stream failover (docs/reliability.md): a stream that breaks after it started goes on
with the next candidate, which gets the answer so far as an assistant message, and the
client sees one unbroken answer. Official SDKs against the real gateway and stand-ins."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
import yaml

from tests.gateway.test_history_e2e import wait_for_row
from tests.gateway_process import MASTER_KEY, GatewayProcess

CLAUDE = "anthropic/claude-haiku-4-5"
GPT = "openai/gpt-4o"
FAILURES = {  # what breaks Anthropic's stream, and the text it sent before
    "cut": ("[[cut:2]]", "You said:"),
    "stall": ("[[stall:2]]", "You said:"),  # longer than LUNOS_IDLE_TIMEOUT
    "overloaded": ("[[stream-error:overloaded_error]]", "You"),
}


@pytest.fixture(scope="module")
def gw(standins, tmp_path_factory):
    env = {**standins.env(), "LUNOS_IDLE_TIMEOUT": "1", "LUNOS_RETRY_BACKOFF": "0.01"}
    g = GatewayProcess(tmp_path_factory.mktemp("failover"), env).start()
    yield g
    g.stop()


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30)


def stream(gw, text: str, **extra) -> list:
    chunks = client(gw).chat.completions.create(
        model=CLAUDE, messages=[{"role": "user", "content": text}], stream=True,
        stream_options={"include_usage": True}, **extra)
    return list(chunks)


@pytest.mark.parametrize("failure", FAILURES)
def test_a_broken_stream_is_finished_by_the_fallback(gw, upstreams, failure):
    marker, partial = FAILURES[failure]
    text = f"tell me a story {marker}"
    chunks = stream(gw, text, extra_body={"models": [CLAUDE, GPT]})

    (sent,) = upstreams.openai.requests  # the fallback got the answer so far as a prefill
    messages = sent.json["messages"]
    assert messages[0] == {"role": "user", "content": text}
    assert messages[1] == {"role": "assistant", "content": partial}
    assert messages[2]["role"] == "user" and messages[2]["content"].startswith("Your previous message was cut off")

    assert len({c.id for c in chunks}) == 1
    assert len({c.model for c in chunks}) == 1
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == f"You said: {text}"  # Anthropic's start, then the rest: nothing twice
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.role) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]

    usage = chunks[-1].usage  # both attempts' tokens
    openai_usage = upstreams.openai.billed[0]
    assert usage.prompt_tokens > openai_usage["prompt_tokens"]
    assert usage.completion_tokens > openai_usage["completion_tokens"]
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    row = wait_for_row(gw.url, chunks[0].id)
    assert row["model"] == GPT and row["status"] == 200
    assert [a["model"] for a in row["attempts"]] == [CLAUDE, GPT]
    assert row["attempts"][0]["error"]
    assert row["usage"]["prompt_tokens"] == usage.prompt_tokens
    assert usage.cost > 0 and row["usage"]["cost"] == pytest.approx(usage.cost)  # each attempt at its price


@pytest.mark.parametrize("failure", FAILURES)
def test_without_a_fallback_the_stream_ends_with_an_error(gw, upstreams, failure):
    marker, _ = FAILURES[failure]
    with pytest.raises(openai.APIError):
        stream(gw, f"tell me a story {marker}")
    assert not upstreams.openai.requests


def test_stream_failover_false_turns_it_off(gw, upstreams):
    with pytest.raises(openai.APIError):
        stream(gw, "tell me a story [[cut:2]]", extra_body={"models": [GPT], "stream_failover": False})
    assert not upstreams.openai.requests


def test_the_header_turns_it_off_too(gw, upstreams):
    with pytest.raises(openai.APIError):
        stream(gw, "tell me a story [[cut:2]]", extra_body={"models": [GPT]},
               extra_headers={"x-lunos-stream-failover": "false"})
    assert not upstreams.openai.requests


def test_a_bad_stream_failover_value_is_a_400(gw):
    r = httpx.post(f"{gw.url}/v1/chat/completions", headers={"authorization": f"Bearer {MASTER_KEY}"},
                   json={"model": GPT, "messages": [{"role": "user", "content": "hi"}],
                         "stream_failover": "yes"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "stream_failover"


def test_anthropic_continues_a_prefill_on_the_messages_door(gw, upstreams):
    """Messages door, translated path: OpenAI breaks, Claude (asked in chat form, not passed
    through) continues the prefill natively: no continuation instruction."""
    text = "tell me a story [[cut:2]]"
    claude = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0)
    with claude.messages.stream(model=GPT, max_tokens=200, messages=[{"role": "user", "content": text}],
                                extra_body={"models": [CLAUDE]}) as events:
        message = events.get_final_message()
    assert "".join(b.text for b in message.content if b.type == "text") == f"You said: {text}"
    assert message.stop_reason == "end_turn"
    (sent,) = upstreams.anthropic.requests
    first, prefill = sent.json["messages"]
    assert first["role"] == "user" and prefill["role"] == "assistant"
    said = prefill["content"] if isinstance(prefill["content"], str) else prefill["content"][0]["text"]
    assert said == "You said:"


def test_a_pause_turn_is_continued(gw, upstreams):
    """Anthropic's `pause_turn` is not the end of the answer: the same request plus the
    answer so far goes back to Claude, and the client sees one answer with one finish."""
    text = "tell me a story [[pause:2]]"
    chunks = stream(gw, text)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == f"You said: {text}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert sum(1 for c in chunks if c.usage) == 1
    first, second = upstreams.anthropic.requests
    assert second.json["messages"][:-1] == first.json["messages"]
    prefill = second.json["messages"][-1]
    assert prefill["role"] == "assistant"
    row = wait_for_row(gw.url, chunks[0].id)
    assert [a["model"] for a in row["attempts"]] == [CLAUDE, CLAUDE] and row["status"] == 200
    assert chunks[-1].usage.prompt_tokens > 0


def test_the_responses_door_gets_it_too(gw, upstreams):
    """Responses door, translated path: Claude breaks; GPT (which would be passed through to
    OpenAI's Responses API) continues in chat form on the same stream."""
    text = "tell me a story [[cut:2]]"
    events = list(client(gw).responses.create(model=CLAUDE, input=text, stream=True, store=False,
                                              extra_body={"models": [GPT]}))
    done = events[-1]
    assert done.type == "response.completed"
    assert done.response.output_text == f"You said: {text}"
    (sent,) = upstreams.openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.json["messages"][-2] == {"role": "assistant", "content": "You said:"}


def test_gemini_continues_a_model_turn(gw, upstreams):
    """Gemini continues the answer so far given as a last `model` turn: no instruction."""
    text = "tell me a story [[cut:2]]"
    chunks = stream(gw, text, extra_body={"models": ["google/gemini-2.5-flash"]})
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == f"You said: {text}"
    (sent,) = upstreams.gemini.requests
    contents = sent.json["contents"]
    assert [c["role"] for c in contents] == ["user", "model"]
    assert contents[-1]["parts"] == [{"text": "You said:"}]
    assert wait_for_row(gw.url, chunks[0].id)["model"] == "google/gemini-2.5-flash"


def test_a_tool_call_broken_mid_arguments_is_made_again_whole(gw, upstreams):
    """Never spliced: the broken call's fragment keeps its index, the fallback's whole call
    comes at the next one, and the fallback is sent the conversation without a prefill."""
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    text = 'weather please [[call get_weather {"city": "Paris"}]] [[stall:1]]'
    chunks = stream(gw, text, tools=tools, extra_body={"models": [GPT]})
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
            entry = calls.setdefault(call.index, {"id": None, "arguments": ""})
            entry["id"] = call.id or entry["id"]
            entry["arguments"] += (call.function.arguments or "") if call.function else ""
    assert sorted(calls) == [0, 1]
    assert calls[0]["id"].startswith("toolu_") and calls[0]["arguments"] != '{"city":"Paris"}'
    assert calls[1]["id"].startswith("call_") and json.loads(calls[1]["arguments"]) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    (sent,) = upstreams.openai.requests
    assert sent.json["messages"] == [{"role": "user", "content": text}]


def test_an_alias_goes_on_with_its_other_deployment(standins, tmp_path):
    """An alias of two deployments: whichever streams first and breaks, the other continues
    (the stand-ins ignore failure markers when continuing)."""
    config = tmp_path / "lunos.yaml"
    config.write_text(yaml.safe_dump({"aliases": {"story": [{"model": CLAUDE}, {"model": GPT}]}}))
    standins.reset()
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), "LUNOS_RETRY_BACKOFF": "0.01"},
                       args=["--config", str(config)]).start()
    try:
        text = "tell me a story [[cut:2]]"
        chunks = list(client(g).chat.completions.create(
            model="story", messages=[{"role": "user", "content": text}], stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"You said: {text}"
        row = wait_for_row(g.url, chunks[0].id)
        assert sorted(a["model"] for a in row["attempts"]) == sorted([CLAUDE, GPT])
        assert row["model"] == row["attempts"][-1]["model"] and row["attempts"][0]["error"]
    finally:
        g.stop()


def test_the_configuration_turns_it_off(standins, tmp_path):
    standins.reset()
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), "LUNOS_STREAM_FAILOVER": "false"}).start()
    try:
        with pytest.raises(openai.APIError):
            stream(g, "tell me a story [[cut:2]]", extra_body={"models": [GPT]})
        assert not standins.openai.requests
        chunks = stream(g, "tell me a story [[cut:2]]", extra_body={"models": [GPT], "stream_failover": True})
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).endswith("[[cut:2]]")
    finally:
        g.stop()


def test_a_pause_turn_is_continued_without_a_stream_too(gw, upstreams):
    text = "tell me a story [[pause:2]]"
    r = client(gw).chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": text}])
    assert r.choices[0].message.content == f"You said: {text}" and r.choices[0].finish_reason == "stop"
    first, second = upstreams.anthropic.requests
    assert second.json["messages"][:-1] == first.json["messages"]
    assert second.json["messages"][-1]["role"] == "assistant"
    row = wait_for_row(gw.url, r.id)
    assert [a["model"] for a in row["attempts"]] == [CLAUDE, CLAUDE]
    assert r.usage.prompt_tokens == row["usage"]["prompt_tokens"] > 0

"""The official `openai` SDK against a running `lunos serve`, for every built-in provider.

Each provider's stand-in is strict (it refuses what the real API refuses) and records what
it received, so these tests check both the answer and the translated upstream request.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import httpx
import openai
import pytest

from tests.gateway_process import MASTER_KEY
from tests.standins.images import PNG_1X1


@dataclass(frozen=True)
class P:
    name: str  # provider prefix
    model: str
    standin: str  # attribute of StandIns

    def upstream(self, upstreams):
        return getattr(upstreams, self.standin)


OPENAI = P("openai", "openai/gpt-4o", "openai")
ANTHROPIC = P("anthropic", "anthropic/claude-haiku-4-5", "anthropic")
GOOGLE = P("google", "google/gemini-2.5-flash", "gemini")
GROQ = P("groq", "groq/llama-3.3-70b-versatile", "openai")  # an OpenAI-compatible preset
ALL = [OPENAI, ANTHROPIC, GOOGLE, GROQ]
IDS = [p.name for p in ALL]

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a place",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                   "required": ["location"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Local time",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def upstream_body(p: P, upstreams) -> dict:
    return p.upstream(upstreams).last.json


def chat(client, p: P, content="hello world", **kw):
    return client.chat.completions.create(model=p.model, messages=[{"role": "user", "content": content}], **kw)


# ---------------------------------------------------------------- plain chat
@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_plain_chat(client, upstreams, p):
    raw = client.chat.completions.with_raw_response.create(
        model=p.model, messages=[{"role": "user", "content": "hello world"}])
    r = raw.parse()
    assert r.choices[0].message.content == "You said: hello world"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == p.model and r.provider == p.name
    assert r.id.startswith("chatcmpl-") and raw.headers["x-request-id"] == r.id
    assert float(raw.headers["x-lunos-overhead-ms"]) >= 0
    reasoning = r.usage.completion_tokens_details.reasoning_tokens or 0
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens - reasoning == 4
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.cost > 0  # every model used here is priced in the catalog


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_multi_turn_with_system(client, upstreams, p):
    r = client.chat.completions.create(model=p.model, messages=[
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": "second question"},
    ])
    assert r.choices[0].message.content == "You said: second question"
    body = upstream_body(p, upstreams)
    if p.standin == "anthropic":
        assert [b["text"] for b in body["system"]] == ["Be terse.", "Answer in English."]
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    elif p.standin == "gemini":
        assert [part["text"] for part in body["systemInstruction"]["parts"]] == ["Be terse.", "Answer in English."]
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    else:
        assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "developer", "user"]


# ---------------------------------------------------------------- sampling parameters
def test_sampling_parameters_openai(client, upstreams):
    chat(client, OPENAI, temperature=0.3, top_p=0.9, frequency_penalty=0.5, presence_penalty=0.25,
         seed=7, max_tokens=50, stop=["END"], user="u-1", n=1)
    body = upstreams.openai.last.json
    assert body["model"] == "gpt-4o"
    assert {k: body[k] for k in ("temperature", "top_p", "frequency_penalty", "presence_penalty",
                                 "seed", "max_tokens", "stop", "user")} == {
        "temperature": 0.3, "top_p": 0.9, "frequency_penalty": 0.5, "presence_penalty": 0.25,
        "seed": 7, "max_tokens": 50, "stop": ["END"], "user": "u-1"}


def test_sampling_parameters_anthropic(client, upstreams):
    chat(client, ANTHROPIC, temperature=0.3, max_tokens=50, stop=["END"], user="u-1")
    body = upstreams.anthropic.last.json
    assert body["model"] == "claude-haiku-4-5"
    assert (body["temperature"], body["max_tokens"], body["stop_sequences"]) == (0.3, 50, ["END"])
    assert body["metadata"] == {"user_id": "u-1"}
    assert "top_p" not in body
    chat(client, ANTHROPIC, top_p=0.8, max_completion_tokens=20)
    body = upstreams.anthropic.last.json
    assert (body["top_p"], body["max_tokens"]) == (0.8, 20) and "temperature" not in body


def test_anthropic_refuses_what_the_model_cannot_take(client, upstreams):
    for kwargs, param in [
        ({"temperature": 0.5, "top_p": 0.5}, "top_p"),
        ({"temperature": 1.5}, "temperature"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"seed": 3}, "seed"),
        ({"n": 2}, "n"),
    ]:
        with pytest.raises(openai.BadRequestError) as info:
            chat(client, ANTHROPIC, **kwargs)
        assert info.value.body["param"] == param, kwargs
        assert info.value.body["code"] == "unsupported_parameter"
    assert upstreams.anthropic.requests == []  # nothing went upstream
    # Defaults are never "unsupported".
    chat(client, ANTHROPIC, n=1, frequency_penalty=0, presence_penalty=0, parallel_tool_calls=True)


def test_drop_params_drops_and_names_them(client, upstreams):
    raw = client.chat.completions.with_raw_response.create(
        model=ANTHROPIC.model, messages=[{"role": "user", "content": "hi"}],
        seed=3, frequency_penalty=0.5, temperature=0.2, extra_body={"drop_params": True})
    assert raw.headers["x-lunos-dropped-params"] == "frequency_penalty,seed"
    body = upstreams.anthropic.last.json
    assert body["temperature"] == 0.2 and "seed" not in body and "drop_params" not in body


def test_sampling_parameters_google(client, upstreams):
    chat(client, GOOGLE, temperature=0.3, top_p=0.9, seed=7, max_tokens=50, stop=["END"], n=2)
    config = upstreams.gemini.last.json["generationConfig"]
    assert config == {**config, "temperature": 0.3, "topP": 0.9, "seed": 7, "maxOutputTokens": 50,
                      "stopSequences": ["END"], "candidateCount": 2}
    # A Gemini model the catalog does not know gets what the API itself can take.
    client.chat.completions.create(model="google/gemini-experimental-x", messages=[{"role": "user", "content": "x"}],
                                   presence_penalty=0.5, frequency_penalty=0.25)
    config = upstreams.gemini.last.json["generationConfig"]
    assert (config["presencePenalty"], config["frequencyPenalty"]) == (0.5, 0.25)
    # The catalog knows gemini-2.5-flash refuses penalties.
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, GOOGLE, presence_penalty=0.5)
    assert info.value.body["param"] == "presence_penalty"


def test_n_choices_google(client, upstreams):
    r = chat(client, GOOGLE, n=2)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.message.content == "You said: hello world" for c in r.choices)


# ---------------------------------------------------------------- stop and max_tokens
@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_stop_and_max_tokens(client, upstreams, p):
    r = chat(client, p, content="alpha beta gamma", stop=["gamma"])
    assert r.choices[0].message.content == "You said: alpha beta "
    assert r.choices[0].finish_reason == "stop"
    r = chat(client, p, content="alpha beta gamma", max_tokens=2)
    assert r.choices[0].message.content == "You said:"
    assert r.choices[0].finish_reason == "length"


# ---------------------------------------------------------------- streaming
@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_streaming_with_usage(client, upstreams, p):
    chunks = list(chat(client, p, content="one two three", stream=True,
                       stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: one two three"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2  # really streamed
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert len({c.id for c in chunks}) == 1 and {c.model for c in chunks} == {p.model}
    assert chunks[0].provider == p.name
    usage = chunks[-1].usage
    reasoning = usage.completion_tokens_details.reasoning_tokens or 0
    assert chunks[-1].choices == [] and usage.completion_tokens - reasoning == 5
    assert usage.prompt_tokens > 0
    assert usage.cost > 0


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_streaming_without_usage_has_no_usage_chunk(client, upstreams, p):
    chunks = list(chat(client, p, stream=True))
    assert all(c.choices for c in chunks)
    assert all(getattr(c, "usage", None) is None for c in chunks)


# ---------------------------------------------------------------- tools
def _tool_messages(r, result_by_name):
    message = r.choices[0].message
    followups = [message.model_dump(exclude_none=True)]
    for call in message.tool_calls:
        followups.append({"role": "tool", "tool_call_id": call.id,
                          "content": result_by_name[call.function.name]})
    return followups


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_tool_call_round_trip(client, upstreams, p):
    ask = [{"role": "user", "content": "Use get_weather please"}]
    r = client.chat.completions.create(model=p.model, messages=ask, tools=[WEATHER, TIME])
    assert r.choices[0].finish_reason == "tool_calls"
    (call,) = r.choices[0].message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    assert call.id
    if p.standin == "anthropic":
        assert call.id.startswith("toolu_")  # provider ids pass through unchanged
    r2 = client.chat.completions.create(model=p.model, messages=ask + _tool_messages(r, {"get_weather": "18C"}),
                                        tools=[WEATHER, TIME])
    assert r2.choices[0].message.content == "Tool results: get_weather=18C"
    if p.standin == "anthropic":
        blocks = upstreams.anthropic.last.json["messages"][-1]["content"]
        assert blocks[0] == {"type": "tool_result", "tool_use_id": call.id, "content": "18C"}


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_parallel_tool_calls_round_trip(client, upstreams, p):
    ask = [{"role": "user", "content": "call get_weather and get_time"}]
    r = client.chat.completions.create(model=p.model, messages=ask, tools=[WEATHER, TIME])
    names = [c.function.name for c in r.choices[0].message.tool_calls]
    assert names == ["get_weather", "get_time"]
    assert len({c.id for c in r.choices[0].message.tool_calls}) == 2
    r2 = client.chat.completions.create(
        model=p.model, messages=ask + _tool_messages(r, {"get_weather": "18C", "get_time": "noon"}),
        tools=[WEATHER, TIME])
    assert r2.choices[0].message.content == "Tool results: get_weather=18C; get_time=noon"


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_streamed_tool_calls_reassemble(client, upstreams, p):
    chunks = list(client.chat.completions.create(
        model=p.model, messages=[{"role": "user", "content": "call get_weather and get_time"}],
        tools=[WEATHER, TIME], stream=True))
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            slot["id"] = tc.id or slot["id"]
            slot["name"] += (tc.function.name or "") if tc.function else ""
            slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
    assert sorted(calls) == [0, 1]
    assert [calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"location": "Paris"}
    assert json.loads(calls[1]["arguments"]) == {"city": "Paris"}
    assert all(calls[i]["id"] for i in (0, 1))
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_tool_choice(client, upstreams, p):
    messages = [{"role": "user", "content": "use get_weather"}]
    r = client.chat.completions.create(model=p.model, messages=messages, tools=[WEATHER, TIME], tool_choice="none")
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason == "stop"
    plain = [{"role": "user", "content": "no tool named here"}]
    r = client.chat.completions.create(model=p.model, messages=plain, tools=[WEATHER, TIME], tool_choice="required")
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
    r = client.chat.completions.create(model=p.model, messages=plain, tools=[WEATHER, TIME],
                                       tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert [c.function.name for c in r.choices[0].message.tool_calls] == ["get_time"]


def test_gemini3_thought_signature_survives_the_tool_turn(client, upstreams):
    p = P("google", "google/gemini-3.1-pro-preview", "gemini")
    ask = [{"role": "user", "content": "Use get_weather please"}]
    r = client.chat.completions.create(model=p.model, messages=ask, tools=[WEATHER])
    (call,) = r.choices[0].message.tool_calls
    signature = call.model_extra["extra_content"]["google"]["thought_signature"]
    assert signature
    r2 = client.chat.completions.create(model=p.model, messages=ask + _tool_messages(r, {"get_weather": "18C"}),
                                        tools=[WEATHER])
    assert r2.choices[0].message.content == "Tool results: get_weather=18C"
    model_turn = upstreams.gemini.last.json["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == signature


# ---------------------------------------------------------------- vision
@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_vision_data_url(client, upstreams, p):
    r = client.chat.completions.create(model=p.model, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL, "detail": "low"}}]}])
    assert r.choices[0].message.content == f"I see 1 image: image/png {len(PNG_1X1)} bytes"


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_vision_https_url(client, upstreams, p):
    url = upstreams.image_server.url + "/pixel.png"
    r = client.chat.completions.create(model=p.model, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": url}}]}])
    if p.standin == "gemini":  # Gemini wants bytes: the gateway fetched them, guarded
        assert r.choices[0].message.content == f"I see 1 image: image/png {len(PNG_1X1)} bytes"
        assert upstreams.images.hits == ["/pixel.png"]
    else:  # OpenAI and Anthropic fetch URLs themselves
        assert r.choices[0].message.content == f"I see 1 image: url {url}"
        assert upstreams.images.hits == []


def test_vision_url_to_internal_address_is_refused(client, upstreams, gateway):
    url = f"http://127.0.0.1:{upstreams.servers['openai'].port}/v1/models"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=GOOGLE.model, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}]}])
    assert info.value.body["param"] == "messages[0].content[0].image_url.url"
    assert url in info.value.body["message"]
    assert upstreams.openai.requests == [] and upstreams.gemini.requests == []


# ---------------------------------------------------------------- what goes upstream
@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_only_provider_credentials_go_upstream(client, upstreams, p, gateway):
    httpx.post(gateway.url + "/v1/chat/completions", headers={
        "authorization": f"Bearer {MASTER_KEY}", "x-app-id": "secret-app"},
        json={"model": p.model, "messages": [{"role": "user", "content": "x"}], "observability": True,
              "models": [p.model], "fallback_model": p.model, "drop_params": False}, timeout=10).raise_for_status()
    rec = p.upstream(upstreams).last
    assert MASTER_KEY not in json.dumps(rec.headers) + rec.body.decode()
    assert "x-app-id" not in rec.headers
    for field in ("observability", "models", "fallback_model", "drop_params"):
        assert field not in rec.json
    if p.standin == "gemini":
        assert rec.headers["x-goog-api-key"] == "gm-test" and "key=" not in rec.query
    elif p.standin == "anthropic":
        assert rec.headers["x-api-key"] == "sk-ant-test"
        assert rec.headers["anthropic-version"] == "2023-06-01"
    else:
        assert rec.headers["authorization"] == "Bearer sk-openai-test"


def test_unknown_model_of_a_known_provider_is_forwarded(client, upstreams):
    r = client.chat.completions.create(model="openai/gpt-unknown-2", messages=[{"role": "user", "content": "x"}])
    assert r.model == "openai/gpt-unknown-2" and r.usage.model_extra.get("cost") is None
    assert upstreams.openai.last.json["model"] == "gpt-unknown-2"


def test_model_path_after_the_first_slash_goes_upstream_unchanged(client, upstreams):
    client.chat.completions.create(model="groq/meta-llama/llama-4-scout", messages=[{"role": "user", "content": "x"}])
    assert upstreams.openai.last.json["model"] == "meta-llama/llama-4-scout"


def test_anthropic_thinking_survives_the_tool_turn(client, upstreams):
    """Thinking blocks (with signatures) returned with a tool call go back to Anthropic on the
    next turn, carried in the OpenAI-shaped message the client echoes."""
    p = P("anthropic", "anthropic/claude-sonnet-4-5", "anthropic")
    ask = [{"role": "user", "content": "Use get_weather please"}]
    r = client.chat.completions.create(model=p.model, messages=ask, tools=[WEATHER], reasoning_effort="low")
    message = r.choices[0].message
    details = message.model_extra["reasoning_details"]
    assert details[0]["type"] == "reasoning.text" and details[0]["signature"]
    assert message.model_extra["reasoning_content"] == details[0]["text"]
    assert upstreams.anthropic.last.json["thinking"]["type"] == "enabled"
    r2 = client.chat.completions.create(model=p.model, messages=ask + _tool_messages(r, {"get_weather": "18C"}),
                                        tools=[WEATHER], reasoning_effort="low")
    assert r2.choices[0].message.content == "Tool results: get_weather=18C"
    assistant_turn = upstreams.anthropic.last.json["messages"][1]
    assert assistant_turn["content"][0] == {"type": "thinking", "thinking": details[0]["text"],
                                            "signature": details[0]["signature"]}
    # Without the signed block the stand-in (like the API) refuses the tool turn.
    bare = [m if m.get("role") != "assistant" else {k: v for k, v in m.items()
                                                    if k not in ("reasoning_details", "reasoning_content")}
            for m in ask + _tool_messages(r, {"get_weather": "18C"})]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=p.model, messages=bare, tools=[WEATHER], reasoning_effort="low")

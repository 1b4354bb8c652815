"""`client.chat.completions` against a running gateway in front of the provider stand-ins,
through both `Lunos` and `AsyncLunos` (every test runs once per client kind).

The stand-ins share one deterministic model (tests/standins/fake_model.py), so each answer
is known in advance; each stand-in records what it received, so the tests also check what
the SDK's request became upstream.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Literal

import pydantic
import pytest

import lunos
from tests.sdk.conftest import resolve
from tests.sdk.e2e.conftest import (
    OVERLOADED,
    drain,
    sse_chunk,
    sse_reply,
    status_reply,
    wait_for_log,
)
from tests.standins.images import PNG_1X1


@dataclass(frozen=True)
class P:
    provider: str
    model: str
    standin: str  # attribute of the `upstreams` fixture

    def upstream(self, upstreams):
        return getattr(upstreams, self.standin)


OPENAI = P("openai", "openai/gpt-4o", "openai")
ANTHROPIC = P("anthropic", "anthropic/claude-sonnet-4-5", "anthropic")
GOOGLE = P("google", "google/gemini-2.5-flash", "gemini")
GEMINI3 = P("google", "google/gemini-3.1-pro-preview", "gemini")  # thought signatures
GROQ = P("groq", "groq/llama-3.3-70b-versatile", "openai")  # an OpenAI-compatible preset
ALL = [OPENAI, ANTHROPIC, GOOGLE, GROQ]
TOOLS = [OPENAI, ANTHROPIC, GEMINI3]
# Failure tests use a model no other suite fails on, to leave shared state alone.
FAILING = "openai/gpt-4o-mini"


def ids(providers):
    return [p.model.split("/", 1)[1] for p in providers]


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a place",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                   "required": ["location"]}}}
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def clients_are_async(client) -> bool:
    return isinstance(client, lunos.AsyncLunos)


# ---------------------------------------------------------------- basic chat
@pytest.mark.parametrize("p", ALL, ids=ids(ALL))
async def test_basic_chat_on_every_provider(client, upstreams, p):
    r = await resolve(client.chat.completions.create(
        model=p.model,
        messages=[{"role": "system", "content": "Be brief."}, *user("hello there")],
        temperature=0.7, max_tokens=256))
    assert isinstance(r, lunos.ChatCompletion)
    assert r.choices[0].message.content == "You said: hello there"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == p.model and r.provider == p.provider
    assert r.id.startswith("chatcmpl-")
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.cost > 0
    body = p.upstream(upstreams).last.json  # the keywords reached the provider, translated
    if p.standin == "gemini":
        config = body["generationConfig"]
        assert (config["temperature"], config["maxOutputTokens"]) == (0.7, 256)
    else:
        assert (body["temperature"], body["max_tokens"]) == (0.7, 256)


async def test_typed_errors_by_status(client, upstreams):
    r = await resolve(client.chat.completions.create(model=OPENAI.model, messages=user("hi")))
    assert r.choices[0].message.content == "You said: hi"
    with pytest.raises(lunos.BadRequestError) as info:
        await resolve(client.chat.completions.create(model=OPENAI.model, messages=user("hi"),
                                                     temperature=9))
    error = info.value
    assert error.status_code == 400 and error.param == "temperature"
    assert error.type == "invalid_request_error"
    assert error.request_id and error.request_id.startswith("chatcmpl-")
    with pytest.raises(lunos.NotFoundError):
        await resolve(client.chat.completions.create(model="nope/model", messages=user("hi")))


# ---------------------------------------------------------------- vision
@pytest.mark.parametrize("p", ALL, ids=ids(ALL))
async def test_vision_data_url(client, upstreams, p):
    r = await resolve(client.chat.completions.create(model=p.model, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL, "detail": "low"}}]}]))
    assert r.choices[0].message.content == f"I see 1 image: image/png {len(PNG_1X1)} bytes"


@pytest.mark.parametrize("p", ALL, ids=ids(ALL))
async def test_vision_https_url(client, upstreams, p):
    url = upstreams.image_server.url + "/pixel.png"
    r = await resolve(client.chat.completions.create(model=p.model, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": url}}]}]))
    if p.standin == "gemini":  # Gemini takes bytes: the gateway fetched the image
        assert r.choices[0].message.content == f"I see 1 image: image/png {len(PNG_1X1)} bytes"
        assert upstreams.images.hits == ["/pixel.png"]
    else:  # the others fetch the URL themselves
        assert r.choices[0].message.content == f"I see 1 image: url {url}"
        assert upstreams.images.hits == []


# ---------------------------------------------------------------- tool calling
def check_echoed_call(p: P, upstreams, call) -> None:
    """The second turn sent upstream carries the tool call exactly as the SDK returned it."""
    body = p.upstream(upstreams).last.json
    if p.standin == "openai":
        assert call.id.startswith("call_std")  # the provider's id, unchanged
        assert body["messages"][1]["tool_calls"][0]["id"] == call.id
        assert body["messages"][2]["tool_call_id"] == call.id
    elif p.standin == "anthropic":
        assert call.id.startswith("toolu_")
        (tool_use,) = [b for b in body["messages"][1]["content"] if b["type"] == "tool_use"]
        assert tool_use["id"] == call.id and tool_use["input"] == {"location": "Paris"}
        assert body["messages"][2]["content"][0]["tool_use_id"] == call.id
    else:
        signature = call.model_extra["extra_content"]["google"]["thought_signature"]
        assert signature
        model_turn = body["contents"][1]
        assert model_turn["role"] == "model"
        assert model_turn["parts"][0]["functionCall"]["name"] == "get_weather"
        assert model_turn["parts"][0]["thoughtSignature"] == signature


@pytest.mark.parametrize("p", TOOLS, ids=ids(TOOLS))
async def test_tool_call_round_trip(client, upstreams, p):
    ask = user("Use get_weather for Paris")
    r = await resolve(client.chat.completions.create(model=p.model, messages=ask, tools=[WEATHER]))
    assert r.choices[0].finish_reason == "tool_calls"
    message = r.choices[0].message
    (call,) = message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    # The returned message goes back as it is (a typed object, not a dict).
    followup = [*ask, message, {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"}]
    r2 = await resolve(client.chat.completions.create(model=p.model, messages=followup, tools=[WEATHER]))
    assert r2.choices[0].message.content == "Tool results: get_weather=18C, sunny"
    assert r2.choices[0].finish_reason == "stop"
    check_echoed_call(p, upstreams, call)


@pytest.mark.parametrize("p", TOOLS, ids=ids(TOOLS))
async def test_streamed_tool_call_folded_then_sent_back(client, upstreams, p):
    ask = user("Use get_weather for Paris")
    stream = await resolve(client.chat.completions.create(
        model=p.model, messages=ask, tools=[WEATHER], stream=True))
    snapshot = None
    for chunk in await drain(stream):
        snapshot = lunos.accumulate(snapshot, chunk)
    message = snapshot.choices[0].message
    (call,) = message.tool_calls
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    assert snapshot.choices[0].finish_reason == "tool_calls"
    followup = [*ask, message, {"role": "tool", "tool_call_id": call.id, "content": "18C"}]
    r2 = await resolve(client.chat.completions.create(model=p.model, messages=followup, tools=[WEATHER]))
    assert r2.choices[0].message.content == "Tool results: get_weather=18C"
    check_echoed_call(p, upstreams, call)


# ---------------------------------------------------------------- streaming
@pytest.mark.parametrize("p", ALL, ids=ids(ALL))
async def test_stream_with_usage_folds_into_the_completion(client, upstreams, p):
    stream = await resolve(client.chat.completions.create(
        model=p.model, messages=user("one two three"), stream=True,
        stream_options={"include_usage": True}))
    assert isinstance(stream, lunos.AsyncStream if clients_are_async(client) else lunos.Stream)
    chunks = await drain(stream)
    assert all(isinstance(c, lunos.ChatCompletionChunk) for c in chunks)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    snapshot = None
    for chunk in chunks:
        snapshot = lunos.accumulate(snapshot, chunk)
    assert snapshot.choices[0].message.content == "You said: one two three"
    assert snapshot.choices[0].finish_reason == "stop"
    assert snapshot.id == stream.request_id and snapshot.model == p.model
    assert snapshot.provider == p.provider
    assert snapshot.usage.completion_tokens > 0 and snapshot.usage.cost > 0
    assert stream.response.is_closed


async def test_get_final_completion(client, upstreams):
    stream = await resolve(client.chat.completions.create(
        model=ANTHROPIC.model, messages=user("fold me"), stream=True,
        stream_options={"include_usage": True}))
    final = await resolve(stream.get_final_completion())
    assert final.choices[0].message.content == "You said: fold me"
    assert final.provider == "anthropic" and final.usage.cost > 0


async def leave_after_first_chunk(stream) -> lunos.ChatCompletionChunk:
    if isinstance(stream, lunos.AsyncStream):
        async with stream:
            async for chunk in stream:
                return chunk
    with stream:
        for chunk in stream:
            return chunk
    raise AssertionError("the stream was empty")


async def test_stream_left_early_closes_the_connection(client, upstreams):
    # The stand-in waits between events; the whole answer would take seconds.
    stream = await resolve(client.chat.completions.create(
        model=OPENAI.model, stream=True,
        messages=user("one two three four five six seven eight [[slow:0.3]]")))
    first = await leave_after_first_chunk(stream)
    assert first.choices[0].delta.role == "assistant"
    assert stream.response.is_closed
    # The gateway saw the client go before the answer ended, and recorded a disconnect.
    row = await wait_for_log(client, stream.request_id, until=lambda row: row.status == 499)
    assert row.stream is True


async def test_upstream_failure_mid_stream_raises_the_typed_error(client, upstreams):
    upstreams.openai.scripted.append(sse_reply(
        sse_chunk({"role": "assistant", "content": ""}), sse_chunk({"content": "Hel"}),
        OVERLOADED))
    stream = await resolve(client.chat.completions.create(
        model=FAILING, messages=user("hello"), stream=True))
    received: list = []
    with pytest.raises(lunos.InternalServerError) as info:
        await drain(stream, into=received)
    assert "".join(c.choices[0].delta.content or "" for c in received) == "Hel"
    error = info.value
    assert error.status_code == 502 and error.type == "upstream_error"
    assert "model overloaded" in error.message
    assert error.request_id == stream.request_id
    assert stream.response.is_closed


async def test_gateway_502_after_its_own_retries_is_not_retried_by_the_sdk(clients, upstreams):
    client = clients()  # max_retries=2: it would retry a plain 5xx twice
    # More failures than gateway and SDK retries together could use.
    upstreams.openai.scripted += [status_reply(500, "upstream down")] * 9
    with pytest.raises(lunos.InternalServerError) as info:
        await resolve(client.chat.completions.create(model=FAILING, messages=user("hello")))
    error = info.value
    assert error.status_code == 502 and error.type == "upstream_error"
    assert "upstream down" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    assert len(clients.sent) == 1
    row = await wait_for_log(client, error.request_id)
    assert len(upstreams.openai.requests) == len(row.attempts) == 3


# ---------------------------------------------------------------- drop_params and raw responses
async def test_unsupported_param_is_refused_naming_it(client, upstreams):
    with pytest.raises(lunos.BadRequestError) as info:
        await resolve(client.chat.completions.create(model=ANTHROPIC.model, messages=user("hi"), seed=3))
    assert info.value.param == "seed" and info.value.code == "unsupported_parameter"
    assert upstreams.anthropic.requests == []


async def test_drop_params_and_the_header_naming_them(client, upstreams):
    raw = await resolve(client.chat.completions.with_raw_response.create(
        model=ANTHROPIC.model, messages=user("hi"), seed=3, frequency_penalty=0.5,
        temperature=0.2, drop_params=True))
    assert isinstance(raw, lunos.RawResponse)
    assert raw.status_code == 200
    assert raw.headers["x-lunos-dropped-params"] == "frequency_penalty,seed"
    completion = raw.parse()
    assert completion is raw.parse()
    assert completion.choices[0].message.content == "You said: hi"
    assert raw.request_id == completion.id
    body = upstreams.anthropic.last.json
    assert body["temperature"] == 0.2 and "seed" not in body and "frequency_penalty" not in body
    # Nothing dropped, no header.
    raw = await resolve(client.chat.completions.with_raw_response.create(
        model=ANTHROPIC.model, messages=user("hi"), drop_params=True))
    assert "x-lunos-dropped-params" not in raw.headers


async def test_raw_stream_response(client, upstreams):
    raw = await resolve(client.chat.completions.with_raw_response.create(
        model=ANTHROPIC.model, messages=user("a b"), seed=3, drop_params=True, stream=True))
    assert raw.headers["x-lunos-dropped-params"] == "seed"
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = await drain(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: a b"


# ---------------------------------------------------------------- structured outputs
class Forecast(pydantic.BaseModel):
    city: str
    temperature_c: float
    unit: Literal["C", "F"]
    conditions: list[str]
    humidity: int | None


async def test_parse_returns_the_pydantic_object(client, upstreams):
    r = await resolve(client.chat.completions.parse(
        model=OPENAI.model, messages=user("Forecast for Paris as JSON"), response_format=Forecast))
    assert isinstance(r, lunos.ParsedChatCompletion)
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Forecast)
    assert parsed == Forecast(city="Paris", temperature_c=1.5, unit="C", conditions=["test"], humidity=1)
    assert Forecast.model_validate_json(r.choices[0].message.content) == parsed
    sent = upstreams.openai.last.json["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Forecast"
    assert sent["json_schema"]["strict"] is True
    schema = sent["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["city", "temperature_c", "unit", "conditions", "humidity"]
    raw = await resolve(client.chat.completions.with_raw_response.parse(
        model=OPENAI.model, messages=user("Forecast for Paris as JSON"), response_format=Forecast))
    assert raw.request_id and raw.parse().choices[0].message.parsed == parsed

"""`client.completions.create` (legacy text completions, `POST /v1/completions`): the typed
answer, JSON and streamed, sync and async; the body sent (every official `openai` SDK
parameter, as that SDK sends it, plus Lunos's own); errors typed as for chat."""

from __future__ import annotations

import inspect
import json

import httpx
import openai
import pytest
from openai.resources import completions as official

import lunos
from lunos import AsyncLunos, AsyncStream, Completion, Lunos, Stream
from lunos.resources.completions import COMPLETION_PARAMS, AsyncTextCompletions, TextCompletions
from tests.sdk.conftest import Server, collect, make_client, resolve, sse_event, sse_response

LUNOS_ONLY = {"observability", "models", "fallback_model"}
REQUEST_OPTIONS = {"extra_headers", "extra_query", "extra_body", "timeout"}
REQUIRED = {"model", "prompt"}

ANSWER = {
    "id": "cmpl-1", "object": "text_completion", "created": 1700000000,
    "model": "openai/gpt-3.5-turbo-instruct", "provider": "openai",
    "choices": [{"index": 0, "text": " a test.", "finish_reason": "stop",
                 "logprobs": {"tokens": [" a", " test", "."], "token_logprobs": [-0.1, -0.2, -0.3],
                              "text_offset": [18, 20, 25],
                              "top_logprobs": [{" a": -0.1}, {" test": -0.2}, {".": -0.3}]}}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8, "cost": 1.35e-05},
}


def chunk(text: str, finish_reason: str | None = None, **extra) -> dict:
    return {"id": "cmpl-2", "object": "text_completion", "created": 1, "model": "openai/m",
            "choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}],
            **extra}


USAGE = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5, "cost": 2e-06}
EVENTS = [
    sse_event(chunk("completed:", provider="openai")),
    sse_event(chunk(" one")),
    sse_event(chunk(" two")),
    sse_event(chunk("", "stop")),
    sse_event({**chunk(""), "choices": [], "usage": USAGE}),
    b"data: [DONE]\n\n",
]


def keywords(method) -> dict[str, inspect.Parameter]:
    params = inspect.signature(method).parameters
    assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in params.values())
    return {n: p for n, p in params.items() if n != "self"}


# --- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs"), [
    pytest.param(TextCompletions.create, official.Completions.create, id="create"),
    pytest.param(AsyncTextCompletions.create, official.AsyncCompletions.create, id="async-create"),
])
def test_every_official_parameter_is_a_keyword(ours, theirs):
    mine, official_params = keywords(ours), keywords(theirs)
    assert set(official_params) - set(mine) == set(), "parameters the Lunos SDK lacks"
    assert set(mine) - set(official_params) == LUNOS_ONLY
    for name, param in mine.items():
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        if name not in REQUIRED:
            assert param.default is None, f"{name} must default to None (not sent)"


def test_every_body_parameter_is_sent():
    official_body = set(keywords(official.Completions.create)) - REQUEST_OPTIONS
    assert set(COMPLETION_PARAMS) == official_body | LUNOS_ONLY


VALUES = {
    "best_of": 2, "echo": True, "frequency_penalty": 0.5, "logit_bias": {"50256": -100},
    "logprobs": 2, "max_tokens": 16, "n": 2, "presence_penalty": -0.5, "seed": 7,
    "stop": ["\n"], "stream": False, "stream_options": {"include_usage": True},
    "suffix": " end", "temperature": 0.7, "top_p": 0.9, "user": "u-1",
}
LUNOS_VALUES = {"observability": True, "models": ["openai/davinci-002"],
                "fallback_model": "openai/babbage-002"}


def official_body(**params) -> dict:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWER)

    client = openai.OpenAI(api_key="sk-test", base_url="http://gw/v1",
                           http_client=httpx.Client(transport=httpx.MockTransport(answer)))
    client.completions.create(**params)
    return json.loads(seen[0].content)


def test_values_cover_every_official_body_parameter():
    assert set(VALUES) == set(keywords(official.Completions.create)) - REQUEST_OPTIONS - REQUIRED


async def test_each_parameter_is_sent_as_the_official_sdk_sends_it(kind):
    server = Server(httpx.Response(200, json=ANSWER))
    client = make_client(kind, server)
    await resolve(client.completions.create(
        model="openai/gpt-3.5-turbo-instruct", prompt=[[1, 2], [3]], **VALUES, **LUNOS_VALUES))
    expected = official_body(model="openai/gpt-3.5-turbo-instruct", prompt=[[1, 2], [3]], **VALUES)
    assert server.body() == {**expected, **LUNOS_VALUES}


async def test_parameters_left_at_none_are_not_sent_and_request_options_apply(kind):
    server = Server(httpx.Response(200, json=ANSWER))
    client = make_client(kind, server)
    await resolve(client.completions.create(
        model="openai/gpt-3.5-turbo-instruct", prompt="Say this is", max_tokens=None,
        temperature=0, extra_body={"echo": False, "temperature": None},
        extra_headers={"x-lunos-fallback-models": "openai/davinci-002"}, extra_query={"trace": "1"}))
    assert server.body() == {"model": "openai/gpt-3.5-turbo-instruct", "prompt": "Say this is",
                             "echo": False, "temperature": None}
    request = server.last
    assert request.method == "POST" and request.url.path == "/v1/completions"
    assert request.url.params["trace"] == "1"
    assert request.headers["x-lunos-fallback-models"] == "openai/davinci-002"
    assert request.headers["authorization"] == "Bearer sk-test"


# --- answers ------------------------------------------------------------------------------


async def test_json_answer_is_a_typed_completion(kind):
    server = Server(httpx.Response(200, json=ANSWER))
    result = await resolve(make_client(kind, server).completions.create(
        model="openai/gpt-3.5-turbo-instruct", prompt="Say this is"))
    assert isinstance(result, Completion)
    assert (result.id, result.object, result.created) == ("cmpl-1", "text_completion", 1700000000)
    assert (result.model, result.provider) == ("openai/gpt-3.5-turbo-instruct", "openai")
    choice = result.choices[0]
    assert (choice.index, choice.text, choice.finish_reason) == (0, " a test.", "stop")
    assert choice.logprobs.tokens == [" a", " test", "."]
    assert choice.logprobs.token_logprobs == [-0.1, -0.2, -0.3]
    assert choice.logprobs.top_logprobs[1] == {" test": -0.2}
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 3)
    assert result.usage.cost == pytest.approx(1.35e-05)
    assert "stream" not in server.body()


async def test_streamed_answer_is_a_stream_of_completion_chunks(kind):
    server = Server(sse_response(EVENTS, **{"x-request-id": "req_c"}))
    stream = await resolve(make_client(kind, server).completions.create(
        model="openai/m", prompt="one two", stream=True, stream_options={"include_usage": True}))
    assert isinstance(stream, Stream if kind == "sync" else AsyncStream)
    assert stream.request_id == "req_c"
    chunks = await collect(stream)
    assert all(isinstance(c, Completion) for c in chunks) and len(chunks) == 5
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "completed: one two"
    assert chunks[0].provider == "openai" and chunks[1].provider is None
    assert [c.choices[0].finish_reason for c in chunks[:4]] == [None, None, None, "stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.cost == pytest.approx(2e-06)
    assert server.body() == {"model": "openai/m", "prompt": "one two", "stream": True,
                             "stream_options": {"include_usage": True}}
    assert stream.response.is_closed


async def test_a_stream_cut_before_done_is_incomplete(kind):
    server = Server(sse_response(EVENTS[:2]))
    stream = await resolve(make_client(kind, server).completions.create(
        model="openai/m", prompt="one two", stream=True))
    with pytest.raises(lunos.IncompleteStreamError):
        await collect(stream)


# --- errors -------------------------------------------------------------------------------


async def test_an_error_answer_is_the_typed_error(kind):
    body = {"error": {"message": "The provider 'anthropic' has no text completions route",
                      "type": "invalid_request_error", "param": "model", "code": "unsupported_endpoint"}}
    server = Server(httpx.Response(400, json=body, headers={"x-request-id": "req_e"}))
    with pytest.raises(lunos.BadRequestError) as caught:
        await resolve(make_client(kind, server).completions.create(
            model="anthropic/claude-sonnet-4-5", prompt="x", stream=True))
    exc = caught.value
    assert (exc.status_code, exc.param, exc.code) == (400, "model", "unsupported_endpoint")
    assert exc.body == body and exc.request_id == "req_e"
    assert exc.request.url.path == "/v1/completions"
    assert len(server.requests) == 1


async def test_an_error_event_in_the_stream_is_the_typed_error(kind):
    error = {"message": "openai: the stream broke off", "type": "upstream_error"}
    server = Server(sse_response([EVENTS[0], sse_event({"error": error})]))
    stream = await resolve(make_client(kind, server).completions.create(
        model="openai/m", prompt="one two", stream=True))
    with pytest.raises(lunos.InternalServerError) as caught:
        await collect(stream)
    assert caught.value.status_code == 502 and caught.value.message == error["message"]


@pytest.mark.parametrize(("cls", "resource"), [(Lunos, TextCompletions), (AsyncLunos, AsyncTextCompletions)])
def test_clients_expose_the_resource_once(cls, resource):
    client = cls(api_key="sk-test")
    assert type(client.completions) is resource and client.completions is client.completions
    assert client.chat.completions is not client.completions

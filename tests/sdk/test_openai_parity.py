"""The Lunos SDK takes every parameter of the official `openai` SDK's Chat Completions
`create` and `parse`, sync and async, and sends each as the official SDK does: a parameter
OpenAI adds makes this fail until the SDK has it too."""

from __future__ import annotations

import inspect
import json

import httpx
import openai
import pydantic
import pytest
from openai.resources.chat import completions as official

from lunos import AsyncLunos, Lunos
from lunos.resources.chat import CHAT_PARAMS, AsyncCompletions, Completions
from tests.sdk.conftest import Server, make_client, resolve

LUNOS_ONLY = {"observability", "models", "fallback_model", "drop_params", "cache"}
REQUEST_OPTIONS = {"extra_headers", "extra_query", "extra_body", "timeout"}
REQUIRED = {"messages", "model"}

PAIRS = [
    pytest.param(Completions.create, official.Completions.create, id="create"),
    pytest.param(AsyncCompletions.create, official.AsyncCompletions.create, id="async-create"),
    pytest.param(Completions.parse, official.Completions.parse, id="parse"),
    pytest.param(AsyncCompletions.parse, official.AsyncCompletions.parse, id="async-parse"),
]


def keywords(method) -> dict[str, inspect.Parameter]:
    params = inspect.signature(method).parameters
    assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in params.values())
    return {n: p for n, p in params.items() if n != "self"}


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_every_official_parameter_is_a_keyword(ours, theirs):
    mine, official_params = keywords(ours), keywords(theirs)
    assert set(official_params) - set(mine) == set(), "parameters the Lunos SDK lacks"
    assert set(mine) - set(official_params) == LUNOS_ONLY
    for name, param in mine.items():
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        if name in REQUIRED or (name == "response_format" and "parse" in ours.__name__):
            continue
        assert param.default is None, f"{name} must default to None (not sent)"


def test_every_body_parameter_is_sent():
    official_body = set(keywords(official.Completions.create)) - REQUEST_OPTIONS
    assert set(CHAT_PARAMS) == official_body | LUNOS_ONLY


def test_reasoning_effort_takes_every_value_the_gateway_accepts():
    from lunos.gateway.validation import REASONING_EFFORTS
    from lunos.resources.chat import ReasoningEffort

    assert set(ReasoningEffort.__args__) == REASONING_EFFORTS


# Every body parameter with a value of the shape OpenAI documents.
VALUES = {
    "audio": {"voice": "alloy", "format": "wav"},
    "frequency_penalty": 0.5,
    "function_call": {"name": "f"},
    "functions": [{"name": "f", "parameters": {"type": "object", "properties": {}}}],
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "max_completion_tokens": 300,
    "max_tokens": 256,
    "metadata": {"team": "core"},
    "modalities": ["text"],
    "moderation": {"model": "omni-moderation-latest"},
    "n": 2,
    "parallel_tool_calls": False,
    "prediction": {"type": "content", "content": "draft"},
    "presence_penalty": -0.5,
    "prompt_cache_key": "user-42",
    "prompt_cache_options": {"mode": "auto"},
    "prompt_cache_retention": "24h",
    "reasoning_effort": "xhigh",
    "response_format": {"type": "json_object"},
    "safety_identifier": "hash-42",
    "seed": 7,
    "service_tier": "flex",
    "stop": ["END"],
    "store": True,
    "stream": False,
    "stream_options": {"include_usage": True},
    "temperature": 0.7,
    "tool_choice": "auto",
    "tools": [{"type": "function", "function": {"name": "g", "parameters": {}}}],
    "top_logprobs": 3,
    "top_p": 0.9,
    "user": "u-1",
    "verbosity": "low",
    "web_search_options": {"search_context_size": "low"},
}
LUNOS_VALUES = {"observability": True, "models": ["anthropic/claude-haiku-4-5"],
                "fallback_model": "openai/gpt-4o-mini", "drop_params": True,
                "cache": {"ttl": 60}}
MESSAGES = [{"role": "user", "content": "Hi"}]
ANSWER = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"x\": 1}"},
                       "finish_reason": "stop"}]}


def test_values_cover_every_official_body_parameter():
    assert set(VALUES) == set(keywords(official.Completions.create)) - REQUEST_OPTIONS - REQUIRED


def official_body(**params) -> dict:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWER)

    client = openai.OpenAI(api_key="sk-test", base_url="http://gw/v1",
                           http_client=httpx.Client(transport=httpx.MockTransport(answer)))
    client.chat.completions.create(model="m", messages=MESSAGES, **params)
    return json.loads(seen[0].content)


async def test_each_parameter_is_sent_as_the_official_sdk_sends_it(kind):
    server = Server(httpx.Response(200, json=ANSWER))
    client = make_client(kind, server)
    await resolve(client.chat.completions.create(
        model="m", messages=MESSAGES, **VALUES, **LUNOS_VALUES))
    assert server.body() == {**official_body(**VALUES), **LUNOS_VALUES}


class Answer(pydantic.BaseModel):
    x: int


async def test_parse_sends_every_parameter_too(kind):
    server = Server(httpx.Response(200, json=ANSWER))
    client = make_client(kind, server)
    values = {k: v for k, v in VALUES.items() if k not in ("response_format", "stream")}
    result = await resolve(client.chat.completions.parse(
        model="m", messages=MESSAGES, response_format=Answer, **values, **LUNOS_VALUES))
    assert result.choices[0].message.parsed == Answer(x=1)
    body = server.body()
    assert body.pop("response_format")["type"] == "json_schema"
    assert body == {"model": "m", "messages": MESSAGES, **values, **LUNOS_VALUES}


@pytest.mark.parametrize("cls", [Lunos, AsyncLunos])
def test_clients_expose_the_checked_methods(cls):
    completions = cls(api_key="sk-test").chat.completions
    assert type(completions) in (Completions, AsyncCompletions)

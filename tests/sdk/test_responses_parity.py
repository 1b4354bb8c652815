"""`client.responses` takes the parameters of the official `openai` SDK's `responses.create`,
`stream` and `parse`, sync and async, and sends each as the official SDK does: a parameter
OpenAI adds makes this fail until the SDK has it too."""

from __future__ import annotations

import inspect
import json

import httpx
import openai
import pydantic
import pytest
from openai.resources.responses import input_items as official_items
from openai.resources.responses import responses as official

from lunos import AsyncLunos, Lunos
from lunos.resources.responses import (
    RESPONSES_PARAMS,
    AsyncInputItems,
    AsyncResponses,
    InputItems,
    Responses,
)
from tests.sdk.conftest import Server, make_client, resolve
from tests.sdk.responses_fixtures import response
from tests.sdk.test_openai_parity import LUNOS_ONLY, REQUEST_OPTIONS, keywords

REQUIRED = {"model", "input", "response_id"}
# Not offered, with the reason: resuming a background response's stream (`response_id`,
# `starting_after`: the gateway runs no background responses); `parse` never streams, and
# reads the answer as `text_format` (`parse_as`, another type, is left to `create`).
NOT_OFFERED = {"stream": {"response_id", "starting_after"}, "parse": {"stream", "parse_as"}}

PAIRS = [
    pytest.param(Responses.create, official.Responses.create, id="create"),
    pytest.param(AsyncResponses.create, official.AsyncResponses.create, id="async-create"),
    pytest.param(Responses.stream, official.Responses.stream, id="stream"),
    pytest.param(AsyncResponses.stream, official.AsyncResponses.stream, id="async-stream"),
    pytest.param(Responses.parse, official.Responses.parse, id="parse"),
    pytest.param(AsyncResponses.parse, official.AsyncResponses.parse, id="async-parse"),
]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_every_official_parameter_is_a_keyword(ours, theirs):
    mine, official_params = keywords(ours), keywords(theirs)
    left_out = NOT_OFFERED.get(ours.__name__, set())
    assert set(official_params) - set(mine) == left_out, "parameters the Lunos SDK lacks"
    assert set(mine) - set(official_params) == LUNOS_ONLY
    for name, param in mine.items():
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        if name in REQUIRED or (name == "text_format" and ours.__name__ == "parse"):
            continue
        assert param.default is None, f"{name} must default to None (not sent)"


@pytest.mark.parametrize(("ours", "theirs"), [
    (Responses.retrieve, official.Responses.retrieve),
    (Responses.delete, official.Responses.delete),
    (AsyncResponses.retrieve, official.AsyncResponses.retrieve),
    (AsyncResponses.delete, official.AsyncResponses.delete),
    (InputItems.list, official_items.InputItems.list),
    (AsyncInputItems.list, official_items.AsyncInputItems.list),
])
def test_stored_response_methods_use_the_official_names(ours, theirs):
    mine = keywords(ours)
    assert set(mine) <= set(keywords(theirs))
    assert next(iter(mine)) == "response_id"


def test_every_body_parameter_is_sent():
    official_body = set(keywords(official.Responses.create)) - REQUEST_OPTIONS
    assert set(RESPONSES_PARAMS) == official_body | LUNOS_ONLY


# Every body parameter with a value of the shape OpenAI documents.
VALUES = {
    "access_programs": {"cyber": "standard"},
    "background": False,
    "background_options": {"completion_window": "2h"},
    "context_management": [{"type": "compaction", "compact_threshold": 1000}],
    "conversation": "conv_1",
    "image": {"context_compression": "auto"},
    "include": ["reasoning.encrypted_content"],
    "instructions": "Be brief.",
    "max_output_tokens": 300,
    "max_tool_calls": 3,
    "metadata": {"team": "core"},
    "moderation": {"model": "omni-moderation-latest"},
    "parallel_tool_calls": False,
    "previous_response_id": "resp_0",
    "prompt": {"id": "pmpt_1", "version": "2"},
    "prompt_cache_key": "user-42",
    "prompt_cache_options": {"mode": "auto"},
    "prompt_cache_retention": "24h",
    "reasoning": {"effort": "low", "summary": "auto"},
    "safety_identifier": "hash-42",
    "service_tier": "flex",
    "store": True,
    "stream": False,
    "stream_options": {"include_obfuscation": False},
    "temperature": 0.7,
    "text": {"format": {"type": "text"}, "verbosity": "low"},
    "tool_choice": "auto",
    "tools": [{"type": "function", "name": "g", "parameters": {"type": "object"}, "strict": True}],
    "top_logprobs": 3,
    "top_p": 0.9,
    "truncation": "auto",
    "user": "u-1",
}
LUNOS_VALUES = {"observability": True, "models": ["anthropic/claude-haiku-4-5"],
                "fallback_model": "openai/gpt-4o-mini", "drop_params": True,
                "cache": {"ttl": 60}}
INPUT = [{"role": "user", "content": "Hi"}]


def test_values_cover_every_official_body_parameter():
    official_body = set(keywords(official.Responses.create)) - REQUEST_OPTIONS
    assert set(VALUES) == official_body - {"model", "input"}


def official_body(method: str = "create", answer: dict | None = None, **params) -> dict:
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer or response())

    client = openai.OpenAI(api_key="sk-test", base_url="http://gw/v1",
                           http_client=httpx.Client(transport=httpx.MockTransport(reply)))
    getattr(client.responses, method)(model="m", input=INPUT, **params)
    return json.loads(seen[0].content)


async def test_each_parameter_is_sent_as_the_official_sdk_sends_it(kind):
    server = Server(httpx.Response(200, json=response()))
    client = make_client(kind, server)
    await resolve(client.responses.create(model="m", input=INPUT, **VALUES, **LUNOS_VALUES))
    assert server.body() == {**official_body(**VALUES), **LUNOS_VALUES}


class Answer(pydantic.BaseModel):
    x: int


async def test_parse_sends_what_the_official_parse_sends(kind):
    answer = response("completed", [{
        "id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": '{"x": 1}', "annotations": []}]}])
    server = Server(httpx.Response(200, json=answer))
    client = make_client(kind, server)
    values = {k: v for k, v in VALUES.items() if k not in ("stream", "text")}
    values["text"] = {"verbosity": "low"}
    result = await resolve(client.responses.parse(
        model="m", input=INPUT, text_format=Answer, **values))
    assert result.output_parsed == Answer(x=1)
    assert server.body() == official_body("parse", answer, text_format=Answer, **values)
    # `verbosity` goes where the Responses API reads it, `text.verbosity` (the official
    # `parse` sends it as a top-level field of its own).
    await resolve(client.responses.parse(model="m", input=INPUT, text_format=Answer,
                                         verbosity="high"))
    assert server.body()["text"]["verbosity"] == "high" and "verbosity" not in server.body()
    with pytest.raises(TypeError, match="not both"):
        await resolve(client.responses.parse(model="m", input=INPUT, text_format=Answer,
                                             text={"format": {"type": "text"}}))


@pytest.mark.parametrize("cls", [Lunos, AsyncLunos])
def test_clients_expose_the_checked_methods(cls):
    responses = cls(api_key="sk-test").responses
    assert type(responses) in (Responses, AsyncResponses)
    assert type(responses.input_items) in (InputItems, AsyncInputItems)

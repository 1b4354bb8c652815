"""`client.responses` against a running gateway in front of the provider stand-ins, through
both `Lunos` and `AsyncLunos` (every test runs once per client kind).

The stand-ins share one deterministic model (tests/standins/fake_model.py): "You said: <the
last user text>", a call of a tool the user text names, "Tool results: ..." after one, JSON
built from a response schema; so every answer is known in advance.
"""

from __future__ import annotations

import json
from typing import Literal

import pydantic
import pytest

import lunos
from lunos.types.responses import ResponseFunctionCall, ResponseMessage
from tests.sdk.conftest import resolve
from tests.sdk.e2e.conftest import drain, make_key, revoke_key, unique, wait_for_log

ANTHROPIC = "anthropic/claude-sonnet-4-5"
GOOGLE = "google/gemini-2.5-flash"
OPENAI = "openai/gpt-4o"
TRANSLATED = [ANTHROPIC, GOOGLE]
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a place",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                          "required": ["location"]}}


def is_async(client) -> bool:
    return isinstance(client, lunos.AsyncLunos)


async def streamed(client, **params) -> tuple[list[str], lunos.Response]:
    """`responses.stream(...)`: the text deltas and the final response."""
    if is_async(client):
        async with client.responses.stream(**params) as stream:
            texts = [text async for text in stream.text_deltas()]
            return texts, await stream.get_final_response()
    with client.responses.stream(**params) as stream:
        return list(stream.text_deltas()), stream.get_final_response()


@pytest.mark.parametrize("model", [*TRANSLATED, OPENAI])
async def test_create_with_instructions(client, upstreams, model):
    r = await resolve(client.responses.create(
        model=model, input="hello there", instructions="Be brief.", max_output_tokens=256))
    assert isinstance(r, lunos.Response)
    assert (r.object, r.status) == ("response", "completed")
    assert r.output_text == "You said: hello there"
    message = next(item for item in r.output if isinstance(item, ResponseMessage))
    assert message.role == "assistant"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


@pytest.mark.parametrize("model", [*TRANSLATED, OPENAI])
async def test_stream_helper_text_deltas_and_final_response(client, upstreams, model):
    texts, final = await streamed(client, model=model, input="stream this please")
    assert len(texts) > 1 and "".join(texts) == "You said: stream this please"
    assert final.status == "completed" and final.output_text == "You said: stream this please"


async def test_create_stream_events_are_numbered_and_end_completed(client, upstreams):
    stream = await resolve(client.responses.create(model=ANTHROPIC, input="count these words",
                                                   stream=True))
    events = await drain(stream)
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(set(numbers))
    kinds = {e.type for e in events}
    assert {"response.output_item.added", "response.output_text.delta",
            "response.output_text.done", "response.output_item.done"} <= kinds
    assert events[-1].response.output_text == "You said: count these words"


@pytest.mark.parametrize("model", TRANSLATED)
async def test_function_tool_round_trip_by_previous_response_id(client, upstreams, model):
    first = await resolve(client.responses.create(
        model=model, input="What does get_weather say for Paris?", tools=[WEATHER]))
    (call,) = [item for item in first.output if isinstance(item, ResponseFunctionCall)]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"location": "Paris"}
    assert call.call_id
    second = await resolve(client.responses.create(
        model=model, previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C, sunny"}]))
    assert second.output_text.startswith("Tool results:") and "18C, sunny" in second.output_text


async def test_streamed_function_call_arguments(client, upstreams):
    stream = await resolve(client.responses.create(
        model=ANTHROPIC, input="Use get_weather for Paris", tools=[WEATHER], stream=True))
    events = await drain(stream)
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads("".join(deltas)) == json.loads(done.arguments) == {"location": "Paris"}
    (call,) = [i for i in events[-1].response.output if isinstance(i, ResponseFunctionCall)]
    assert call.name == "get_weather"


class Forecast(pydantic.BaseModel):
    city: str
    temperature_c: float
    unit: Literal["C", "F"]
    conditions: list[str]


async def test_parse_returns_the_pydantic_object(client, upstreams):
    r = await resolve(client.responses.parse(
        model=ANTHROPIC, input="Forecast for Paris as JSON", text_format=Forecast))
    assert isinstance(r, lunos.ParsedResponse)
    assert r.output_parsed == Forecast(city="Paris", temperature_c=1.5, unit="C", conditions=["test"])


async def test_incomplete_on_max_output_tokens(client, upstreams):
    words = " ".join(f"w{i}" for i in range(40))
    r = await resolve(client.responses.create(model=GOOGLE, input=words, max_output_tokens=16))
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"


async def test_a_conversation_moves_between_providers(client, upstreams):
    first = await resolve(client.responses.create(model=GOOGLE, input="hello one"))
    second = await resolve(client.responses.create(
        model=ANTHROPIC, input="hello two", previous_response_id=first.id))
    assert second.output_text == "You said: hello two"
    sent = json.dumps(upstreams.anthropic.last.json["messages"])
    assert "hello one" in sent and "You said: hello one" in sent and "hello two" in sent


async def test_stored_responses_retrieve_input_items_delete(client, clients, gateway, upstreams):
    made = await resolve(client.responses.create(
        model=ANTHROPIC, input=[{"role": "user", "content": [{"type": "input_text", "text": "keep me"}]}]))
    got = await resolve(client.responses.retrieve(made.id))
    assert (got.id, got.output_text) == (made.id, "You said: keep me")
    items = await resolve(client.responses.input_items.list(made.id))
    (message,) = list(items)
    assert isinstance(message, ResponseMessage) and message.role == "user"
    assert message.content[0].text == "keep me"

    key = make_key(gateway, unique("rsdk-other"))
    try:
        other = clients(key["key"])
        with pytest.raises(lunos.NotFoundError):
            await resolve(other.responses.retrieve(made.id))
        with pytest.raises(lunos.BadRequestError) as caught:
            await resolve(other.responses.create(model=ANTHROPIC, input="hi",
                                                 previous_response_id=made.id))
        assert caught.value.param == "previous_response_id"
        assert caught.value.code == "previous_response_not_found"
    finally:
        revoke_key(gateway, key["id"])

    deleted = await resolve(client.responses.delete(made.id))
    assert (deleted.id, deleted.object, deleted.deleted) == (made.id, "response.deleted", True)
    with pytest.raises(lunos.NotFoundError):
        await resolve(client.responses.retrieve(made.id))


async def test_lunos_options_and_the_history_row(clients, upstreams):
    client = clients(app_id="rsdk-app")
    r = await resolve(client.responses.create(
        model=ANTHROPIC, input="log me", observability=True))
    row = await wait_for_log(client, r.id, until=lambda row: row.endpoint == "responses")
    assert row.app_id == "rsdk-app" and row.trace is True
    assert row.model == ANTHROPIC


async def test_errors_have_openai_shape(client, upstreams):
    with pytest.raises(lunos.BadRequestError) as caught:
        await resolve(client.responses.create(model=ANTHROPIC, input="hi",
                                              previous_response_id="resp_does_not_exist"))
    assert caught.value.param == "previous_response_id"
    with pytest.raises(lunos.BadRequestError) as missing:
        await resolve(client.responses.create(model=ANTHROPIC, input=None))
    assert missing.value.param == "input"

"""`client.responses` against a scripted transport: what is sent, typed results, streams
(their end, their failures, closing), `stream()`, `parse()`, stored responses."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai.types.responses as official
import pydantic
import pytest

import lunos
from lunos import AsyncResponseStream, ResponseStream
from lunos.types.responses import (
    ResponseFunctionCall,
    ResponseFunctionCallOutput,
    ResponseMessage,
    ResponseOtherItem,
    ResponseOutputText,
    ResponseReasoning,
)
from tests.sdk.conftest import Chunks, Server, make_client, resolve
from tests.sdk.responses_fixtures import (
    CALL,
    MESSAGE,
    call_events,
    response,
    sse,
    text_events,
)


def sse_reply(event_list: list[dict] | bytes, **headers: str) -> tuple[httpx.Response, Chunks]:
    body = Chunks([event_list if isinstance(event_list, bytes) else sse(event_list)])
    reply = httpx.Response(200, headers={"content-type": "text/event-stream", **headers},
                           stream=body)
    return reply, body


async def collect(stream) -> list:
    if isinstance(stream, AsyncResponseStream):
        return [event async for event in stream]
    return list(stream)


def test_fixtures_have_openai_shapes():
    adapter = pydantic.TypeAdapter(official.ResponseStreamEvent)
    official.Response.model_validate(response())
    official.Response.model_validate(response("completed", [CALL]))
    for event in [*text_events(), *call_events(), *text_events(last="response.incomplete")]:
        adapter.validate_python(event)


# --- create -------------------------------------------------------------------------------


async def test_create_sends_the_body_and_reads_a_typed_response(kind):
    server = Server(httpx.Response(200, json=response(), headers={"x-request-id": "req_1"}))
    client = make_client(kind, server, app_id="billing")
    tools = ({"type": "function", "name": "f", "parameters": {"type": "object"}} for _ in [0])
    result = await resolve(client.responses.create(
        model="openai/gpt-5", input="Capital of France?", instructions="Be brief.",
        tools=tools, tool_choice="auto", parallel_tool_calls=False,
        text={"verbosity": "low"}, reasoning={"effort": "low"}, max_output_tokens=200,
        temperature=0.2, top_p=0.9, metadata={"team": "core"}, store=True,
        previous_response_id="resp_0", include=["reasoning.encrypted_content"], user="u-1",
        observability=True, models=["anthropic/claude-haiku-4-5"], fallback_model="google/x",
        drop_params=True, cache={"ttl": 60},
        extra_headers={"x-trace": "t"}, extra_query={"q": "1"}, extra_body={"truncation": "auto"},
    ))
    request = server.last
    assert (request.method, request.url.path, request.url.params["q"]) == ("POST", "/v1/responses", "1")
    assert request.headers["x-trace"] == "t" and request.headers["x-app-id"] == "billing"
    assert server.body() == {
        "model": "openai/gpt-5", "input": "Capital of France?", "instructions": "Be brief.",
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "tool_choice": "auto", "parallel_tool_calls": False, "text": {"verbosity": "low"},
        "reasoning": {"effort": "low"}, "max_output_tokens": 200, "temperature": 0.2,
        "top_p": 0.9, "metadata": {"team": "core"}, "store": True,
        "previous_response_id": "resp_0", "include": ["reasoning.encrypted_content"],
        "user": "u-1", "observability": True, "models": ["anthropic/claude-haiku-4-5"],
        "fallback_model": "google/x", "drop_params": True, "cache": {"ttl": 60},
        "truncation": "auto",
    }
    assert isinstance(result, lunos.Response)
    assert (result.id, result.status, result.model) == ("resp_1", "completed", "openai/gpt-5")
    reasoning, message = result.output
    assert isinstance(reasoning, ResponseReasoning) and reasoning.encrypted_content == "gAAAA-opaque"
    assert reasoning.summary[0].text == "Think."
    assert isinstance(message, ResponseMessage)
    part = message.content[0]
    assert isinstance(part, ResponseOutputText)
    assert part.annotations[0].url == "https://example.org/paris"
    assert part.annotations[0].end_index == 5
    assert result.output_text == "Paris is the capital."
    assert result.usage.input_tokens_details.cached_tokens == 4
    assert result.usage.output_tokens_details.reasoning_tokens == 3
    assert result.usage.cost == pytest.approx(0.00042)


async def test_input_items_and_sdk_results_are_sent_as_json(kind):
    server = Server(httpx.Response(200, json=response("completed", [CALL])))
    client = make_client(kind, server)
    first = await resolve(client.responses.create(model="m", input="Weather in Paris?"))
    call = first.output[0]
    assert isinstance(call, ResponseFunctionCall)
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "call_abc", "get_weather", {"city": "Paris"})
    items = iter([call, {"type": "function_call_output", "call_id": call.call_id, "output": "18C"}])
    await resolve(client.responses.create(model="m", input=items))
    assert server.body()["input"] == [
        {**CALL},
        {"type": "function_call_output", "call_id": "call_abc", "output": "18C"},
    ]


def test_unknown_items_and_fields_are_kept():
    search = {"id": "ws_1", "type": "web_search_call", "status": "completed",
              "action": {"type": "search", "query": "paris"}}
    result = lunos.Response.model_validate(
        response("incomplete", [search, MESSAGE], incomplete_details={"reason": "max_output_tokens"},
                 provider="openai"))
    assert isinstance(result.output[0], ResponseOtherItem)
    assert result.output[0].action == {"type": "search", "query": "paris"}
    assert result.incomplete_details.reason == "max_output_tokens"
    assert result.provider == "openai"
    assert result.to_dict()["output"][0] == search


async def test_an_error_answer_raises_the_typed_error(kind):
    error = {"error": {"message": "Previous response with id 'resp_x' not found.",
                       "type": "invalid_request_error", "param": "previous_response_id",
                       "code": "previous_response_not_found"}}
    client = make_client(kind, Server(httpx.Response(400, json=error)))
    with pytest.raises(lunos.BadRequestError) as caught:
        await resolve(client.responses.create(model="m", input="hi", previous_response_id="resp_x"))
    assert (caught.value.param, caught.value.code) == (
        "previous_response_id", "previous_response_not_found")


async def test_raw_response_gives_headers_then_the_response(kind):
    server = Server(httpx.Response(200, json=response(), headers={"x-lunos-dropped-params": "top_p"}))
    client = make_client(kind, server)
    raw = await resolve(client.responses.with_raw_response.create(model="m", input="hi", top_p=0.5))
    assert raw.headers["x-lunos-dropped-params"] == "top_p"
    assert raw.parse().output_text == "Paris is the capital."


# --- streams ------------------------------------------------------------------------------


async def test_create_stream_yields_typed_events_and_ends_on_the_last_one(kind):
    # No `data: [DONE]`: the stream is complete with response.completed.
    reply, body = sse_reply(text_events())
    server = Server(reply)
    client = make_client(kind, server)
    stream = await resolve(client.responses.create(model="m", input="hi", stream=True))
    assert isinstance(stream, ResponseStream if kind == "sync" else AsyncResponseStream)
    assert server.body()["stream"] is True
    assert server.last.headers["accept"] == "text/event-stream"
    got = await collect(stream)
    assert [e.sequence_number for e in got] == list(range(len(got)))
    assert [e.delta for e in got if e.type == "response.output_text.delta"] == ["Paris", " is the capital."]
    added = next(e for e in got if e.type == "response.output_item.added")
    assert isinstance(added.item, ResponseMessage) and added.output_index == 0
    assert next(e for e in got if e.type == "response.output_text.done").text == "Paris is the capital."
    assert got[-1].type == "response.completed"
    assert got[-1].response.output_text == "Paris is the capital."
    assert body.closed


async def test_function_call_arguments_stream(kind):
    reply, _ = sse_reply(call_events())
    client = make_client(kind, Server(reply))
    got = await collect(await resolve(client.responses.create(model="m", input="hi", stream=True)))
    deltas = [e.delta for e in got if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == '{"city": "Paris"}'
    done = next(e for e in got if e.type == "response.function_call_arguments.done")
    assert (done.name, done.arguments, done.item_id) == ("get_weather", '{"city": "Paris"}', "fc_1")
    final = got[-1].response.output[0]
    assert isinstance(final, ResponseFunctionCall) and final.call_id == "call_abc"


async def test_leaving_the_with_block_early_closes_the_response(kind):
    reply, body = sse_reply(text_events())
    client = make_client(kind, Server(reply))
    stream = await resolve(client.responses.create(model="m", input="hi", stream=True))
    if kind == "sync":
        with stream:
            first = next(stream)
    else:
        async with stream:
            first = await stream.__anext__()
    assert first.type == "response.created"
    assert body.closed


async def test_breaking_out_of_a_loop_closes_the_response(kind):
    reply, body = sse_reply(text_events())
    client = make_client(kind, Server(reply))
    stream = await resolve(client.responses.create(model="m", input="hi", stream=True))
    if kind == "sync":
        for _ in stream:
            break
    else:
        async for _ in stream:
            break
        # The dropped async generator is finalized by the event loop on one of its next turns.
        for _ in range(20):
            if body.closed:
                break
            await asyncio.sleep(0)
    assert body.closed
    assert body.served == 1 and await collect(stream) == []


async def test_a_stream_cut_before_its_last_event_raises(kind):
    reply, body = sse_reply(text_events()[:-1])
    client = make_client(kind, Server(reply))
    stream = await resolve(client.responses.create(model="m", input="hi", stream=True))
    with pytest.raises(lunos.IncompleteStreamError):
        await collect(stream)
    assert body.closed


async def test_response_failed_raises_its_error(kind):
    failed = response("failed", [], usage=None,
                      error={"code": "server_error", "message": "The provider went away."})
    reply, body = sse_reply(text_events(last="response.failed", final=failed))
    client = make_client(kind, Server(reply))
    stream = await resolve(client.responses.create(model="m", input="hi", stream=True))
    seen = []
    with pytest.raises(lunos.APIError) as caught:
        if kind == "sync":
            for event in stream:
                seen.append(event.type)
        else:
            async for event in stream:
                seen.append(event.type)
    assert "response.output_text.done" in seen and "response.failed" not in seen
    assert caught.value.message == "The provider went away."
    assert caught.value.body["error"]["code"] == "server_error"
    assert caught.value.body["response"]["status"] == "failed"
    assert body.closed


@pytest.mark.parametrize("framing", ["named", "data-only"])
async def test_an_error_event_raises(kind, framing):
    error = {"type": "error", "sequence_number": 3, "code": "rate_limit_exceeded",
             "message": "Slow down.", "param": None}
    head = sse(text_events()[:3])
    if framing == "named":
        tail = f"event: error\ndata: {json.dumps(error)}\n\n".encode()
    else:
        tail = f"data: {json.dumps(error)}\n\n".encode()
    reply, body = sse_reply(head + tail)
    client = make_client(kind, Server(reply))
    stream = await resolve(client.responses.create(model="m", input="hi", stream=True))
    with pytest.raises(lunos.APIError) as caught:
        await collect(stream)
    assert caught.value.message == "Slow down."
    assert body.closed


# --- responses.stream() -------------------------------------------------------------------


async def test_stream_helper_sends_on_enter_and_gives_text_and_the_final_response(kind):
    reply, body = sse_reply(text_events())
    server = Server(reply)
    client = make_client(kind, server)
    manager = client.responses.stream(model="m", input="hi", instructions="Be brief.")
    assert server.requests == []  # nothing sent until the block is entered
    if kind == "sync":
        with manager as stream:
            texts = list(stream.text_deltas())
            final = stream.get_final_response()
    else:
        async with manager as stream:
            texts = [t async for t in stream.text_deltas()]
            final = await stream.get_final_response()
    assert server.body() == {"model": "m", "input": "hi", "instructions": "Be brief.", "stream": True}
    assert texts == ["Paris", " is the capital."]
    assert final.output_text == "Paris is the capital." and final.status == "completed"
    assert body.closed


async def test_stream_helper_closes_on_exit_and_final_response_of_an_incomplete_stream(kind):
    reply, body = sse_reply(text_events(last="response.incomplete", final=response(
        "incomplete", [MESSAGE], incomplete_details={"reason": "max_output_tokens"})))
    client = make_client(kind, Server(reply))
    manager = client.responses.stream(model="m", input="hi", max_output_tokens=5)
    if kind == "sync":
        with manager as stream:
            final = stream.get_final_response()
    else:
        async with manager as stream:
            final = await stream.get_final_response()
    assert final.status == "incomplete" and final.incomplete_details.reason == "max_output_tokens"

    reply, body = sse_reply(text_events())
    client = make_client(kind, Server(reply))
    if kind == "sync":
        with client.responses.stream(model="m", input="hi") as stream:
            next(stream)
    else:
        async with client.responses.stream(model="m", input="hi") as stream:
            await stream.__anext__()
    assert body.closed
    with pytest.raises(lunos.LunosError, match="closed before its last event"):
        await resolve(stream.get_final_response())


class City(pydantic.BaseModel):
    name: str
    country: str


CITY_JSON = '{"name": "Paris", "country": "France"}'


async def test_stream_helper_with_text_format_parses_the_final_response(kind):
    reply, _ = sse_reply(text_events(('{"name": "Paris", ', '"country": "France"}')))
    server = Server(reply)
    client = make_client(kind, server)
    if kind == "sync":
        with client.responses.stream(model="m", input="hi", text_format=City) as stream:
            final = stream.get_final_response()
    else:
        async with client.responses.stream(model="m", input="hi", text_format=City) as stream:
            final = await stream.get_final_response()
    assert final.output_parsed == City(name="Paris", country="France")
    assert server.body()["text"]["format"]["name"] == "City"


# --- parse --------------------------------------------------------------------------------


def answer_with(text: str, status: str = "completed", **extra) -> dict:
    message = {**MESSAGE, "content": [{"type": "output_text", "text": text, "annotations": []}]}
    return response(status, [message], **extra)


async def test_parse_sends_a_strict_schema_and_returns_the_parsed_object(kind):
    server = Server(httpx.Response(200, json=answer_with(CITY_JSON)))
    client = make_client(kind, server)
    result = await resolve(client.responses.parse(
        model="m", input="Where is the Eiffel tower?", text_format=City,
        text={"verbosity": "low"}, temperature=0))
    assert isinstance(result, lunos.ParsedResponse)
    assert result.output_parsed == City(name="Paris", country="France")
    assert result.output_text == CITY_JSON
    body = server.body()
    assert body["temperature"] == 0 and "stream" not in body
    assert body["text"] == {"verbosity": "low", "format": {
        "type": "json_schema", "name": "City", "strict": True,
        "schema": {"type": "object", "title": "City", "additionalProperties": False,
                   "required": ["name", "country"],
                   "properties": {"name": {"type": "string", "title": "Name"},
                                  "country": {"type": "string", "title": "Country"}}},
    }}


async def test_parse_through_raw_response(kind):
    server = Server(httpx.Response(200, json=answer_with(CITY_JSON), headers={"x-request-id": "r9"}))
    client = make_client(kind, server)
    raw = await resolve(client.responses.with_raw_response.parse(
        model="m", input="hi", text_format=City, verbosity="high"))
    assert raw.request_id == "r9"
    assert raw.parse().output_parsed.country == "France"
    assert server.body()["text"]["verbosity"] == "high"


@pytest.mark.parametrize(("answer", "message"), [
    (answer_with('{"name": "Par', "incomplete", incomplete_details={"reason": "max_output_tokens"}),
     "raise max_output_tokens"),
    (answer_with('{"name": "Paris"}'), "not a valid City"),
    (response("completed", [{**MESSAGE, "content": [{"type": "refusal", "refusal": "No."}]}]),
     "refused: No."),
])
async def test_parse_failures_raise_structured_output_error(kind, answer, message):
    client = make_client(kind, Server(httpx.Response(200, json=answer)))
    with pytest.raises(lunos.StructuredOutputError, match=message) as caught:
        await resolve(client.responses.parse(model="m", input="hi", text_format=City))
    assert isinstance(caught.value.completion, lunos.Response)


async def test_parse_of_a_tool_call_has_nothing_parsed(kind):
    client = make_client(kind, Server(httpx.Response(200, json=response("completed", [CALL]))))
    result = await resolve(client.responses.parse(model="m", input="hi", text_format=City))
    assert result.output_parsed is None
    assert isinstance(result.output[0], ResponseFunctionCall)


async def test_parse_refuses_a_dict_text_format(kind):
    client = make_client(kind, Server(httpx.Response(200, json=response())))
    with pytest.raises(TypeError, match="text_format takes a pydantic model"):
        await resolve(client.responses.parse(model="m", input="hi", text_format={"type": "text"}))


# --- stored responses ---------------------------------------------------------------------


async def test_retrieve_delete_and_input_items(kind):
    deleted = {"id": "resp_1", "object": "response.deleted", "deleted": True}
    items = {"object": "list", "first_id": "msg_in", "last_id": "fco_1", "has_more": False,
             "data": [
                 {"id": "msg_in", "type": "message", "role": "user", "status": "completed",
                  "content": [{"type": "input_text", "text": "Weather in Paris?"},
                              {"type": "input_image", "image_url": "https://x/p.png", "detail": "auto"}]},
                 {"id": "fco_1", "type": "function_call_output", "call_id": "call_abc",
                  "output": "18C", "status": "completed"},
             ]}
    official.ResponseItem  # noqa: B018 - the list's items are of these shapes
    server = Server(httpx.Response(200, json=response()), httpx.Response(200, json=items),
                    httpx.Response(200, json=deleted))
    client = make_client(kind, server)
    got = await resolve(client.responses.retrieve("resp_1"))
    assert (server.last.method, server.last.url.path) == ("GET", "/v1/responses/resp_1")
    assert got.output_text == "Paris is the capital."
    page = await resolve(client.responses.input_items.list("resp_1", after="msg_0", limit=2, order="asc"))
    assert server.last.url.path == "/v1/responses/resp_1/input_items"
    assert dict(server.last.url.params) == {"after": "msg_0", "limit": "2", "order": "asc"}
    message, output = list(page)
    assert isinstance(message, ResponseMessage) and message.role == "user"
    assert message.content[0].text == "Weather in Paris?"
    assert message.content[1].image_url == "https://x/p.png"
    assert isinstance(output, ResponseFunctionCallOutput) and output.output == "18C"
    assert (len(page), page.last_id, page.has_more) == (2, "fco_1", False)
    gone = await resolve(client.responses.delete("resp_1"))
    assert (server.last.method, server.last.url.path) == ("DELETE", "/v1/responses/resp_1")
    assert isinstance(gone, lunos.ResponseDeleted)
    assert (gone.id, gone.object, gone.deleted) == ("resp_1", "response.deleted", True)


async def test_retrieve_of_an_unknown_id_is_not_found_and_ids_are_quoted(kind):
    error = {"error": {"message": "No response found with id 'a/b?c'.",
                       "type": "invalid_request_error", "param": None, "code": None}}
    server = Server(httpx.Response(404, json=error))
    client = make_client(kind, server)
    with pytest.raises(lunos.NotFoundError):
        await resolve(client.responses.retrieve("a/b?c"))
    assert server.last.url.raw_path == b"/v1/responses/a%2Fb%3Fc"
    with pytest.raises(ValueError, match="response_id"):
        await resolve(client.responses.delete(""))


def test_input_items_validate_against_openai_shapes():
    adapter = pydantic.TypeAdapter(official.ResponseInputItem)
    adapter.validate_python({"type": "function_call_output", "call_id": "call_abc", "output": "18C"})
    adapter.validate_python({"type": "message", "role": "user",
                             "content": [{"type": "input_text", "text": "hi"}]})

"""The OpenAI stand-in's Responses API, driven by the official `openai` SDK without the
gateway: it must accept what OpenAI's Responses API accepts, refuse what it refuses, and
answer as the Chat Completions stand-in answers (the same fake model), so the gateway's
Responses tests can compare the two."""

from __future__ import annotations

import json

import httpx
import openai
import pydantic
import pytest

from tests.conftest import OPENAI_KEY
from tests.standins.fake_model import NATIVE_SOURCE

WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"],
    "additionalProperties": False}}
ENCRYPTED = ["reasoning.encrypted_content"]


class Weather(pydantic.BaseModel):
    city: str
    degrees: int


@pytest.fixture
def client(upstreams) -> openai.OpenAI:
    return openai.OpenAI(base_url=upstreams.servers["openai"].url + "/v1", api_key=OPENAI_KEY, max_retries=0)


def refused(call, status: int, param: str | None, code: str | None, message: str = "",
            kind: str = "invalid_request_error") -> dict:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    error = caught.value.response.json()["error"]
    assert caught.value.status_code == status, error
    assert (error["type"], error["param"], error["code"]) == (kind, param, code), error
    assert message in error["message"], error
    return error


def calls_of(response) -> list:
    return [item for item in response.output if item.type == "function_call"]


# ---------------------------------------------------------------- answers, as chat answers

def test_create_answers_as_chat_does(client, upstreams):
    response = client.responses.create(model="gpt-4o", instructions="Be brief.", input="hello there")
    assert response.output_text == "You said: hello there"
    assert (response.status, response.object, response.model) == ("completed", "response", "gpt-4o")
    assert response.id.startswith("resp_") and response.output[0].id.startswith("msg_")
    assert upstreams.openai.last.path == "/v1/responses" and upstreams.openai.last.method == "POST"
    chat = client.chat.completions.create(model="gpt-4o", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}])
    assert chat.choices[0].message.content == response.output_text
    assert (response.usage.input_tokens, response.usage.output_tokens) == (
        chat.usage.prompt_tokens, chat.usage.completion_tokens) == (5, 4)
    assert response.usage.total_tokens == 9 and response.usage.input_tokens_details.cached_tokens == 0
    assert upstreams.openai.responses.billed == [response.usage.model_dump(exclude_none=True)]


def test_input_items_with_roles_and_an_image(client):
    png = "data:image/png;base64," + "iVBORw0KGgo=" + "A" * 80
    response = client.responses.create(model="gpt-4o", input=[
        {"role": "developer", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is this?"}, {"type": "input_image", "image_url": png, "detail": "auto"}]}])
    assert response.output_text.startswith("I see 1 image: image/png")


def test_a_stream_has_the_typed_events_in_order(client):
    with client.responses.stream(model="gpt-4o", input="hello there friend") as stream:
        events = list(stream)
        final = stream.get_final_response()
    names = [e.type for e in events]
    assert names[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert names[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["You", " said:", " hello", " there", " friend"]
    assert final.output_text == "You said: hello there friend" and final.usage.output_tokens == 5


def test_raw_stream_frames_name_their_event(upstreams):
    r = httpx.post(upstreams.servers["openai"].url + "/v1/responses", timeout=10,
                   headers={"authorization": f"Bearer {OPENAI_KEY}"},
                   json={"model": "gpt-4o", "input": "hi", "stream": True})
    frames = [block.split("\n") for block in r.text.strip().split("\n\n")]
    for event_line, data_line in frames:
        assert json.loads(data_line.removeprefix("data: "))["type"] == event_line.removeprefix("event: ")


# ---------------------------------------------------------------- function tools

def test_a_function_call_continued_with_its_output(client):
    first = client.responses.create(model="gpt-4o", tools=[WEATHER], input="What is the weather? Use get_weather")
    (call,) = calls_of(first)
    assert (call.name, json.loads(call.arguments), call.status) == ("get_weather", {"location": "Paris"}, "completed")
    assert call.call_id.startswith("call_") and call.id.startswith("fc_")
    items = [{"role": "user", "content": "What is the weather? Use get_weather"}, *first.output,
             {"type": "function_call_output", "call_id": call.call_id, "output": "18C"}]
    final = client.responses.create(model="gpt-4o", tools=[WEATHER], input=items)
    assert final.output_text == "Tool results: get_weather=18C"
    by_id = client.responses.create(model="gpt-4o", tools=[WEATHER], previous_response_id=first.id,
                                    input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C"}])
    assert by_id.output_text == "Tool results: get_weather=18C"


def test_streamed_arguments_come_in_pieces(client):
    with client.responses.stream(model="gpt-4o", tools=[WEATHER], input="weather please, get_weather") as stream:
        events = list(stream)
        final = stream.get_final_response()
    pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert pieces == ['{"locat', 'ion":"P', 'aris"}']
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done.arguments == '{"location":"Paris"}'
    assert calls_of(final)[0].arguments == done.arguments


def test_tool_choice_parallel_calls_and_namespaces(client):
    other = {**WEATHER, "name": "get_time"}
    forced = client.responses.create(model="gpt-4o", tools=[WEATHER, other], input="hello",
                                     tool_choice={"type": "function", "name": "get_time"})
    assert [c.name for c in calls_of(forced)] == ["get_time"]
    both = client.responses.create(model="gpt-4o", tools=[WEATHER, other], input="call get_weather and get_time")
    assert [c.name for c in calls_of(both)] == ["get_weather", "get_time"]
    one = client.responses.create(model="gpt-4o", tools=[WEATHER, other], parallel_tool_calls=False,
                                  input="call get_weather and get_time")
    assert [c.name for c in calls_of(one)] == ["get_weather"]
    grouped = client.responses.create(model="gpt-4o", input="Use get_weather", tools=[
        {"type": "namespace", "name": "meteo", "description": "Weather tools", "tools": [WEATHER]}])
    assert (calls_of(grouped)[0].name, calls_of(grouped)[0].namespace) == ("get_weather", "meteo")
    scripted = client.responses.create(model="gpt-4o", tools=[WEATHER], input='[[call get_weather {"location": "Oslo"}]]')
    assert json.loads(calls_of(scripted)[0].arguments) == {"location": "Oslo"}


def test_tool_items_must_pair_up(client):
    ask = {"role": "user", "content": "hi"}
    call = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}
    refused(lambda: client.responses.create(model="gpt-4o", input=[
        ask, {"type": "function_call_output", "call_id": "call_9", "output": "x"}]),
        400, "input", None, "No tool call found for function call output with call_id call_9.")
    refused(lambda: client.responses.create(model="gpt-4o", input=[ask, call]),
            400, "input", None, "No tool output found for function call call_1.")
    chat_shaped = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", tools=[chat_shaped]),
            400, "tools[0].name", "missing_required_parameter")


# ---------------------------------------------------------------- reasoning

def test_a_reasoning_model_reasons_first_and_bills_it(client):
    response = client.responses.create(model="gpt-5", input="hello there", reasoning={"effort": "low", "summary": "auto"})
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content is None
    assert reasoning.summary[0].text == "Thinking about: hello there"
    assert response.usage.output_tokens_details.reasoning_tokens == 4
    assert response.usage.output_tokens == 4 + 4 and message.content[0].text == "You said: hello there"
    with client.responses.stream(model="gpt-5", input="hello there", reasoning={"summary": "auto"}) as stream:
        names = [e.type for e in stream]
    assert "response.reasoning_summary_text.delta" in names
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", reasoning={"effort": "low"}),
            400, "reasoning.effort", "unsupported_parameter", "not supported with this model")


def test_encrypted_reasoning_goes_back_and_forged_reasoning_is_refused(client):
    ask = {"role": "user", "content": "Use get_weather"}
    first = client.responses.create(model="gpt-5", input=[ask], tools=[WEATHER], store=False, include=ENCRYPTED)
    reasoning, call = first.output
    assert reasoning.encrypted_content.startswith("gAAAAA")
    answer = {"type": "function_call_output", "call_id": call.call_id, "output": "18C"}
    final = client.responses.create(model="gpt-5", tools=[WEATHER], store=False, include=ENCRYPTED,
                                    input=[ask, *first.output, answer])
    assert final.output_text == "Tool results: get_weather=18C"
    forged = {**reasoning.model_dump(exclude_none=True), "encrypted_content": "gAAAAAforged.0000"}
    refused(lambda: client.responses.create(model="gpt-5", tools=[WEATHER], input=[ask, forged, call, answer]),
            400, None, "invalid_encrypted_content", "could not be verified")
    bare = reasoning.model_dump(exclude_none=True, exclude={"encrypted_content"})
    refused(lambda: client.responses.create(model="gpt-5", tools=[WEATHER], input=[ask, bare, call, answer]),
            404, "input", None, "Items are not persisted when `store` is set to false")
    refused(lambda: client.responses.create(model="gpt-5", tools=[WEATHER], input=[ask, call, answer]),
            400, "input", None, f"without its required 'reasoning' item: '{reasoning.id}'")
    refused(lambda: client.responses.create(model="gpt-4o", tools=[WEATHER], input=[ask, *first.output, answer]),
            400, "input", None, "Reasoning input items can only be provided to a reasoning")


def test_stored_reasoning_may_be_sent_back_by_id(client):
    first = client.responses.create(model="gpt-5", input="Use get_weather", tools=[WEATHER])
    reasoning, call = first.output
    final = client.responses.create(model="gpt-5", tools=[WEATHER], input=[
        {"role": "user", "content": "Use get_weather"}, {"type": "reasoning", "id": reasoning.id, "summary": []},
        call, {"type": "function_call_output", "call_id": call.call_id, "output": "18C"}])
    assert final.output_text == "Tool results: get_weather=18C"


# ---------------------------------------------------------------- structured output, limits, search

def test_parse_with_a_pydantic_model(client):
    parsed = client.responses.parse(model="gpt-4o", input="Weather in Paris?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Paris", degrees=1)
    sent = client.responses.create(model="gpt-4o", input="hi [[bad-json]]", text={"format": {
        "type": "json_schema", "name": "weather", "schema": Weather.model_json_schema()}})
    assert sent.output_text == '{"answer": "unfinished'
    loose = {"type": "object", "properties": {"city": {"type": "string"}}}
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", text={"format": {
        "type": "json_schema", "name": "w", "strict": True, "schema": loose}}),
        400, "text.format.schema", "invalid_json_schema", "'additionalProperties' is required")
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", text={"format": {
        "type": "json_schema", "schema": loose}}), 400, "text.format.name", "missing_required_parameter")


def test_max_output_tokens_makes_an_incomplete_response(client):
    words = " ".join(f"word{i}" for i in range(20))
    response = client.responses.create(model="gpt-4o", input=words, max_output_tokens=16)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert len(response.output_text.split()) == 16 and response.output[0].status == "incomplete"
    with client.responses.stream(model="gpt-4o", input=words, max_output_tokens=16) as stream:
        names = [e.type for e in stream]
    assert names[-1] == "response.incomplete" and "response.completed" not in names
    thinking = client.responses.create(model="gpt-5", input=words, max_output_tokens=16)
    assert thinking.status == "incomplete" and [i.type for i in thinking.output] == ["reasoning"]
    assert thinking.usage.output_tokens == thinking.usage.output_tokens_details.reasoning_tokens == 16
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", max_output_tokens=5),
            400, "max_output_tokens", "integer_below_min_value")


def test_web_search_cites_its_source(client):
    response = client.responses.create(model="gpt-4o", tools=[{"type": "web_search"}],
                                       input="search the latest lunos news")
    search, message = response.output
    assert (search.type, search.status, search.action.query) == ("web_search_call", "completed",
                                                                  "search the latest lunos news")
    (citation,) = message.content[0].annotations
    assert (citation.type, citation.url, citation.title) == ("url_citation", *NATIVE_SOURCE[:2])
    assert message.content[0].text[citation.start_index:citation.end_index] == NATIVE_SOURCE[2]
    with client.responses.stream(model="gpt-4o", tools=[{"type": "web_search_preview"}],
                                 input="search the latest lunos news") as stream:
        names = [e.type for e in stream]
    assert "response.web_search_call.searching" in names and "response.output_text.annotation.added" in names


# ---------------------------------------------------------------- stored responses and refusals

def test_stored_responses_continue_and_can_be_read_and_deleted(client, upstreams):
    first = client.responses.create(model="gpt-4o", input="hello there")
    assert client.responses.retrieve(first.id).output_text == "You said: hello there"
    second = client.responses.create(model="gpt-4o", input="and again", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.usage.input_tokens == 3 + 5 + 3  # both turns and the new one
    client.responses.delete(first.id)
    refused(lambda: client.responses.retrieve(first.id), 404, None, None)
    unstored = client.responses.create(model="gpt-4o", input="hi", store=False)
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", previous_response_id=unstored.id),
            400, "previous_response_id", "previous_response_not_found", f"'{unstored.id}' not found")


def test_unknown_fields_and_bad_values_are_refused(client):
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", extra_body={"frequency_penalty": 1}),
            400, "frequency_penalty", "unknown_parameter", "Unknown parameter: 'frequency_penalty'.")
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", extra_body={"messages": []}),
            400, "messages", "unknown_parameter")
    refused(lambda: client.responses.create(model="gpt-4o"), 400, "input", "missing_required_parameter")
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", temperature=3), 400, "temperature",
            "decimal_above_max_value")
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", metadata={"n": 1}), 400, "metadata.n",
            "invalid_type")
    refused(lambda: client.responses.create(model="gpt-4o", input="hi", include=["nope"]), 400, "include[0]",
            "invalid_value")
    accepted = client.responses.create(model="gpt-4o", input="hi", temperature=0.2, top_p=0.5, metadata={"a": "b"},
                                       store=True, include=ENCRYPTED, text={"format": {"type": "text"}},
                                       extra_body={"client_metadata": {"thread_id": "t1"}})  # as Codex sends
    assert accepted.metadata == {"a": "b"} and accepted.temperature == 0.2


def test_failure_markers(client, upstreams):
    refused(lambda: client.responses.create(model="gpt-4o", input="hi [[status:503]]"), 503, None, None,
            kind="server_error")
    with pytest.raises(openai.APIConnectionError), \
            client.responses.stream(model="gpt-4o", input="one two three four [[cut:2]]") as stream:
        seen = []
        for event in stream:
            seen.append(event)
    assert [e.delta for e in seen if e.type == "response.output_text.delta"] == ["You", " said:"]
    assert upstreams.openai.responses.billed == []


def test_a_wrong_key_and_unknown_paths(upstreams):
    wrong = openai.OpenAI(base_url=upstreams.servers["openai"].url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.responses.create(model="gpt-4o", input="hi")
    r = httpx.get(upstreams.servers["openai"].url + "/v1/responses/resp_x/input_items", timeout=5,
                  headers={"authorization": f"Bearer {OPENAI_KEY}"})
    assert r.status_code == 404

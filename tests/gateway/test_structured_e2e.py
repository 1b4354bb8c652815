"""Structured outputs end to end: the official `openai` SDK against `lunos serve`, for every
built-in provider (OpenAI native, Anthropic native and through its response tool, Gemini
2.x and 3.x, an OpenAI-compatible preset), streaming and not.

The stand-ins check the structured-output parameters as the real APIs do and answer with
JSON built from the schema; the `[[bad-json]]` / `[[off-schema]]` markers make them answer
wrongly (first answer only, or `-always`), which proves the single retry and the 502.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass
from typing import Literal, Optional, Union

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.gateway_process import MASTER_KEY, GatewayProcess

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


@dataclass(frozen=True)
class P:
    name: str
    model: str
    standin: str  # attribute of StandIns

    def upstream(self, upstreams):
        return getattr(upstreams, self.standin)


OPENAI = P("openai", "openai/gpt-4o", "openai")
ANTHROPIC = P("anthropic", "anthropic/claude-haiku-4-5", "anthropic")  # native output_config.format
ANTHROPIC_TOOL = P("anthropic-tool", "anthropic/claude-3-7-sonnet-20250219", "anthropic")  # response tool
GEMINI_2 = P("google-2.5", "google/gemini-2.5-flash", "gemini")
GEMINI_3 = P("google-3.5", "google/gemini-3.5-flash", "gemini")
GROQ = P("groq", "groq/llama-3.3-70b-versatile", "openai")  # an OpenAI-compatible preset
ALL = [OPENAI, ANTHROPIC, ANTHROPIC_TOOL, GEMINI_2, GEMINI_3, GROQ]
IDS = [p.name for p in ALL]


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    city: str


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Person(BaseModel):
    """Nested objects, arrays, an enum, a union (anyOf), an optional field, $defs."""

    name: str
    age: int
    favourite: Color
    home: Address
    past: list[Address]
    pet: Union[Cat, Dog]  # noqa: UP007 - the union is the point
    nickname: Optional[str] = None  # noqa: UP045
    scores: list[float]


class Weather(BaseModel):
    city: str
    sky: Literal["sunny", "cloudy"]


class GetWeather(BaseModel):
    """Weather for a city."""

    city: str


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def check_person(person: Person) -> None:
    assert isinstance(person, Person)
    assert person.favourite is Color.RED
    assert person.home.city == "Paris" and person.past[0].city == "Paris"
    assert isinstance(person.pet, Cat) and person.pet.kind == "cat" and person.pet.lives == 1
    assert person.scores == [1.5]


def wait_for_row(base: str, row_id: str) -> dict:
    deadline = time.monotonic() + 1.0
    while True:
        r = httpx.get(f"{base}/v1/logs/{row_id}", headers=AUTH, timeout=5)
        if r.status_code == 200:
            return r.json()
        assert time.monotonic() < deadline, r.text
        time.sleep(0.02)


def sse_events(response: httpx.Response) -> list:
    return [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]


# ---------------------------------------------------------------- parse, every provider


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_parse_returns_the_model(client, upstreams, p):
    r = client.chat.completions.parse(model=p.model, messages=ask("Describe a person"), response_format=Person)
    check_person(r.choices[0].message.parsed)
    assert r.choices[0].finish_reason == "stop" and not r.choices[0].message.tool_calls
    standin = p.upstream(upstreams)
    assert len(standin.requests) == 1  # right the first time: no retry
    sent = standin.last.json
    if p is ANTHROPIC:
        schema = sent["output_config"]["format"]["schema"]
        assert schema["additionalProperties"] is False and "tools" not in sent
    elif p is ANTHROPIC_TOOL:
        assert "output_config" not in sent
        assert sent["tools"][-1]["name"] == "json_response"
        assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    elif p.standin == "gemini":
        config = sent["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        # Gemini has no `const`: the Literal["cat"] travels as a one-value enum.
        assert config["responseJsonSchema"]["$defs"]["Cat"]["properties"]["kind"]["enum"] == ["cat"]
        assert "const" not in config["responseJsonSchema"]["$defs"]["Cat"]["properties"]["kind"]
    else:
        assert sent["response_format"]["type"] == "json_schema"
        assert sent["response_format"]["json_schema"]["strict"] is True


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_stream_parse_returns_the_model(client, upstreams, p):
    deltas = []
    with client.chat.completions.stream(model=p.model, messages=ask("Describe a person"),
                                        response_format=Person) as stream:
        for event in stream:
            if event.type == "content.delta":
                deltas.append(event.delta)
        final = stream.get_final_completion()
    check_person(final.choices[0].message.parsed)
    assert len(deltas) > 1  # the content streamed through in pieces
    assert "".join(deltas) == final.choices[0].message.content


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_a_loose_schema_with_optional_fields_round_trips(client, upstreams, p):
    """pydantic's own schema (not strict: optional fields not required, defaults, titles)."""
    schema = Person.model_json_schema()
    assert "nickname" not in schema["required"] and "$defs" in schema
    r = client.chat.completions.create(model=p.model, messages=ask("Describe a person"), response_format={
        "type": "json_schema", "json_schema": {"name": "Person", "schema": schema}})
    check_person(Person.model_validate_json(r.choices[0].message.content))
    assert len(p.upstream(upstreams).requests) == 1


@pytest.mark.parametrize("p", ALL, ids=IDS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_json_object(client, upstreams, p, stream):
    messages = ask("Reply in JSON please")
    if stream:
        with client.chat.completions.create(model=p.model, messages=messages, stream=True,
                                            response_format={"type": "json_object"}) as chunks:
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client.chat.completions.create(model=p.model, messages=messages,
                                              response_format={"type": "json_object"}).choices[0].message.content
    assert isinstance(json.loads(text), dict)
    sent = p.upstream(upstreams).last.json
    if p.standin == "anthropic":  # no JSON mode on the Messages API: a forced tool with any object
        assert sent["tools"][-1] == {"name": "json_response", "description": sent["tools"][-1]["description"],
                                     "input_schema": {"type": "object"}}


# ---------------------------------------------------------------- the retry and the 502


@pytest.mark.parametrize("p", ALL, ids=IDS)
@pytest.mark.parametrize("marker", ["[[bad-json]]", "[[off-schema]]"])
def test_a_wrong_answer_is_retried_once_with_the_errors(client, upstreams, gateway, p, marker):
    raw = client.chat.completions.with_raw_response.parse(
        model=p.model, messages=ask(f"Describe a person {marker}"), response_format=Person)
    r = raw.parse()
    check_person(r.choices[0].message.parsed)
    standin = p.upstream(upstreams)
    assert len(standin.requests) == 2
    retry = json.dumps(standin.last.json)
    assert "Your previous answer is not JSON that matches the required JSON Schema" in retry
    if marker == "[[bad-json]]" and p is not ANTHROPIC_TOOL:  # a tool input is always an object
        assert "not valid JSON" in retry
    else:
        assert "is a required property" in retry or "is not of type" in retry
    if p.standin == "openai":  # the usage is the sum of both answers the provider billed
        billed = standin.billed
        assert len(billed) == 2
        assert r.usage.prompt_tokens == sum(b["prompt_tokens"] for b in billed)
        assert r.usage.completion_tokens == sum(b["completion_tokens"] for b in billed)
    row = wait_for_row(gateway.url, raw.headers["x-request-id"])
    assert row["status"] == 200
    assert row["usage"]["prompt_tokens"] == r.usage.prompt_tokens
    cost = getattr(r.usage, "cost", None)  # the unknown Claude model has no price
    assert row["usage"]["cost"] == (pytest.approx(cost) if cost is not None else None)


@pytest.mark.parametrize("p", ALL, ids=IDS)
@pytest.mark.parametrize("marker", ["[[bad-json-always]]", "[[off-schema-always]]"])
def test_an_answer_wrong_twice_is_a_502_naming_the_errors(client, upstreams, gateway, p, marker):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.parse(model=p.model, messages=ask(f"Describe a person {marker}"),
                                      response_format=Person)
    response = info.value.response
    assert response.status_code == 502
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["param"] == "response_format" and error["code"] == "invalid_structured_output"
    assert "after one retry" in error["message"]
    if marker == "[[bad-json-always]]" and p is not ANTHROPIC_TOOL:
        assert "not valid JSON" in error["message"]
    else:
        assert "$: " in error["message"]  # the answer is wrong at its root
    assert len(p.upstream(upstreams).requests) == 2
    row = wait_for_row(gateway.url, response.headers["x-request-id"])
    assert row["status"] == 502 and row["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_json_object_answer_that_is_not_an_object_is_retried(client, upstreams, p):
    r = client.chat.completions.create(model=p.model, messages=ask("Reply in JSON [[off-schema]]"),
                                       response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content), dict)
    expected = 1 if p.standin == "anthropic" else 2  # a tool input is an object: nothing to retry
    assert len(p.upstream(upstreams).requests) == expected


@pytest.mark.parametrize("p", ALL, ids=IDS)
def test_a_streamed_wrong_answer_ends_with_the_error_event(upstreams, gateway, p):
    body = {"model": p.model, "messages": ask("Describe a person [[off-schema]]"), "stream": True,
            "stream_options": {"include_usage": True},
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "Person", "schema": Person.model_json_schema()}}}
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, headers=AUTH) as r:
        assert r.status_code == 200
        events = sse_events(r)
        row_id = r.headers["x-request-id"]
    assert events[-1] != "[DONE]"
    error = json.loads(events[-1])["error"]
    assert error["code"] == "invalid_structured_output" and "not retried" in error["message"]
    chunks = [json.loads(e) for e in events[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert content  # the content went out as it came
    assert not any(c["choices"][0].get("finish_reason") for c in chunks if c["choices"])
    assert len(p.upstream(upstreams).requests) == 1  # no retry in a stream
    row = wait_for_row(gateway.url, row_id)
    assert row["status"] == 502 and row["usage"]["prompt_tokens"] > 0  # the upstream usage still counts


@pytest.mark.parametrize("p", [OPENAI, ANTHROPIC_TOOL, GEMINI_3], ids=["openai", "anthropic-tool", "google"])
def test_the_sdk_raises_the_streamed_failure(client, upstreams, p):
    with pytest.raises(openai.APIError) as info, client.chat.completions.stream(
            model=p.model, messages=ask("Describe a person [[bad-json]]"), response_format=Person) as stream:
        for _ in stream:
            pass
    assert "does not match response_format" in info.value.message


# ---------------------------------------------------------------- with the caller's own tools


@pytest.mark.parametrize("p", ALL, ids=IDS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_response_format_with_the_callers_tools(client, upstreams, p, stream):
    tools = [openai.pydantic_function_tool(GetWeather)]
    messages = ask("Call GetWeather for Paris, then tell me")

    def call():
        if not stream:
            return client.chat.completions.parse(model=p.model, messages=messages, tools=tools,
                                                 response_format=Weather)
        with client.chat.completions.stream(model=p.model, messages=messages, tools=tools,
                                            response_format=Weather) as s:
            for _ in s:
                pass
            return s.get_final_completion()

    first = call()
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in message.tool_calls] == ["GetWeather"]
    assert message.tool_calls[0].function.parsed_arguments == GetWeather(city="Paris")
    sent = p.upstream(upstreams).last.json
    if p is GEMINI_2:  # Gemini 2.x refuses JSON mode next to functions: asked in words instead
        assert "responseMimeType" not in sent.get("generationConfig", {})
        assert "JSON Schema: " in sent["systemInstruction"]["parts"][-1]["text"]
    elif p is GEMINI_3:
        assert sent["generationConfig"]["responseMimeType"] == "application/json"
    elif p is ANTHROPIC_TOOL:
        assert [t["name"] for t in sent["tools"]] == ["GetWeather", "json_response"]
        assert sent["tool_choice"] == {"type": "any"}
    messages += [message.model_dump(exclude_none=True, include={"role", "content", "tool_calls"}),
                 {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "sunny, 21 C"}]
    final = call()
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.parsed == Weather(city="Paris", sky="sunny")


# ---------------------------------------------------------------- request-time checks

OPEN = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


@pytest.mark.parametrize(("schema", "says"), [
    (OPEN, "'additionalProperties' must be false"),
    ({**OPEN, "additionalProperties": False, "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}},
     "'b' is not"),
    ({"type": "object", "additionalProperties": False, "required": ["a"],
      "properties": {"a": {"allOf": [{"type": "string"}]}}}, "'allOf' is not supported"),
    ({"anyOf": [OPEN]}, "root must be an object"),
])
@pytest.mark.parametrize("p", [OPENAI, ANTHROPIC, GEMINI_2], ids=["openai", "anthropic", "google"])
def test_strict_mode_rules_are_checked_before_anything_is_sent(client, upstreams, p, schema, says):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=p.model, messages=ask("x"), response_format={
            "type": "json_schema", "json_schema": {"name": "out", "strict": True, "schema": schema}})
    error = info.value.response.json()["error"]
    assert error["param"] == "response_format.json_schema.schema" and says in error["message"]
    assert p.upstream(upstreams).requests == []


@pytest.mark.parametrize("schema", [
    {"type": "objekt"},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}},
])
def test_an_invalid_schema_is_a_400(client, upstreams, schema):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=ANTHROPIC.model, messages=ask("x"), response_format={
            "type": "json_schema", "json_schema": {"name": "out", "schema": schema}})
    assert info.value.response.json()["error"]["param"] == "response_format.json_schema.schema"
    assert upstreams.anthropic.requests == []


def test_a_loose_schema_is_adapted_for_anthropic_and_still_enforced(client, upstreams):
    schema = {"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 9},
        "word": {"type": "string", "maxLength": 12},
        "items": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3}},
        "required": ["n"]}
    r = client.chat.completions.create(model=ANTHROPIC.model, messages=ask("x"), response_format={
        "type": "json_schema", "json_schema": {"name": "out", "schema": schema}})
    assert json.loads(r.choices[0].message.content) == {"n": 1, "word": "test", "items": ["test"]}
    sent = upstreams.anthropic.last.json["output_config"]["format"]["schema"]
    assert sent["additionalProperties"] is False
    assert "minimum" not in sent["properties"]["n"] and "minimum" in sent["properties"]["n"]["description"]
    assert sent["properties"]["items"]["minItems"] == 1 and "maxItems" not in sent["properties"]["items"]


# ---------------------------------------------------------------- models that cannot


@pytest.fixture(scope="module")
def limited(standins, tmp_path_factory):
    """A gateway whose catalog has models without structured outputs, and DeepSeek (JSON
    mode only) served by the OpenAI stand-in."""
    home = tmp_path_factory.mktemp("limited")
    config = home / "lunos.yaml"
    config.write_text(
        "models:\n"
        "  - id: openai/text-only-1\n"
        "    pricing: {input: 1, output: 2}\n"
        "    unsupported_parameters: [response_format]\n"
        "  - id: openai/json-mode-only-1\n"
        "    features: {response_format_types: [text]}\n")
    env = {**standins.env(), "LUNOS_CONFIG": str(config),
           "DEEPSEEK_BASE_URL": standins.servers["openai"].url + "/v1", "DEEPSEEK_API_KEY": "sk-openai-test"}
    g = GatewayProcess(home, env).start()
    yield g
    g.stop()


@pytest.fixture
def limited_client(limited):
    return openai.OpenAI(base_url=limited.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def test_json_schema_on_a_json_mode_model_is_emulated(limited_client, upstreams):
    r = limited_client.chat.completions.parse(model="deepseek/deepseek-v4-pro", messages=ask("Describe a person"),
                                              response_format=Person)
    check_person(r.choices[0].message.parsed)
    sent = upstreams.openai.last.json
    assert sent["model"] == "deepseek-v4-pro" and sent["response_format"] == {"type": "json_object"}
    assert sent["messages"][0]["role"] == "system" and "JSON Schema: " in sent["messages"][0]["content"]


@pytest.mark.parametrize(("model", "kind", "says"), [
    ("openai/text-only-1", "json_schema", "'response_format' is not supported by model 'openai/text-only-1'"),
    ("openai/json-mode-only-1", "json_object", "response_format of type 'json_object' is not supported"),
])
def test_a_model_the_catalog_marks_unable_is_a_400(limited_client, upstreams, model, kind, says):
    fmt = {"type": kind} if kind == "json_object" else {"type": kind, "json_schema": {"name": "x", "schema": OPEN}}
    with pytest.raises(openai.BadRequestError) as info:
        limited_client.chat.completions.create(model=model, messages=ask("json"), response_format=fmt)
    error = info.value.response.json()["error"]
    assert error["param"] == "response_format" and says in error["message"]
    assert upstreams.openai.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_drop_params_sends_it_without_response_format(limited, upstreams, stream):
    body = {"model": "openai/text-only-1", "messages": ask("hello"), "drop_params": True, "stream": stream,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": OPEN}}}
    r = httpx.post(limited.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=10)
    assert r.status_code == 200 and r.headers["x-lunos-dropped-params"] == "response_format"
    if stream:
        chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    else:
        text = r.json()["choices"][0]["message"]["content"]
    assert text == "You said: hello"  # plain text: nothing was enforced
    assert "response_format" not in upstreams.openai.last.json

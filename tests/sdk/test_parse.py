"""`chat.completions.parse`: a strict JSON schema from a pydantic model, and the answer
validated back into it."""

from __future__ import annotations

import json
from enum import Enum
from typing import Literal, Optional

import httpx
import jsonschema
import pytest
from pydantic import BaseModel, Field

import lunos
from lunos import ParsedChatCompletion
from lunos.resources.chat import to_strict_json_schema
from tests.sdk.conftest import Server, make_client, resolve


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    city: str
    zip: str | None = None


class Person(BaseModel):
    name: str = Field(description="Full name")
    age: int
    favourite: Color
    status: Literal["active", "inactive"] = "active"
    nickname: Optional[str] = None  # noqa: UP045 (the typing spelling is what users write)
    home: Address = Field(description="Where they live")
    previous: list[Address] = []
    best_friend: Address | None = None
    tags: list[str]
    scores: dict[str, int] = {}


class Node(BaseModel):
    label: str
    children: list[Node] = []


PERSON = {
    "name": "Ada Lovelace", "age": 36, "favourite": "green", "status": "active",
    "nickname": None, "home": {"street": "St James's Sq", "city": "London", "zip": None},
    "previous": [{"street": "Marylebone", "city": "London", "zip": "W1"}],
    "best_friend": None, "tags": ["math"], "scores": {},
}


def walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


# --- the schema ---------------------------------------------------------------------------


def test_strict_schema_closes_every_object_and_requires_every_property():
    schema = to_strict_json_schema(Person)
    objects = [n for n in walk(schema) if "properties" in n]
    assert len(objects) >= 2  # Person and Address
    for node in objects:
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])
    for node in walk(schema):
        assert "default" not in node
        assert not ("$ref" in node and len(node) > 1), node


def test_strict_schema_keeps_types_enums_and_descriptions():
    schema = to_strict_json_schema(Person)
    props = schema["properties"]
    assert props["name"]["description"] == "Full name"
    assert props["home"]["description"] == "Where they live"  # a $ref with a sibling, inlined
    assert props["home"]["properties"]["city"] == {"title": "City", "type": "string"}
    assert {"type": "null"} in props["nickname"]["anyOf"]
    assert props["previous"]["type"] == "array"
    color = schema["$defs"]["Color"] if "$ref" in props["favourite"] else props["favourite"]
    assert color["enum"] == ["red", "green"]
    assert props["status"]["enum"] == ["active", "inactive"]
    assert props["scores"]["additionalProperties"] == {"type": "integer"}  # a dict stays open


def test_strict_schema_accepts_a_valid_object_and_rejects_extra_or_missing_fields():
    validator = jsonschema.Draft202012Validator(to_strict_json_schema(Person))
    validator.validate(PERSON)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**PERSON, "unexpected": 1})
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({k: v for k, v in PERSON.items() if k != "nickname"})
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**PERSON, "home": {**PERSON["home"], "country": "UK"}})
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**PERSON, "favourite": "blue"})


def test_strict_schema_of_a_recursive_model():
    schema = to_strict_json_schema(Node)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate({"label": "a", "children": [{"label": "b", "children": []}]})
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"label": "a", "children": [{"label": "b"}]})


def test_strict_schema_leaves_the_model_untouched():
    before = json.dumps(Person.model_json_schema(), sort_keys=True)
    to_strict_json_schema(Person)
    assert json.dumps(Person.model_json_schema(), sort_keys=True) == before


# --- parse() ------------------------------------------------------------------------------


def answer(content: str | None = None, finish_reason: str = "stop", **message) -> httpx.Response:
    return httpx.Response(200, json={
        "id": "chatcmpl-p", "model": "openai/gpt-4o", "provider": "openai",
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content, **message}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    })


async def parse(client, model=Person, **params):
    return await resolve(
        client.chat.completions.parse(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "Ada?"}],
            response_format=model, **params,
        )
    )


async def test_parse_returns_the_validated_model(kind):
    server = Server(answer(json.dumps(PERSON)))
    result = await parse(make_client(kind, server), temperature=0)
    assert isinstance(result, ParsedChatCompletion)
    person = result.choices[0].message.parsed
    assert isinstance(person, Person)
    assert person.favourite is Color.GREEN and person.home.city == "London"
    assert person.previous[0].zip == "W1"
    assert result.choices[0].message.content == json.dumps(PERSON)
    assert result.usage.total_tokens == 12 and result.provider == "openai"
    body = server.body()
    assert body["temperature"] == 0
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Person", "schema": to_strict_json_schema(Person), "strict": True},
    }


async def test_parse_nested_optional_fields_filled(kind):
    data = {**PERSON, "nickname": "Ada", "best_friend": {"street": "x", "city": "y", "zip": None}}
    result = await parse(make_client(kind, Server(answer(json.dumps(data)))))
    person = result.choices[0].message.parsed
    assert person.nickname == "Ada" and person.best_friend.city == "y"


async def test_parse_refusal(kind):
    server = Server(answer(None, refusal="I can't share personal data."))
    with pytest.raises(lunos.StructuredOutputError, match="refused: I can't share") as caught:
        await parse(make_client(kind, server))
    assert caught.value.completion.id == "chatcmpl-p"


async def test_parse_invalid_json(kind):
    server = Server(answer('{"name": "Ada", "age": '))
    with pytest.raises(lunos.StructuredOutputError, match="not a valid Person") as caught:
        await parse(make_client(kind, server))
    assert caught.value.completion.choices[0].message.content == '{"name": "Ada", "age": '


async def test_parse_json_of_the_wrong_shape(kind):
    server = Server(answer(json.dumps({**PERSON, "favourite": "blue"})))
    with pytest.raises(lunos.StructuredOutputError, match="favourite"):
        await parse(make_client(kind, server))


async def test_parse_truncated_answer(kind):
    server = Server(answer('{"name": "Ada"', finish_reason="length"))
    with pytest.raises(lunos.StructuredOutputError, match="max_tokens"):
        await parse(make_client(kind, server))


async def test_parse_when_the_model_calls_a_tool(kind):
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    server = Server(answer(None, finish_reason="tool_calls", tool_calls=[call]))
    result = await parse(make_client(kind, server), tools=[{"type": "function", "function": {"name": "lookup"}}])
    message = result.choices[0].message
    assert message.parsed is None
    assert message.tool_calls[0].function.name == "lookup"


async def test_parse_refuses_streaming_and_non_models(kind):
    server = Server(answer("{}"))
    client = make_client(kind, server)
    with pytest.raises(TypeError, match="stream"):
        await parse(client, stream=True)
    with pytest.raises(TypeError, match="pydantic model"):
        await parse(client, model={"type": "json_object"})
    with pytest.raises(TypeError):
        await parse(client, not_a_parameter=1)
    assert server.requests == []

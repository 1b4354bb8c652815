"""The structured-output layer on its own: request-time checks, the answer check, the single
retry, the summed usage, the stream check and the dropped format, over a scripted runner."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace
from typing import Literal, Optional

import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel

from lunos.gateway.catalog import COMMON_PARAMETERS, ModelInfo
from lunos.gateway.errors import GatewayError
from lunos.gateway.records import CallRecord
from lunos.gateway.tools import structured
from lunos.gateway.tools.structured import (
    DroppedFormat,
    OutputSpec,
    StructuredRunner,
    add_usage,
    capability,
    strict_problem,
    wrap,
)
from lunos.gateway.usage import TokenCounts
from lunos.gateway.validation import ChatOptions


class Address(BaseModel):
    city: str


class Person(BaseModel):
    name: str
    kind: Literal["a", "b"]
    home: Address
    nickname: Optional[str]  # noqa: UP045


PERSON = to_strict_json_schema(Person)
GOOD = '{"name": "Ann", "kind": "a", "home": {"city": "Paris"}, "nickname": null}'
POINT = {"type": "object", "properties": {"x": {"type": "integer", "minimum": 0}}, "required": ["x"],
         "additionalProperties": False}


def schema_format(schema=None, strict=False) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "out", "schema": schema or POINT, "strict": strict}}


def body(fmt=None, **extra) -> dict:
    out = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], **extra}
    if fmt is not None:
        out["response_format"] = fmt
    return out


def completion(content, finish="stop", **message) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message},
                         "finish_reason": finish}]}


class Scripted:
    """A runner that answers from a script and counts usage into the record as the engine does."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.bodies: list[dict] = []
        self.consumed = 0
        self.closed = False

    async def complete(self, body, options, record) -> dict:
        self.bodies.append(body)
        answer = self.answers.pop(0)
        out = answer if isinstance(answer, dict) else completion(answer)
        record.tokens.add(TokenCounts(prompt=10, completion=5, cached=2))
        record.cost = (record.cost or 0) + 0.25
        out["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                        "prompt_tokens_details": {"cached_tokens": 2}, "cost": record.cost}
        return out

    async def stream(self, body, options, record):
        self.bodies.append(body)
        try:
            for batch in self.answers.pop(0):
                self.consumed += 1
                if isinstance(batch, GatewayError):
                    raise batch
                yield batch
        finally:
            self.closed = True


def gateway(info: ModelInfo | None = None, drop_params: bool = False):
    catalog = {info.id: info} if info else {}
    return SimpleNamespace(catalog=catalog, settings=SimpleNamespace(drop_params=drop_params))


def record() -> CallRecord:
    return CallRecord("chatcmpl-x", None, "app", "openai/gpt-4o")


# ---------------------------------------------------------------- request time


@pytest.mark.parametrize("fmt", [None, {"type": "text"}])
def test_plain_text_requests_are_left_alone(fmt):
    runner = Scripted()
    assert wrap(runner, gateway(), body(fmt), ChatOptions()) is runner


def test_the_strict_schema_of_a_pydantic_model_passes():
    assert strict_problem(PERSON) is None


@pytest.mark.parametrize(("schema", "says"), [
    ({"type": "array", "items": {"type": "string"}}, "root must be an object"),
    ({"anyOf": [POINT]}, "root must be an object"),
    ({**POINT, "additionalProperties": True}, "'additionalProperties' must be false on every object (at #)"),
    ({**PERSON, "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}},
                                       "required": ["city"]}}},
     "'additionalProperties' must be false on every object (at #/$defs/Address)"),
    ({**POINT, "required": []}, "every property must be required; 'x' is not (at #)"),
    ({**POINT, "properties": {"x": {"oneOf": [{"type": "integer"}]}}}, "'oneOf' is not supported in strict mode "
                                                                       "(at #/properties/x)"),
    ({**POINT, "properties": {"x": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}},
     "'uniqueItems' is not supported"),
    ({**POINT, "properties": {"x": {"type": "array", "items": {"type": "object", "properties": {}}}}},
     "(at #/properties/x/items)"),
])
def test_strict_mode_rules(schema, says):
    assert says in strict_problem(schema)


def test_a_strict_schema_that_breaks_the_rules_is_a_400_naming_it():
    with pytest.raises(GatewayError) as info:
        wrap(Scripted(), gateway(), body(schema_format({**POINT, "additionalProperties": True}, strict=True)),
             ChatOptions())
    assert info.value.status == 400 and info.value.param == "response_format.json_schema.schema"
    assert info.value.code == "invalid_schema"


def test_a_loose_schema_without_strict_is_accepted():
    runner = wrap(Scripted(), gateway(), body(schema_format({**POINT, "additionalProperties": True})),
                  ChatOptions())
    assert isinstance(runner, StructuredRunner)


def info(**extra) -> ModelInfo:
    return ModelInfo("openai/m-1", "openai", **extra)


@pytest.mark.parametrize(("entry", "kind", "verdict"), [
    (None, "json_schema", "ok"),
    (info(), "json_schema", "ok"),
    (info(supported_parameters=COMMON_PARAMETERS - {"response_format"}), "json_object", "refuse"),
    (info(features={"response_format_types": ["text", "json_object"]}), "json_schema", "emulate"),
    (info(features={"response_format_types": ["text", "json_object"]}), "json_object", "ok"),
    (info(features={"response_format_types": ["text"]}), "json_schema", "refuse"),
    (info(features={"response_format_types": ["text"]}), "json_object", "refuse"),
])
def test_capability(entry, kind, verdict):
    assert capability(kind, entry)[0] == verdict


def test_a_model_marked_unable_is_a_400_unless_drop_params():
    entry = info(supported_parameters=COMMON_PARAMETERS - {"response_format"})
    request = body(schema_format(), model="openai/m-1")
    with pytest.raises(GatewayError) as caught:
        wrap(Scripted(), gateway(entry), request, ChatOptions())
    assert caught.value.status == 400 and caught.value.param == "response_format"
    assert "not supported by model 'openai/m-1'" in caught.value.message
    assert isinstance(wrap(Scripted(), gateway(entry), request, ChatOptions(drop_params=True)), DroppedFormat)
    assert isinstance(wrap(Scripted(), gateway(entry, drop_params=True), request, ChatOptions()), DroppedFormat)
    with pytest.raises(GatewayError):  # the request's own drop_params wins over the default
        wrap(Scripted(), gateway(entry, drop_params=True), request, ChatOptions(drop_params=False))


# ---------------------------------------------------------------- the answer check


@pytest.mark.parametrize(("text", "errors"), [
    (GOOD, []),
    ('{"name": "Ann", "kind": "c", "home": {}, "nickname": 3}', [
        '$.home: "city" is a required property',
        '$.kind: "c" is not one of "a" or "b"',
        "$.nickname: 3 is not valid under any of the schemas listed in the 'anyOf' keyword"]),
    ('{"name": "Ann"', None),
    ("```json\n{}\n```", None),
    ("", None),
])
def test_answers_are_checked_against_the_schema(text, errors):
    found = OutputSpec("json_schema", PERSON).errors(text)
    if errors is None:
        assert len(found) == 1 and found[0].startswith("the answer is not valid JSON")
    else:
        assert found == errors


BACKTRACKING = ["^(a+)+$", "^(a|aa)+$", "^(a|a?)+$", "^(.*a){25}$"]


def test_backtracking_patterns_are_checked_in_linear_time():
    """These patterns take a backtracking engine 2**n steps on a near-miss (and Python's `re`
    never lets go of the GIL meanwhile). The check runs in a child process so that a
    regression fails at the guard's timeout instead of hanging the run; nothing is timed."""
    script = (
        "import json, sys\n"
        "from lunos.gateway.tools.structured import OutputSpec\n"
        "for pattern in json.loads(sys.argv[1]):\n"
        "    schema = {'type': 'object', 'properties': {'s': {'type': 'string', 'pattern': pattern}}}\n"
        "    print(json.dumps(OutputSpec('json_schema', schema).errors(json.dumps({'s': 'a' * 4000 + '!'}))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, json.dumps(BACKTRACKING)],
                          capture_output=True, text=True, timeout=120, check=True)
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(BACKTRACKING)
    for errors in results:  # one error each: `s` does not match its pattern
        assert len(errors) == 1 and errors[0].startswith('$.s: "aaaa')


def test_json_object_means_an_object():
    spec = OutputSpec("json_object", None)
    assert spec.errors('{"a": [1]}') == []
    assert spec.errors("[1, 2]") == ["the answer must be a JSON object"]
    assert spec.errors("nope")[0].startswith("the answer is not valid JSON")


def test_errors_are_capped_and_clipped():
    schema = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(20)}}
    text = "{" + ", ".join(f'"p{i}": {i}' for i in range(20)) + "}"
    assert len(OutputSpec("json_schema", schema).errors(text)) == structured.MAX_ERRORS
    long = '{"x": "' + "y" * 1000 + '"}'
    (only,) = OutputSpec("json_schema", {"type": "object", "properties": {"x": {"type": "integer"}}}).errors(long)
    assert only.endswith("...") and len(only) < 400


@pytest.mark.parametrize("answer", [
    completion(None, "tool_calls", tool_calls=[{"id": "c", "type": "function",
                                                "function": {"name": "f", "arguments": "{}"}}]),
    completion('{"x": ', "length"),
    completion(None, "stop", refusal="I can't help with that."),
    completion("", "content_filter"),
])
def test_tool_calls_cut_and_refused_answers_are_not_checked(answer):
    assert OutputSpec("json_schema", POINT).failure(answer) is None


def test_every_choice_is_checked():
    answer = {"choices": [completion('{"x": 1}')["choices"][0], {**completion('{"x": -1}')["choices"][0],
                                                                  "index": 1}]}
    text, errors = OutputSpec("json_schema", POINT).failure(answer)
    assert text == '{"x": -1}' and errors == ["$.x: -1 is less than the minimum of 0"]


# ---------------------------------------------------------------- complete: the single retry


async def test_a_good_answer_needs_one_call():
    runner = Scripted('{"x": 3}')
    out = await StructuredRunner(runner, OutputSpec("json_schema", POINT)).complete(body(), ChatOptions(), record())
    assert out["choices"][0]["message"]["content"] == '{"x": 3}' and len(runner.bodies) == 1


async def test_a_bad_answer_is_retried_once_with_its_errors_and_the_usage_adds_up():
    runner = Scripted('{"x": "three"}', '{"x": 3}')
    rec = record()
    request = body(schema_format())
    out = await StructuredRunner(runner, OutputSpec("json_schema", POINT)).complete(request, ChatOptions(), rec)
    assert out["choices"][0]["message"]["content"] == '{"x": 3}'
    first, second = runner.bodies
    assert first is request
    assert second["messages"][:1] == request["messages"]
    assert second["messages"][1] == {"role": "assistant", "content": '{"x": "three"}'}
    feedback = second["messages"][2]
    assert feedback["role"] == "user" and '$.x: "three" is not of type "integer"' in feedback["content"]
    assert out["usage"] == {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30,
                            "prompt_tokens_details": {"cached_tokens": 4}, "cost": 0.5}
    assert out["usage"]["cost"] == rec.cost and rec.tokens.prompt == 20


async def test_a_second_bad_answer_is_a_502_with_the_errors():
    runner = Scripted("not json", '{"x": -4}')
    with pytest.raises(GatewayError) as info:
        await StructuredRunner(runner, OutputSpec("json_schema", POINT)).complete(body(), ChatOptions(), record())
    error = info.value
    assert error.status == 502 and error.param == "response_format" and error.code == "invalid_structured_output"
    assert "after one retry" in error.message and "$.x: -4 is less than the minimum of 0" in error.message
    assert len(runner.bodies) == 2


async def test_an_empty_answer_is_not_echoed_back():
    runner = Scripted("", '{"x": 1}')
    await StructuredRunner(runner, OutputSpec("json_schema", POINT)).complete(body(), ChatOptions(), record())
    assert [m["role"] for m in runner.bodies[1]["messages"]] == ["user", "user"]


async def test_a_json_mode_model_gets_the_schema_in_words():
    runner = Scripted('{"x": 1}')
    request = body(schema_format())
    await StructuredRunner(runner, OutputSpec("json_schema", POINT), emulate=True).complete(
        request, ChatOptions(), record())
    sent = runner.bodies[0]
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["messages"][0]["role"] == "system" and '"minimum":0' in sent["messages"][0]["content"]
    assert sent["messages"][1:] == request["messages"]
    assert request["response_format"]["type"] == "json_schema"  # the caller's body is not changed


async def test_a_dropped_format_goes_without_and_is_named():
    runner = Scripted("plain words")
    rec = record()
    rec.dropped_params = ["seed"]
    out = await DroppedFormat(runner).complete(body(schema_format()), ChatOptions(), rec)
    assert out["choices"][0]["message"]["content"] == "plain words"
    assert "response_format" not in runner.bodies[0] and rec.dropped_params == ["seed", "response_format"]


def test_add_usage():
    a = {"prompt_tokens": 1, "completion_tokens": 2, "completion_tokens_details": {"reasoning_tokens": 1},
         "cost": 9.0}
    b = {"prompt_tokens": 3, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 1}, "cost": 1.0}
    assert add_usage(a, b, 2.5) == {"prompt_tokens": 4, "completion_tokens": 6, "cost": 2.5,
                                    "prompt_tokens_details": {"cached_tokens": 1},
                                    "completion_tokens_details": {"reasoning_tokens": 1}}
    assert add_usage(None, b, None) == b
    assert add_usage(None, None, 1.0) is None


# ---------------------------------------------------------------- stream


def chunk(delta=None, finish=None, index=0) -> dict:
    return {"choices": [{"index": index, "delta": delta or {}, "finish_reason": finish}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


async def collect(runner: StructuredRunner, rec: CallRecord) -> tuple[list[list[dict]], GatewayError | None]:
    out = []
    try:
        async for batch in runner.stream(body(stream=True), ChatOptions(), rec):
            out.append(batch)
    except GatewayError as exc:
        return out, exc
    return out, None


async def test_a_good_stream_passes_unchanged():
    batches = [[chunk({"role": "assistant", "content": ""}), chunk({"content": '{"x":'})],
               [chunk({"content": " 2}"})], [chunk(finish="stop"), USAGE]]
    inner = Scripted(batches)
    out, error = await collect(StructuredRunner(inner, OutputSpec("json_schema", POINT)), record())
    assert error is None and out == batches and inner.closed


async def test_a_bad_stream_never_finishes_and_is_read_to_its_end():
    batches = [[chunk({"role": "assistant", "content": ""})], [chunk({"content": '{"x": -1'}), chunk({"content": "}"}),
                                                               chunk(finish="stop")], [USAGE]]
    inner = Scripted(batches)
    rec = record()
    out, error = await collect(StructuredRunner(inner, OutputSpec("json_schema", POINT)), rec)
    assert out == [batches[0], batches[1][:2]]  # the content went out; the finish chunk did not
    assert error.status == 502 and "not retried" in error.message and "$.x: -1" in error.message
    assert inner.consumed == 3 and inner.closed  # read on for the usage
    assert (rec.status, rec.error) == (502, error.message)
    assert len(inner.bodies) == 1


async def test_an_upstream_failure_while_reading_on_keeps_the_check_failure():
    batches = [[chunk({"content": "oops"}), chunk(finish="stop")], GatewayError(504, "idle")]
    out, error = await collect(StructuredRunner(Scripted(batches), OutputSpec("json_object", None)), record())
    assert out == [[chunk({"content": "oops"})]] and error.status == 502


async def test_an_upstream_failure_before_the_check_passes_through():
    batches = [[chunk({"content": "{"})], GatewayError(504, "idle")]
    out, error = await collect(StructuredRunner(Scripted(batches), OutputSpec("json_object", None)), record())
    assert out == [batches[0]] and error.status == 504


async def test_streamed_tool_calls_and_cut_answers_are_not_checked():
    call = {"tool_calls": [{"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}]}
    batches = [[chunk(call), chunk(finish="tool_calls")], [chunk({"content": "x"}, index=1),
                                                          chunk(finish="length", index=1)]]
    out, error = await collect(StructuredRunner(Scripted(batches), OutputSpec("json_object", None)), record())
    assert error is None and out == batches


async def test_each_streamed_choice_is_checked_when_it_finishes():
    batches = [[chunk({"content": "{}"}), chunk({"content": "[]"}, index=1), chunk(finish="stop"),
                chunk(finish="stop", index=1)]]
    out, error = await collect(StructuredRunner(Scripted(batches), OutputSpec("json_object", None)), record())
    assert out == [batches[0][:3]] and "must be a JSON object" in error.message


async def test_a_dropped_format_is_named_once_the_stream_starts():
    rec = record()
    out = []
    async for batch in DroppedFormat(Scripted([[chunk({"content": "hi"})], [USAGE]])).stream(
            body(schema_format(), stream=True), ChatOptions(), rec):
        out.append(batch)
        assert rec.dropped_params == ["response_format"]
    assert len(out) == 2

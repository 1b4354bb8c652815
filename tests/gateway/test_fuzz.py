"""Fuzz the gateway through its own OpenAPI description: no 500, no hang.

Schemathesis generates requests that fit the schema and requests that break it; each one is
sent to the running gateway (with the master key), and must get an answer in time that is
not an internal error, in the SPEC §6 error shape when it is an error.
"""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lunos.gateway.openapi import document
from tests.gateway_process import MASTER_KEY

schema = schemathesis.openapi.from_dict(document())


@pytest.fixture(scope="module")
def base(gateway):
    return gateway.url


@schema.parametrize()
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_no_internal_error_and_no_hang(case, base, upstreams):
    if case.path.startswith("/admin/keys") and case.method == "DELETE":
        return  # revoking random ids is harmless but needs no fuzzing of a 404
    request = case.as_transport_kwargs(base_url=base)
    headers = {k: v for k, v in (request.get("headers") or {}).items()
               if k.lower() != "authorization" and _sendable(v)}
    headers["authorization"] = f"Bearer {MASTER_KEY}"
    try:
        files = [_part(name, value) for name, value in request.get("files") or ()]  # multipart
        if files:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        response = httpx.request(request["method"], request["url"], headers=headers,
                                 params=request.get("params"), json=request.get("json"),
                                 content=None if files else request.get("data"), files=files,
                                 timeout=20)
    except httpx.TimeoutException:
        pytest.fail(f"no answer within 20 s: {case.method} {case.path}")
    assert response.status_code != 500, response.text
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if case.path.startswith("/v1/messages"):  # Anthropic's shape on the Messages door
            assert body.get("type") == "error" and {"message", "type"} <= set(body["error"]), body
        else:
            assert {"message", "type", "param", "code"} <= set(body["error"])


def _part(name: str, value) -> tuple:
    """A multipart field as httpx sends it: schemathesis makes fields of any JSON type."""
    filename, content, *rest = value if isinstance(value, tuple) else (None, value)
    if not isinstance(content, (bytes, str)):
        content = json.dumps(content)
    return name, (filename, content, *rest)


def _sendable(value: str) -> bool:
    """HTTP clients refuse header values with control or non-Latin-1 characters."""
    return all(32 <= ord(c) < 127 for c in value) and value == value.strip()


def test_openapi_document_is_served(gateway):
    r = httpx.get(gateway.url + "/openapi.json")
    assert r.status_code == 200 and r.json()["openapi"] == "3.1.0"
    assert {"/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/embeddings",
            "/v1/completions", "/v1/images/generations", "/v1/audio/speech",
            "/v1/audio/transcriptions", "/v1/logs/{id}/replay"} <= set(r.json()["paths"])


# Schema-driven fuzzing mostly meets unknown models (404). This one aims at the translators:
# real model ids of every provider, with bodies that are nearly right and often wrong.
MODELS = ["openai/gpt-4o", "anthropic/claude-haiku-4-5", "google/gemini-2.5-flash",
          "google/gemini-3.1-pro-preview", "groq/llama-3.3-70b-versatile", "anthropic/claude-opus-4-8"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.floats(-3, 3, allow_nan=False),
                    st.text(max_size=8))
parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(max_size=20), scalars)}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": st.sampled_from(
        ["data:image/png;base64,iVBORw0KGgo=", "https://localhost:1/x.png", "data:image/png;base64,@@", "ftp://x"])})}),
    st.dictionaries(st.sampled_from(["type", "text", "image_url"]), scalars, max_size=3),
)
tool_calls = st.lists(st.fixed_dictionaries({
    "id": st.sampled_from(["call_1", "toolu_1", ""]), "type": st.just("function"),
    "function": st.fixed_dictionaries({"name": st.sampled_from(["f", "g"]),
                                       "arguments": st.sampled_from(['{"a": 1}', "{}", "not json", "[1]"])})}),
    max_size=2)
messages = st.lists(st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "developer", "user", "robot"]),
                           "content": st.one_of(st.text(max_size=30), st.lists(parts, max_size=3), scalars)}),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": st.one_of(st.none(), st.text(max_size=10)),
                           "tool_calls": tool_calls}),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": st.sampled_from(["call_1", "toolu_1", "x"]),
                           "content": st.one_of(st.text(max_size=10), scalars)}),
), min_size=0, max_size=5)
tools = st.lists(st.fixed_dictionaries({"type": st.sampled_from(["function", "web_search", "x"]),
                                        "function": st.fixed_dictionaries({"name": st.sampled_from(["f", "g", "bad name"]),
                                                                           "parameters": st.sampled_from([
                                                                               {"type": "object", "properties": {"a": {"type": "integer"}}},
                                                                               {"type": "object"}, {"type": "nope"}, {}])})}),
                 max_size=2)
bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(MODELS), "messages": messages},
    optional={
        "temperature": scalars, "top_p": scalars, "max_tokens": scalars, "stop": st.one_of(scalars, st.lists(st.text(max_size=3), max_size=5)),
        "n": scalars, "seed": scalars, "frequency_penalty": scalars, "presence_penalty": scalars, "user": scalars,
        "tools": tools, "tool_choice": st.one_of(scalars, st.sampled_from(["auto", "none", "required"]),
                                                 st.just({"type": "function", "function": {"name": "f"}})),
        "parallel_tool_calls": scalars, "stream": st.booleans(), "stream_options": st.just({"include_usage": True}),
        "response_format": st.sampled_from([{"type": "json_object"}, {"type": "text"}, {"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}, {"type": 3}]),
        "reasoning_effort": st.one_of(scalars, st.sampled_from(["low", "high"])),
        "observability": scalars, "drop_params": st.booleans(), "models": st.lists(st.sampled_from(MODELS), max_size=2),
    })


@given(body=bodies)
# Found by this test: empty text parts are left out, which left Anthropic no message at all.
@example(body={"model": "anthropic/claude-haiku-4-5",
               "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]})
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_translators_never_fail_internally(body, gateway):
    try:
        r = httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=20,
                       headers={"authorization": f"Bearer {MASTER_KEY}"})
    except httpx.TimeoutException:
        pytest.fail(f"no answer within 20 s for {body}")
    assert r.status_code != 500, (body, r.text)
    if r.status_code == 502:  # the one legitimate 502 here: a cut answer broke the schema
        assert r.json()["error"]["code"] == "invalid_structured_output", (body, r.text)
    if r.status_code >= 400:
        error = r.json()["error"]
        assert {"message", "type", "param", "code"} <= set(error)
        # A strict stand-in refusing what the gateway sent means validation let through
        # something invalid, or a translator produced something the provider rejects.
        assert error["code"] != "upstream_invalid_request", (body, error)
    elif body.get("stream"):
        assert r.text.rstrip().endswith("[DONE]") or '"error"' in r.text.split("\n\n")[-2]

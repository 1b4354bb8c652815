"""Requests cannot make the gateway do unbounded work: the official `openai` SDK against
`lunos serve`, with `/healthz` polled from another thread while the heavy requests run.

Schemas: a backtracking `pattern` is checked by a linear-time engine, a huge or deeply
nested schema and a `$ref` cycle are 400s naming the parameter, before any upstream call.
Images: duplicates of a URL are fetched once, and too many URLs or too many bytes are a
400 / 413 naming `messages`, before (or instead of) the provider call.

Nothing here is timed: the polling thread proves `/healthz` kept answering, and client
timeouts only keep a regression from hanging the run.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway_process import MASTER_KEY
from tests.standins.images import PNG_1X1

OPENAI = "openai/gpt-4o"
GEMINI = "google/gemini-2.5-flash"  # Gemini wants image bytes: the gateway fetches URLs


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0, timeout=120)


class HealthPoller:
    """Polls /healthz until stopped; records every answer (status codes and failures)."""

    def __init__(self, url: str) -> None:
        self.url = url + "/healthz"
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._answered = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=60) as http:
            while not self._stop.is_set():
                try:
                    self.statuses.append(http.get(self.url).status_code)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self._answered.set()

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        assert self._answered.wait(timeout=60)  # polling before the heavy request starts
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        assert not self._thread.is_alive()
        assert self.failures == [] and self.statuses and set(self.statuses) == {200}


def schema_format(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}


# ---------------------------------------------------------------- schemas


@pytest.mark.parametrize("pattern", ["^(a+)+$", "^(a|aa)+$", "^(.*a){30}$"])
def test_a_backtracking_pattern_in_the_answer_check_does_not_stall(client, gateway, upstreams, pattern):
    """The stand-in answers the enum's value, a near-miss that takes a backtracking engine
    2**40 steps; the gateway checks it (twice: the answer and its retry) and says 502."""
    near_miss = "a" * 40 + "!"
    schema = {"type": "object", "properties": {"s": {"type": "string", "enum": [near_miss],
                                                     "pattern": pattern}}, "required": ["s"]}
    with HealthPoller(gateway.url), pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=OPENAI, messages=[{"role": "user", "content": "go"}],
                                       response_format=schema_format(schema))
    assert info.value.status_code == 502
    assert info.value.body["code"] == "invalid_structured_output"
    assert "$.s:" in info.value.body["message"]
    assert len(upstreams.openai.requests) == 2  # the answer and the retry were both checked


def test_a_pattern_the_linear_engine_lacks_is_a_400(client, upstreams):
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(?=a)a+$"}}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=OPENAI, messages=[{"role": "user", "content": "go"}],
                                       response_format=schema_format(schema))
    assert info.value.body["param"] == "response_format.json_schema.schema"
    assert upstreams.openai.requests == []


def test_a_huge_tool_schema_is_a_400_and_health_keeps_answering(client, gateway, upstreams):
    huge = {"type": "object", "properties": {
        f"field_{i}": {"type": "string", "description": "d" * 100, "enum": ["a", "b", "c"]}
        for i in range(8000)}}  # about 1.2 MB of JSON
    with HealthPoller(gateway.url):
        for _ in range(3):
            with pytest.raises(openai.BadRequestError) as info:
                client.chat.completions.create(
                    model=OPENAI, messages=[{"role": "user", "content": "go"}],
                    tools=[{"type": "function", "function": {"name": "f", "parameters": huge}}])
            assert info.value.body["param"] == "tools[0].function.parameters"
            assert info.value.body["code"] == "invalid_schema"
    assert upstreams.openai.requests == []


def test_a_tool_schema_nested_300_deep_is_a_400(client, upstreams):
    schema: dict = {"type": "object"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"a": schema}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=OPENAI, messages=[{"role": "user", "content": "go"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": schema}}])
    assert info.value.body["param"] == "tools[0].function.parameters"
    assert "nested too deep" in info.value.body["message"]
    assert upstreams.openai.requests == []


@pytest.mark.parametrize("model", [OPENAI, GEMINI, "anthropic/claude-haiku-4-5"])
def test_a_ref_cycle_in_response_format_is_a_400_before_any_upstream_call(client, upstreams, model):
    cycle = {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}},
             "type": "object", "properties": {"x": {"$ref": "#/$defs/a"}}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "go"}],
                                       response_format=schema_format(cycle))
    assert info.value.body["param"] == "response_format.json_schema.schema"
    assert "cycle" in info.value.body["message"]
    assert upstreams.openai.requests == upstreams.gemini.requests == upstreams.anthropic.requests == []


# ---------------------------------------------------------------- images


def images(*urls: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                                         *({"type": "image_url", "image_url": {"url": u}} for u in urls)]}]


@pytest.mark.parametrize("model", [OPENAI, GEMINI])
@pytest.mark.parametrize("url", ["http://[::1/", "https://[::1/a.png", "http://[zz]/x.png"])
def test_a_malformed_image_url_is_a_400_naming_it(client, upstreams, model, url):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=images(url))
    assert info.value.body["param"] == "messages[0].content[1].image_url.url"
    assert upstreams.openai.requests == upstreams.gemini.requests == []


def test_copies_of_one_image_url_are_fetched_once(client, upstreams):
    url = upstreams.image_server.url + "/pixel.png"
    r = client.chat.completions.create(model=GEMINI, messages=images(*[url] * 40))
    assert r.choices[0].message.content == "I see 40 images: " + ", ".join(
        [f"image/png {len(PNG_1X1)} bytes"] * 40)
    assert upstreams.images.hits == ["/pixel.png"]


def test_too_many_distinct_image_urls_is_a_400_before_any_fetch(client, upstreams):
    base = upstreams.image_server.url + "/pixel.png?n="
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=GEMINI, messages=images(*(base + str(n) for n in range(33))))
    assert info.value.body["param"] == "messages" and info.value.body["code"] == "too_many_images"
    assert upstreams.images.hits == [] and upstreams.gemini.requests == []
    r = client.chat.completions.create(model=GEMINI, messages=images(*(base + str(n) for n in range(32))))
    assert r.choices[0].message.content.startswith("I see 32 images")


def test_images_over_the_byte_budget_are_a_413_naming_messages(client, gateway, upstreams):
    """20 MiB (fetch.max_bytes) per request, each image counted as often as it is used: 25
    copies of a 1 MiB image would put 25 MiB (33 MiB of base64) into the upstream body."""
    upstreams.images.files["/one-mib.png"] = ("image/png", b"\x89PNG" + b"\0" * (1024 * 1024 - 4))
    url = upstreams.image_server.url + "/one-mib.png"
    try:
        with HealthPoller(gateway.url), pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model=GEMINI, messages=images(*[url] * 25))
        assert info.value.status_code == 413
        assert info.value.body["param"] == "messages" and info.value.body["code"] == "images_too_large"
        assert upstreams.images.hits == ["/one-mib.png"] and upstreams.gemini.requests == []
        r = client.chat.completions.create(model=GEMINI, messages=images(*[url] * 19))
        assert r.choices[0].message.content.startswith("I see 19 images: image/png 1048576 bytes")
    finally:
        del upstreams.images.files["/one-mib.png"]


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1)) / 1024


def test_image_requests_leave_no_memory_behind(client, gateway, upstreams):
    """Large images, fetched and refused over and over: the gateway's RSS comes back near
    where it started (cycles left by failed requests are collected at the collector's
    usual pace, not held until a rare collection)."""
    upstreams.images.files["/big.png"] = ("image/png", b"\x89PNG" + b"\0" * (8 * 1024 * 1024 - 4))
    url = upstreams.image_server.url + "/big.png"
    try:
        client.chat.completions.create(model=GEMINI, messages=images(url))  # warm
        start = _rss_mb(gateway.proc.pid)
        for _ in range(12):
            r = client.chat.completions.create(model=GEMINI, messages=images(url, url))
            assert r.choices[0].message.content.startswith("I see 2 images")
            with pytest.raises(openai.APIStatusError) as info:
                client.chat.completions.create(model=GEMINI, messages=images(*[url] * 30))
            assert info.value.status_code == 413
        assert _rss_mb(gateway.proc.pid) - start < 50
    finally:
        del upstreams.images.files["/big.png"]

"""OpenTelemetry export against a real OTLP/HTTP receiver (SPEC §11): the caller's trace is
joined, GenAI attributes are set, prompts stay out unless asked for, each upstream attempt
is a child span, and a dead collector costs dropped spans, never requests."""

from __future__ import annotations

import json
import secrets
import signal

import httpx
import pytest

from tests.gateway.test_ops_e2e import until
from tests.gateway.test_reliability_e2e import _status
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import ServerThread, free_port
from tests.standins.otlp_collector import OtlpCollector

pytest.importorskip("opentelemetry.sdk")

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
FAST = {"OTEL_BSP_SCHEDULE_DELAY": "100", "LUNOS_RETRY_BACKOFF": "0.01"}


def ask(text: str, **extra) -> dict:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture(scope="module")
def collector():
    app = OtlpCollector()
    server = ServerThread(app).start()
    yield app, server.url
    server.stop()


@pytest.fixture(scope="module")
def traced(standins, collector, tmp_path_factory):
    env = {**standins.env(), **FAST, "LUNOS_OTLP_ENDPOINT": collector[1], "LUNOS_LOG_FORMAT": "json"}
    g = GatewayProcess(tmp_path_factory.mktemp("otel"), env).start()
    yield g
    g.stop()


def request_span(collector: OtlpCollector, request_id: str):
    return until(lambda: collector.by_attribute("lunos.request_id", request_id))[0]


def log_line(g: GatewayProcess, request_id: str) -> dict:
    """The request's JSON log line (LUNOS_LOG_FORMAT=json)."""
    def found():
        lines = [json.loads(line) for line in g.log_path.read_text().splitlines() if line.startswith("{")]
        return [line for line in lines if line["request_id"] == request_id]
    return until(found)[0]


def test_a_request_joins_the_callers_trace_with_genai_attributes(traced, collector, upstreams):
    app, _ = collector
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    r = httpx.post(f"{traced.url}/v1/chat/completions", headers={
        **AUTH, "traceparent": f"00-{trace_id}-{parent_id}-01"}, json=ask("hello there"), timeout=30)
    assert r.status_code == 200, r.text
    span = request_span(app, r.headers["x-request-id"])
    assert (span.trace_id, span.parent_span_id) == (trace_id, parent_id)
    assert log_line(traced, r.headers["x-request-id"])["trace_id"] == trace_id
    assert span.name == "chat openai/gpt-4o"  # as the caller named it
    assert span.kind == 2  # SERVER
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "openai/gpt-4o"
    assert a["gen_ai.response.model"]
    usage = r.json()["usage"]
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
        usage["prompt_tokens"], usage["completion_tokens"])
    assert "error.type" not in a
    assert span.resource["service.name"] == "lunos"
    assert span.resource["service.version"] and span.resource["service.instance.id"]
    [attempt] = app.children_of(span)
    assert attempt.kind == 3 and attempt.name == "chat gpt-4o"  # CLIENT, as the provider knows it
    assert attempt.attributes["gen_ai.provider.name"] == "openai"
    assert attempt.attributes["gen_ai.request.model"] == "gpt-4o"
    assert span.start_ns <= attempt.start_ns <= attempt.end_ns <= span.end_ns
    assert set(app.paths) == {"/v1/traces"}
    assert set(app.content_types) == {"application/x-protobuf"}


def test_without_traceparent_a_request_starts_its_own_trace(traced, collector, upstreams):
    app, _ = collector
    r = httpx.post(f"{traced.url}/v1/chat/completions", headers=AUTH, json=ask("hi"), timeout=30)
    span = request_span(app, r.headers["x-request-id"])
    assert span.parent_span_id == "" and len(span.trace_id) == 32
    assert log_line(traced, r.headers["x-request-id"])["trace_id"] == span.trace_id  # the same trace


def test_the_prompt_is_not_exported_by_default(traced, collector, upstreams):
    app, _ = collector
    secret = "prompt-" + secrets.token_hex(8)
    r = httpx.post(f"{traced.url}/v1/chat/completions", headers=AUTH,
                   json=ask(secret, observability=True), timeout=30)
    assert r.status_code == 200
    span = request_span(app, r.headers["x-request-id"])
    for s in [span, *app.children_of(span)]:
        assert not any(secret in str(v) for v in s.attributes.values())
    assert MASTER_KEY not in repr(app.spans)


def test_a_request_retried_once_has_one_child_span_per_attempt(traced, collector, upstreams):
    app, _ = collector
    upstreams.openai.scripted.append(_status(500))
    r = httpx.post(f"{traced.url}/v1/chat/completions", headers=AUTH, json=ask("again"), timeout=30)
    assert r.status_code == 200, r.text
    span = request_span(app, r.headers["x-request-id"])
    children = sorted(app.children_of(span), key=lambda s: s.start_ns)
    assert len(children) == 2
    failed, ok = children
    assert failed.attributes["error.type"] == "500" and failed.status_code == 2  # ERROR
    assert "error.type" not in ok.attributes
    assert failed.end_ns <= ok.start_ns
    assert [c.attributes["lunos.attempt"] for c in children] == [1, 2]


def test_an_upstream_error_marks_the_request_span(traced, collector, upstreams):
    app, _ = collector
    r = httpx.post(f"{traced.url}/v1/chat/completions", headers=AUTH,
                   json=ask("no [[status:400]]"), timeout=30)
    assert r.status_code == 400
    span = request_span(app, r.headers["x-request-id"])
    assert span.attributes["error.type"] == "400" and span.status_code == 2


def test_content_is_captured_only_for_traced_requests_when_asked(standins, collector, tmp_path,
                                                                 upstreams):
    app, url = collector
    env = {**standins.env(), **FAST, "LUNOS_OTLP_ENDPOINT": url,
           "LUNOS_OTEL_CAPTURE_CONTENT": "true"}
    g = GatewayProcess(tmp_path / "gw", env).start()
    try:
        secret = "prompt-" + secrets.token_hex(8)
        traced_r = httpx.post(f"{g.url}/v1/chat/completions", headers=AUTH,
                              json=ask(secret, observability=True), timeout=30)
        plain_r = httpx.post(f"{g.url}/v1/chat/completions", headers=AUTH, json=ask(secret),
                             timeout=30)
        captured = request_span(app, traced_r.headers["x-request-id"]).attributes
        assert secret in captured["gen_ai.input.messages"]
        assert secret in captured["gen_ai.output.messages"]  # the fake model echoes it
        plain = request_span(app, plain_r.headers["x-request-id"]).attributes
        assert not any(secret in str(v) for v in plain.values())
    finally:
        g.stop()


def test_a_dead_collector_costs_dropped_spans_not_requests(standins, tmp_path, upstreams):
    dead = f"http://127.0.0.1:{free_port()}"
    env = {**standins.env(), **FAST, "LUNOS_OTLP_ENDPOINT": dead, "LUNOS_OTLP_TIMEOUT": "0.5"}
    g = GatewayProcess(tmp_path / "gw", env).start()
    try:
        with httpx.Client(timeout=30) as client:
            statuses = [client.post(f"{g.url}/v1/chat/completions", headers=AUTH,
                                    json=ask(f"n{i}")).status_code for i in range(20)]
        assert statuses == [200] * 20

        def dropped() -> float:
            for line in httpx.get(f"{g.url}/metrics").text.splitlines():
                if line.startswith("lunos_otel_spans_dropped_total{"):
                    return float(line.rsplit(" ", 1)[1])
            return 0.0

        until(lambda: dropped() > 0, timeout=60)
    finally:
        # shutdown does not hang on the dead collector (stop() kills, -9, after 30 s)
        assert g.stop() == -signal.SIGTERM


def test_a_stream_and_the_messages_door_are_chat_spans_with_usage(traced, collector, upstreams):
    app, _ = collector
    stream = httpx.post(f"{traced.url}/v1/chat/completions", headers=AUTH,
                        json=ask("stream me", stream=True, stream_options={"include_usage": True}),
                        timeout=30)
    assert stream.status_code == 200
    span = request_span(app, stream.headers["x-request-id"])
    assert span.attributes["lunos.stream"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    message = httpx.post(f"{traced.url}/v1/messages", headers=AUTH, timeout=30, json={
        "model": "anthropic/claude-sonnet-4-5", "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}]})
    assert message.status_code == 200, message.text
    span = request_span(app, message.headers["x-request-id"])
    assert span.name == "chat anthropic/claude-sonnet-4-5"
    assert span.attributes["gen_ai.provider.name"] == "anthropic"
    assert span.attributes["lunos.endpoint"] == "messages"
    assert span.attributes["gen_ai.usage.input_tokens"] == message.json()["usage"]["input_tokens"]

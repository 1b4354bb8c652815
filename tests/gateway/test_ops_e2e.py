"""Readiness against live dependencies, and JSON request lines (LUNOS_LOG_FORMAT=json)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from lunos.gateway.config import ConfigError, load_settings
from tests.databases import database
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import free_port
from tests.standins.tcp_proxy import TcpProxy

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
REDIS = "redis://127.0.0.1:6379/0"


def ask(text: str, **extra) -> dict:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


def until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)
    return result


def test_readyz_is_503_while_redis_does_not_answer_and_healthz_stays_200(standins, tmp_path):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), "LUNOS_REDIS_URL": dead_redis}).start()
    try:
        r = httpx.get(f"{g.url}/readyz")
        assert r.status_code == 503
        error = r.json()["error"]
        assert error["code"] == "limits_store_unavailable" and "Redis" in error["message"]
        assert error["type"] and r.headers["retry-after"] == "1"
        assert dead_redis not in r.text
        assert httpx.get(f"{g.url}/healthz").status_code == 200
    finally:
        g.stop()


def test_readyz_follows_the_database_and_redis_as_they_answer(standins, tmp_path):
    proxy = TcpProxy("127.0.0.1", 5432).start()
    with database("postgresql", tmp_path) as url:
        proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        env = {**standins.env(), "LUNOS_DATABASE_URL": proxied, "LUNOS_REDIS_URL": REDIS}
        g = GatewayProcess(tmp_path / "gw", env).start()
        try:
            r = until(lambda: (r := httpx.get(f"{g.url}/readyz")).status_code == 200 and r)
            assert r.json() == {"status": "ready"}
            proxy.cut()
            r = httpx.get(f"{g.url}/readyz", timeout=30)
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
            assert httpx.get(f"{g.url}/healthz").status_code == 200
            proxy.restore()
            until(lambda: httpx.get(f"{g.url}/readyz", timeout=30).status_code == 200)
        finally:
            g.stop()
            proxy.stop()


def request_lines(g: GatewayProcess) -> list[dict]:
    return [json.loads(line) for line in g.log_path.read_text().splitlines()
            if line.startswith("{")]


def test_json_logs_have_one_line_per_request_without_the_key(standins, tmp_path, upstreams):
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), "LUNOS_LOG_FORMAT": "json",
                                         "LUNOS_RETRY_BACKOFF": "0.01"}).start()
    try:
        created = httpx.post(f"{g.url}/admin/keys", headers=MASTER, json={"name": "app"}).json()
        key = {"authorization": f"Bearer {created['key']}", "x-app-id": "billing"}
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        ok = httpx.post(f"{g.url}/v1/chat/completions", json=ask("hello"), timeout=30,
                        headers={**key, "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        failed = httpx.post(f"{g.url}/v1/chat/completions", headers=key,
                            json=ask("no [[status:400]]"), timeout=30)
        streamed = httpx.post(f"{g.url}/v1/chat/completions", headers=key,
                              json=ask("hi", stream=True), timeout=30)
        assert (ok.status_code, failed.status_code, streamed.status_code) == (200, 400, 200)
        ids = [r.headers["x-request-id"] for r in (ok, failed, streamed)]
        lines = until(lambda: len(request_lines(g)) >= 3 and request_lines(g))
        assert [line["request_id"] for line in lines] == ids  # one line each, in order
        first, second, third = lines
        usage = ok.json()["usage"]
        assert first["key_id"] == created["id"] and first["app"] == "billing"
        assert (first["model"], first["provider"], first["endpoint"]) == ("openai/gpt-4o", "openai",
                                                                          "chat")
        assert first["status"] == 200 and first["latency_ms"] > 0
        assert first["tokens"]["prompt"] == usage["prompt_tokens"]
        assert first["tokens"]["completion"] == usage["completion_tokens"]
        assert first["trace_id"] == trace_id  # the caller's trace
        assert second["status"] == 400 and second["error"]
        assert second["trace_id"] is None  # no traceparent, no OpenTelemetry: no trace
        assert third["stream"] is True and third["tokens"]["completion"] > 0
        assert created["key"] not in g.log_path.read_text()
        assert MASTER_KEY not in g.log_path.read_text()
    finally:
        g.stop()


@pytest.mark.parametrize(("env", "name"), [
    ({"LUNOS_LOG_FORMAT": "xml"}, "LUNOS_LOG_FORMAT"),
    ({"LUNOS_OTLP_ENDPOINT": "collector:4318"}, "LUNOS_OTLP_ENDPOINT"),
    ({"LUNOS_OTLP_ENDPOINT": "http://c:4318", "LUNOS_OTLP_PROTOCOL": "thrift"}, "LUNOS_OTLP_PROTOCOL"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "LUNOS_OTLP_TIMEOUT": "-1"},
     "LUNOS_OTLP_TIMEOUT"),
])
def test_a_bad_telemetry_setting_names_itself(env, name):
    with pytest.raises(ConfigError, match=name):
        load_settings(env=env)


def test_otel_settings_come_from_lunos_or_the_standard_variables(tmp_path):
    assert load_settings(env={}).otel is None
    standard = load_settings(env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}).otel
    assert standard["endpoint"] is None and standard["protocol"] == "http/protobuf"
    (tmp_path / "lunos.yaml").write_text("otel:\n  endpoint: http://c:4318/\n  protocol: grpc\n"
                                         "  capture_content: true\n")
    own = load_settings(tmp_path / "lunos.yaml", env={}).otel
    assert own == {"endpoint": "http://c:4318", "protocol": "grpc", "capture_content": True,
                   "timeout": 2.0}


def test_the_gateway_does_not_import_opentelemetry_unless_asked():
    code = ("import sys; import lunos.gateway.app, lunos.gateway.routes.metrics, "
            "lunos.gateway.routes.health; print(any(m.startswith('opentelemetry') "
            "for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.stdout.strip() == "False", done.stderr


def test_the_exporter_follows_the_protocol_setting():
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc")
    from lunos.gateway.telemetry import make_exporter

    http = make_exporter({"endpoint": "http://c:4318", "protocol": "http/protobuf", "timeout": 1})
    assert type(http).__module__.startswith("opentelemetry.exporter.otlp.proto.http")
    assert http._endpoint == "http://c:4318/v1/traces"
    grpc = make_exporter({"endpoint": "http://c:4317", "protocol": "grpc", "timeout": 1})
    assert type(grpc).__module__.startswith("opentelemetry.exporter.otlp.proto.grpc")
    grpc.shutdown()


def test_json_lines_of_two_workers_stay_whole(standins, tmp_path, upstreams):
    g = GatewayProcess(tmp_path / "gw", {**standins.env(), "LUNOS_LOG_FORMAT": "json"},
                       args=["--workers", "2"]).start()
    try:
        async def burst() -> list[str]:
            async with httpx.AsyncClient(timeout=30) as client:
                replies = await asyncio.gather(*(
                    client.post(f"{g.url}/v1/chat/completions", headers=MASTER,
                                json=ask(f"request {i} " + "padding " * 40)) for i in range(200)))
            assert {r.status_code for r in replies} == {200}
            return [r.headers["x-request-id"] for r in replies]

        ids = asyncio.run(burst())
        lines = until(lambda: len(request_lines(g)) >= 200 and request_lines(g))
        assert sorted(line["request_id"] for line in lines) == sorted(ids)
    finally:
        g.stop()

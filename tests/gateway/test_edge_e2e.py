"""The gateway's edge through a real process: slow clients, request ids, shutdown."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import openai
import orjson
import pytest

from tests.databases import database
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import free_port
from tests.standins.tcp_proxy import TcpProxy

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def gateway(standins, tmp_path_factory):
    env = {**standins.env(), "LUNOS_HEADER_READ_TIMEOUT": "1", "LUNOS_REQUEST_READ_TIMEOUT": "1"}
    g = GatewayProcess(tmp_path_factory.mktemp("edge"), env).start()
    yield g
    g.stop()


def trickle(port: int, data: bytes, step: float = 0.2, limit: float = 30) -> bytes:
    """Send `data` a byte at a time until the gateway answers; return all it sent before
    closing the connection."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        deadline = time.monotonic() + limit
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
            if select.select([sock], [], [], step)[0]:
                break
        else:
            raise AssertionError("the whole request went in without an answer")
        out = b""
        sock.settimeout(max(deadline - time.monotonic(), 0.1))
        while chunk := sock.recv(65536):
            out += chunk
        return out  # recv returned b"": the gateway closed the connection


def parse(raw: bytes) -> tuple[int, dict, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    if headers.get("transfer-encoding") == "chunked":
        chunks, rest = [], body
        while True:
            size, _, rest = rest.partition(b"\r\n")
            if not int(size, 16):
                break
            chunks.append(rest[:int(size, 16)])
            rest = rest[int(size, 16) + 2:]
        body = b"".join(chunks)
    return int(lines[0].split()[1]), headers, orjson.loads(body)


def check_408(raw: bytes) -> None:
    status, headers, body = parse(raw)
    assert status == 408
    assert headers["connection"] == "close" and headers["x-request-id"]
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "request_timeout"


def test_trickled_body_gets_408_and_others_are_served(gateway, upstreams):
    body = orjson.dumps(HELLO)
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER_KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode()
    results: list[bytes] = []
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(head)  # headers at once, then the body a byte at a time
        threads = [threading.Thread(target=lambda: results.append(trickle(gateway.port, head + body)))
                   for _ in range(4)]
        for t in threads:
            t.start()
        # Meanwhile the gateway serves others.
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)
        assert client.chat.completions.create(**HELLO).choices[0].message.content
        assert httpx.get(gateway.url + "/healthz").status_code == 200
        for t in threads:
            t.join()
        sock.settimeout(30)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    for raw in [*results, out]:
        check_408(raw)


def test_trickled_headers_get_408(gateway):
    raw = trickle(gateway.port, b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: " + b"a" * 200 + b"\r\n\r\n")
    check_408(raw)
    assert httpx.get(gateway.url + "/healthz").status_code == 200


def test_silent_connection_is_closed(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.settimeout(30)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    check_408(out)


def test_invalid_http_is_400_in_the_error_shape(gateway):
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\x00\r\n\r\n")
        sock.settimeout(30)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    status, headers, body = parse(out)
    assert status == 400 and headers["x-request-id"] and body["error"]["code"] == "invalid_http"


@pytest.mark.parametrize("method,path,headers", [
    ("GET", "/healthz", {}),
    ("GET", "/readyz", {}),
    ("GET", "/metrics", AUTH),
    ("GET", "/metrics", {}),
    ("GET", "/openapi.json", {}),
    ("GET", "/v1/models", {}),
    ("GET", "/v1/logs", AUTH),
    ("GET", "/v1/logs", {}),
    ("GET", "/v1/logs/nope", AUTH),
    ("GET", "/v1/usage", AUTH),
    ("GET", "/admin/keys", AUTH),
    ("GET", "/admin/keys", {"authorization": "Bearer wrong"}),
    ("DELETE", "/admin/keys/nope", AUTH),
    ("POST", "/admin/keys", {**AUTH, "content-type": "application/json"}),
    ("GET", "/nowhere", {}),
    ("PUT", "/healthz", {}),
    ("POST", "/v1/chat/completions", {}),
    ("POST", "/v1/chat/completions", AUTH),
    ("GET", "/dashboard", {}),
    ("GET", "/dashboard/logs", {}),
    ("GET", "/dashboard/static/dashboard.css", {}),
    ("GET", "/dashboard/nope", {}),
])
def test_every_route_has_a_request_id(gateway, method, path, headers):
    response = httpx.request(method, gateway.url + path, headers=headers, content=b"{}"
                             if method in ("POST", "PUT") else None)
    assert response.headers.get("x-request-id"), (response.status_code, response.headers)


def test_chat_ids_match_the_completion(gateway, upstreams):
    response = httpx.post(gateway.url + "/v1/chat/completions", headers=AUTH, json=HELLO)
    assert response.headers["x-request-id"] == response.json()["id"]


def rows(gw: GatewayProcess) -> list[dict]:
    return httpx.get(gw.url + "/v1/logs", headers=AUTH, params={"limit": 500}).json()["data"]


def test_requests_cut_off_at_shutdown_get_an_error_and_a_row(standins, upstreams, tmp_path):
    env = {**standins.env(), "LUNOS_SHUTDOWN_GRACE": "1"}
    gw = GatewayProcess(tmp_path / "home", env).start()
    out: dict[str, object] = {}
    started = threading.Event()

    def plain():
        body = {**HELLO, "messages": [{"role": "user", "content": "wait [[delay:30]]"}]}
        out["plain"] = httpx.post(gw.url + "/v1/chat/completions", headers=AUTH, json=body, timeout=60)

    def stream():
        body = {**HELLO, "stream": True, "messages": [{"role": "user", "content": "tell [[slow:2]]"}]}
        with httpx.stream("POST", gw.url + "/v1/chat/completions", headers=AUTH, json=body,
                          timeout=60) as response:
            out["stream_status"] = response.status_code
            parts = []
            for part in response.iter_bytes():
                parts.append(part)
                started.set()
            out["stream"] = b"".join(parts)

    threads = [threading.Thread(target=plain), threading.Thread(target=stream)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(upstreams.openai.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.wait(30)  # the stream's first event reached the client
        gw.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        assert gw.proc.wait(30) is not None
    finally:
        gw.stop()
    plain_response = out["plain"]
    assert plain_response.status_code == 503
    assert plain_response.json()["error"]["code"] == "gateway_shutting_down"
    assert plain_response.headers["x-request-id"]
    assert out["stream_status"] == 200
    events = [line for line in out["stream"].decode().splitlines() if line.startswith("data: ")]
    assert events[-1] != "data: [DONE]"
    assert orjson.loads(events[-1][6:])["error"]["code"] == "gateway_shutting_down"
    gw = GatewayProcess(tmp_path / "home", env).start()  # the same database, read back
    try:
        found = rows(gw)
    finally:
        gw.stop()
    cut = [r for r in found if r["error"] == "gateway shutting down"]
    assert len(cut) == 2 and {r["status"] for r in cut} == {503}


@pytest.mark.parametrize("env,name", [
    ({"LUNOS_RETRIES": "abc"}, "LUNOS_RETRIES"),
    ({"LUNOS_CONNECT_TIMEOUT": "soon"}, "LUNOS_CONNECT_TIMEOUT"),
    ({"LUNOS_HEADER_READ_TIMEOUT": "-1"}, "LUNOS_HEADER_READ_TIMEOUT"),
    ({"LUNOS_DATABASE_URL": "mysql://user:secret@db/lunos"}, "LUNOS_DATABASE_URL"),
    ({"LUNOS_DATABASE_URL": "sqlite:/lunos.db"}, "LUNOS_DATABASE_URL"),
])
def test_a_bad_setting_is_one_line_naming_it(standins, tmp_path, env, name):
    done = subprocess.run([sys.executable, "-m", "lunos.cli", "serve", "--port", str(free_port())],
                          env={**os.environ, **standins.env(), **env, "LUNOS_HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip().count("\n") == 0 and name in done.stderr, done.stderr
    assert "secret" not in done.stderr


def test_database_down_at_start_up(standins, upstreams, tmp_path):
    with database("postgresql", tmp_path) as url:
        proxy = TcpProxy("127.0.0.1", 5432).start()
        proxy.cut()
        through_proxy = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        gw = GatewayProcess(tmp_path / "home", {**standins.env(), "LUNOS_DATABASE_URL": through_proxy})
        try:
            gw.start(timeout=60)  # up, and live
            assert httpx.get(gw.url + "/healthz").status_code == 200
            ready = httpx.get(gw.url + "/readyz")
            assert ready.status_code == 503 and ready.json()["error"]["code"] == "store_unavailable"
            proxy.restore()
            deadline = time.monotonic() + 60
            while httpx.get(gw.url + "/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert httpx.get(gw.url + "/readyz").json() == {"status": "ready"}
            created = httpx.post(gw.url + "/admin/keys", headers=AUTH, json={"name": "after"})
            assert created.status_code == 201
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key=created.json()["key"], max_retries=0)
            assert client.chat.completions.create(**HELLO).choices[0].message.content
        finally:
            gw.stop()
            proxy.stop()
    log = gw.log_path.read_text()
    assert "Traceback" not in log
    assert log.count("the database is unreachable") >= 1
